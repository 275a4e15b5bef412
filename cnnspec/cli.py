"""The `cnnspec` command line. Spec errors print as diagnostics, never as tracebacks.

Exit status: 0 when the spec is valid, 1 when it has errors, 2 for usage
errors, 3 for an internal error (a bug in cnnspec: one line asking for a
report, with the traceback only when CNNSPEC_DEBUG=1).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback

from cnnspec.commands import COMMANDS
from cnnspec.commands.common import UsageError
from cnnspec.diagnostics import Diagnostic, SpecError, render_all
from cnnspec.syntax.source import SourceMap


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
    # One switch for tools: `check --json` prints the report, and any errors or warnings, as JSON.
    as_json = getattr(args, "diagnostics", "text") == "json" or getattr(args, "json", False)
    from cnnspec import api

    def print_warnings(warnings: list[Diagnostic], sources: SourceMap) -> None:
        # Warnings of a valid spec go to stderr, so that stdout keeps the command's own output.
        if as_json:
            print(json.dumps([d.to_dict() for d in warnings], indent=2), file=sys.stderr)
        else:
            print(render_all(warnings, sources, color=_color()) + "\n", file=sys.stderr)

    api.set_warning_handler(print_warnings)
    try:
        return args.run(args)
    except SpecError as e:
        if as_json:
            print(json.dumps([d.to_dict() for d in e.diagnostics], indent=2))
        else:
            print(e.render(color=_color()), file=sys.stderr)
        return 1
    except UsageError as e:
        print(f"cnnspec {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # the last line of defence: a bug must not look like a spec error
        if os.environ.get("CNNSPEC_DEBUG") == "1":
            traceback.print_exc()
        where = f" ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
        print(
            f"cnnspec {args.command}: internal error{where}; this is a bug in cnnspec, please report it "
            "with the spec (set CNNSPEC_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 3
    finally:
        api.set_warning_handler(None)


def _color() -> bool:
    return sys.stderr.isatty() and not os.environ.get("NO_COLOR")


if __name__ == "__main__":
    sys.exit(main())
