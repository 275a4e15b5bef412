"""`init` statements: checked into InitRules, and W007 for a path pattern that matches nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cnnspec.diagnostics import Diagnostics
from cnnspec.diagnostics.codes import E106, E108, E222, E224, E225, E227, W007
from cnnspec.ir import InitRule, Node
from cnnspec.layers.init import FAN_SCHEMES, SCHEMES, TARGETS, argument_problems, pattern_problem
from cnnspec.layers.registry import all_kinds, lookup, suggest
from cnnspec.semantics.values import UNKNOWN
from cnnspec.syntax import ast
from cnnspec.syntax.source import Span


def init_rules(stmt: ast.InitStmt, value_of: Callable[[ast.Expr], Any], diags: Diagnostics) -> list[InitRule]:
    """The rules of one `init` statement (one per assignment that checks), its errors reported."""
    if lookup(stmt.kind) is None:
        hint = suggest(stmt.kind, list(all_kinds()))
        diags.error(
            E106,
            f"`init` names an unknown layer `{stmt.kind}`",
            stmt.kind_span,
            help=[f"did you mean `{hint}`?"] if hint else [],
        )
        return []
    if stmt.pattern is not None:
        problem = pattern_problem(stmt.pattern)
        if problem is not None:
            diags.error(
                E225,
                f'`init` cannot match module paths with "{stmt.pattern}": {problem}',
                stmt.pattern_span,
                help=['write dot-separated names, each maybe with `*`, like "layer*.*.bn3"'],
            )
            return []
    rules = []
    for a in stmt.assigns:
        if a.target not in TARGETS:
            diags.error(E222, f"`init` sets `weight` or `bias`, not `{a.target}`", a.span)
            continue
        if a.scheme not in SCHEMES:
            hint = suggest(a.scheme, list(SCHEMES))
            diags.error(
                E108,
                f"unknown initialisation `{a.scheme}`",
                a.span,
                help=([f"did you mean `{hint}`?"] if hint else []) + ["schemes: " + ", ".join(SCHEMES)],
            )
            continue
        allowed, _ = SCHEMES[a.scheme]
        args: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        for arg in a.args:
            if arg.name is None or arg.name not in allowed:
                diags.error(
                    E224, f"`{a.scheme}` takes the keyword arguments {', '.join(allowed) or 'none'}", arg.span
                )
                continue
            args[arg.name], spans[arg.name] = value_of(arg.value), arg.value.span
        known = {k: v for k, v in args.items() if v is not UNKNOWN}
        problems = argument_problems(a.scheme, known)
        for name, why in problems.items():
            diags.error(E224, f"`{a.scheme}` argument `{name}`: {why}", spans.get(name, a.span))
        if problems or not _has_fans(stmt.kind, a, diags):
            continue
        rules.append(
            InitRule(kind=stmt.kind, target=a.target, scheme=a.scheme, args=args, span=a.span, pattern=stmt.pattern)
        )
    return rules


def _has_fans(kind_name: str, a: ast.InitAssign, diags: Diagnostics) -> bool:
    """Whether the tensor an assignment sets has the two or more dimensions its scheme needs; E227 if not."""
    if a.scheme not in FAN_SCHEMES:
        return True
    kind = lookup(kind_name)
    if a.target == "bias":
        what = "a bias has one"
    elif kind is not None and kind.weight_dims == 1:
        what = f"a `{kind_name}`'s weight has one"
    else:
        return True
    diags.error(
        E227,
        f"`{a.scheme}` scales by fan-in and fan-out, which need two or more dimensions, but {what}",
        a.span,
        help=["give it `normal`, `uniform`, `constant`, `zeros` or `ones`"],
    )
    return False


def unmatched_patterns(patterns: list[tuple[ast.InitStmt, InitRule]], layers: list[Node], diags: Diagnostics) -> None:
    """W007 for each `init` pattern (a statement with one of its rules) that matches no layer of its kind."""
    for stmt, rule in patterns:
        if not any(map(rule.selects, layers)):
            near = sorted(n.path for n in layers if n.kind == stmt.kind)[:3]
            diags.warning(
                W007,
                f'`init {stmt.kind} "{stmt.pattern}"` matches no {stmt.kind} layer, so it changes nothing',
                stmt.pattern_span,
                help=[
                    f"{stmt.kind} layers here include {', '.join(near)}"
                    if near
                    else f"the network has no {stmt.kind} layer"
                ],
            )
