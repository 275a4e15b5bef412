"""The subcommands of the `cnnspec` command line; each module has register() and run()."""

#: Modules whose register(subparsers) adds a subcommand, in the order `--help` lists them.
COMMANDS = (
    "cnnspec.commands.check",
    "cnnspec.commands.compile",
    "cnnspec.commands.diagram",
    "cnnspec.commands.layers",
)
