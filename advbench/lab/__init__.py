"""The companion tools of the two seed tutorials: the tutorial sections, explain, transfer, the
speed bench and the reference loops. The only code in the package that names built-in models or
attacks."""
