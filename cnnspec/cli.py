"""The `cnnspec` command line. Spec errors print as diagnostics, never as tracebacks.

Exit status: 0 when the spec is valid, 1 when it has errors, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from cnnspec.commands import COMMANDS
from cnnspec.commands.common import UsageError
from cnnspec.diagnostics import SpecError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="cnnspec", description="Check, draw, compile and train CNNs written as .cnn specs."
    )
    parser.add_argument("--version", action="version", version=f"cnnspec {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    sub.add_parser("train", help="train a spec with the data-parallel trainer (see `cnnspec train --help`)")
    return parser


def _version() -> str:
    from cnnspec import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        from cnnspec.train.cli import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as e:
        if getattr(args, "diagnostics", "text") == "json":
            print(json.dumps([d.to_dict() for d in e.diagnostics], indent=2))
        else:
            print(e.render(color=sys.stderr.isatty()), file=sys.stderr)
        return 1
    except UsageError as e:
        print(f"cnnspec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
