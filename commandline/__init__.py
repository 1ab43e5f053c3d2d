"""The `workbench` command line: argument parsing and printing over the application core."""
