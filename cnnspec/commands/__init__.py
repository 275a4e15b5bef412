"""The subcommands of the `cnnspec` command line (each module in COMMANDS has register() and run()),
and `python -m cnnspec.commands.gallery`, which regenerates docs/gallery."""

#: Modules whose register(subparsers) adds a subcommand, in the order `--help` lists them.
COMMANDS = (
    "cnnspec.commands.check",
    "cnnspec.commands.compile",
    "cnnspec.commands.diagram",
    "cnnspec.commands.layers",
    "cnnspec.commands.lsp",
    "cnnspec.commands.fmt",
)
