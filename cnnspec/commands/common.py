"""What the subcommands share: spec arguments, --set parsing, safe file writing."""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.diagnostics import SpecError

if TYPE_CHECKING:
    from cnnspec.syntax import ast


class UsageError(Exception):
    """A command-line mistake (exit status 2), not a spec error; the trainer's usage errors are ones too."""

    exit_code = 2


def add_spec_args(p: argparse.ArgumentParser) -> None:
    """SPEC, --network, --set and --input, common to check, compile and diagram."""
    # A Path, so that a file name with brackets or `=` ("lenet (copy).cnn") is never read as spec text.
    p.add_argument("spec", type=Path, help="path to a .cnn file")
    p.add_argument("--network", metavar="NAME", help="which network of the file (default: its only one)")
    add_set_arg(p)
    add_path_arg(p)
    p.add_argument("--input", metavar="CxHxW", help="override the input shape, e.g. 3x160x160")
    p.add_argument(
        "--diagnostics",
        choices=("text", "json"),
        default="text",
        help="how errors and warnings are printed (json for editors; `check --json` implies it)",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print no summary: only errors, warnings and what was written"
    )


def add_set_arg(p: argparse.ArgumentParser) -> None:
    """The repeatable --set NAME=VALUE option (its values land in args.sets), the same for every command."""
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a network parameter, e.g. --set num_classes=10 or --set 'layers=[3, 4, 6, 3]' "
        "(repeatable) (default: the spec's own values)",
    )


def add_path_arg(p: argparse.ArgumentParser) -> None:
    """The repeatable --path DIR option (its values land in args.path): where imports are looked for."""
    p.add_argument(
        "--path",
        dest="path",
        action="append",
        default=[],
        metavar="DIR",
        help="look for imports in DIR after the importing file's own directory, before CNNSPEC_PATH and "
        "the stock specs (repeatable) (default: none)",
    )


def split_set(item: str) -> tuple[str, str]:
    """One --set NAME=VALUE item as (name, value text), the value not yet parsed."""
    name, eq, value = item.partition("=")
    name = name.strip()
    if not eq or not name.isidentifier():
        raise UsageError(f"--set expects NAME=VALUE, got {item!r}")
    return name, value.strip()


def parse_set_value(name: str, text: str) -> ast.Expr:
    """The value text of --set NAME as a spec expression; typed against the network's parameters later."""
    from cnnspec.syntax.parser import parse_expr

    try:
        return parse_expr(text, f"--set {name}")
    except SpecError as e:
        why = e.diagnostics[0].message
        raise UsageError(f"--set {name}: cannot read the value {text!r}: {why}") from None


def set_texts(items: list[str]) -> dict[str, str]:
    """--set NAME=VALUE items as {name: value text}, each value checked to be a spec expression."""
    out: dict[str, str] = {}
    for item in items:
        name, text = split_set(item)
        parse_set_value(name, text)
        out[name] = text
    return out


def parse_sets(items: list[str]) -> dict[str, ast.Expr]:
    """--set NAME=VALUE items as parsed spec expressions (evaluated against the network)."""
    return {name: parse_set_value(name, text) for name, text in map(split_set, items)}


def parse_input(text: str | None) -> tuple[int, ...] | None:
    """--input 3x224x224 (or NxD tokens, or a flat size) as a shape tuple."""
    if text is None:
        return None
    parts = re.split(r"\s*[x×,]\s*", text.strip())
    if not all(p.isdigit() and int(p) > 0 for p in parts) or len(parts) not in (1, 2, 3):
        raise UsageError(f"--input expects CxHxW, NxD or one size, of positive ints (e.g. 3x224x224), got {text!r}")
    return tuple(int(p) for p in parts)


def spec_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of cnnspec.api.analyse from the common options."""
    return {
        "network": args.network,
        "input_shape": parse_input(args.input),
        "path": args.path,
        **parse_sets(args.sets),
    }


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_new(path: Path, force: bool, writer: Callable[[Path], None]) -> None:
    """Write a file atomically through writer(tmp); refuse to replace one unless force."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write {path}: the folder {parent} is not writable")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from the user's group
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
