"""`cnnspec fmt [--check] [--diff] FILES...`: rewrite .cnn files in the canonical layout.

Each file is handled on its own: one that cannot be read, decoded, parsed or written is named
with the reason (a syntax error as its diagnostic), left exactly as it was, and the others are
still formatted. A file is replaced only whole: the new text goes to a temporary file beside it
(the same directory, so the rename cannot cross file systems), which takes the old file's mode
and then replaces it with one rename.
"""

from __future__ import annotations

import argparse
import difflib
import os
import stat
import sys
import tempfile
from pathlib import Path

from cnnspec.diagnostics import SpecError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the fmt subcommand."""
    p = sub.add_parser("fmt", help="rewrite .cnn files in the canonical layout")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help=".cnn files to format in place")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 listing the files fmt would change")
    p.add_argument("--diff", action="store_true", help="change nothing; print what fmt would change as a unified diff")
    p.set_defaults(run=run)


class _Refused(Exception):
    """A file fmt cannot format or write; the message names it."""


def run(args: argparse.Namespace) -> int:
    """Format each file; 1 when any was refused (or, with --check, would change), else 0."""
    failed = changed = 0
    would: list[Path] = []
    for path in args.files:
        try:
            old, new = _formatted(path)
        except _Refused as e:
            print(f"cnnspec fmt: {e}", file=sys.stderr)
            failed += 1
            continue
        except SpecError as e:
            print(e.render(color=_color()), file=sys.stderr)
            print(f"cnnspec fmt: {path}: not formatted, it does not parse", file=sys.stderr)
            failed += 1
            continue
        if new == old:
            continue
        if args.diff:
            diff = difflib.unified_diff(
                old.splitlines(keepends=True), new.splitlines(keepends=True), f"{path}", f"{path} (formatted)"
            )
            sys.stdout.writelines(diff)
        if args.check:
            would.append(path)
        elif not args.diff:
            try:
                _replace(path, new)
            except _Refused as e:
                print(f"cnnspec fmt: {e}", file=sys.stderr)
                failed += 1
                continue
            changed += 1
    for path in would:
        print(f"would reformat {path}")
    if not args.check and not args.diff:
        print(f"{changed} file{'s' * (changed != 1)} reformatted", file=sys.stderr)
    return 1 if failed or would else 0


def _formatted(path: Path) -> tuple[str, str]:
    """The file's text and its formatted text; SpecError when it does not parse."""
    from cnnspec.syntax.printer import format_source

    if path.is_dir():
        raise _Refused(f"{path}: is a directory, not a .cnn file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _Refused(f"{path}: no such file") from None
    except OSError as e:
        raise _Refused(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _Refused(f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x}); .cnn files are UTF-8") from None
    return text, format_source(text, str(path))


def _replace(path: Path, text: str) -> None:
    """Replace the file (a link's target, the link kept) with text, keeping its mode."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode)
    # The mode bits, not only access(): a file or directory marked read-only stays as it is for
    # root too (the rename would otherwise replace it without a word).
    if not mode & 0o222 or not os.access(target, os.W_OK):
        raise _Refused(f"{path}: is read-only; left as it was")
    parent = stat.S_IMODE(target.parent.stat().st_mode)
    if not parent & 0o222 or not os.access(target.parent, os.W_OK):
        raise _Refused(f"{path}: its directory {target.parent} is read-only; left as it was")
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise _Refused(f"{path}: its directory is not writable ({e.strerror or e}); left as it was") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as e:
        raise _Refused(f"{path}: cannot be written ({e.strerror or e}); left as it was") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _color() -> bool:
    return sys.stderr.isatty() and "NO_COLOR" not in os.environ
