"""`python -m advbench` is the same as the `advbench` command."""

from advbench.cli import main

raise SystemExit(main())
