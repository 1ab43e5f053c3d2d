"""CLI subcommands. Each module here defines `register(subparsers)` and, optionally,
`register_models(models_subparsers)` for `workbench models ...` verbs; cli.py finds them."""
