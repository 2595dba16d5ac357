"""The output: per-image records, the results store, metrics, reports and figures. It reads the
database and the records, and never imports the engine (a report renders from the database
alone)."""
