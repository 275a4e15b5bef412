"""Which network a check elaborates, and the definition and arguments behind a network alias."""

from __future__ import annotations

from typing import Any

from cnnspec.diagnostics import Diagnostics
from cnnspec.diagnostics.codes import E501, E502, E503
from cnnspec.layers.registry import suggest
from cnnspec.semantics.binder import Binder, ValueOf
from cnnspec.syntax import ast
from cnnspec.syntax.loader import Program


def select_network(program: Program, name: str | None, diags: Diagnostics) -> str | None:
    """The network to elaborate: the one named, or the main file's only (or same-named) network."""
    if name is not None:
        if name in program.networks:
            return name
        hint = suggest(name, list(program.networks))
        diags.error(
            E501,
            f"no network named `{name}`",
            None,
            help=[f"did you mean `{hint}`?" if hint else "networks: " + (", ".join(program.networks) or "none")],
        )
        return None
    mains = program.main_networks
    if len(mains) == 1:
        return mains[0]
    stem = program.main_file.rsplit("/", 1)[-1].removesuffix(".cnn")
    if stem in mains:
        return stem
    if not mains:
        if len(program.networks) == 1:
            return next(iter(program.networks))
        diags.error(E502, f"{program.main_file} defines no network", None, help=["add `network Name { ... }`"])
    else:
        diags.error(
            E503,
            f"{program.main_file} defines several networks: {', '.join(mains)}",
            None,
            help=["choose one with --network NAME"],
        )
    return None


def resolve_network(
    program: Program, name: str, binder: Binder, value_of: ValueOf
) -> tuple[ast.NetworkDef, dict[str, Any]] | None:
    """The definition a network name stands for, with an alias's arguments (valued by value_of)
    bound; None if wrong."""
    item = program.networks[name]
    if isinstance(item, ast.NetworkDef):
        return item, {}
    target = program.networks.get(item.target)
    if not isinstance(target, ast.NetworkDef):
        defined = [n for n, v in program.networks.items() if isinstance(v, ast.NetworkDef)]
        hint = suggest(item.target, defined)
        binder.diags.error(
            E501,
            f"`{item.target}` is not a network defined with a body",
            item.target_span,
            help=[f"did you mean `{hint}`?"] if hint else [],
        )
        return None
    bound = binder.params("network", target.name, target.params, item.args, item.span, value_of, ())
    if bound is None:  # the arguments were wrong, and said so
        return None
    return target, bound
