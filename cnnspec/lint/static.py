"""Static warnings: what the AST alone shows, before any elaboration (W001, W002, W004)."""

from __future__ import annotations

from typing import Any

from cnnspec.diagnostics import Diagnostics
from cnnspec.diagnostics.codes import W001, W002, W004
from cnnspec.syntax import ast
from cnnspec.syntax.loader import Program
from cnnspec.syntax.source import Span

#: A warning that needs no elaboration: code, message, span and help.
_Finding = tuple[str, str, Span, str]


def static_warnings(program: Program, diags: Diagnostics) -> None:
    """Warnings that need no elaboration, for the main file's definitions.

    W001: a block nothing refers to. W002: a block or network parameter its
    body never reads (a leading `_` says that is intended). W004: a `let`
    nothing after it reads.
    """
    for code, message, span, help in _findings(program):
        diags.warning(code, message, span, help=[help])


def _findings(program: Program) -> list[_Finding]:
    out: list[_Finding] = []
    referenced: set[str] = set()
    # Only the main file's blocks can be reported unused: with none, nobody's references matter
    # (resnet152.cnn is one network alias over resnet.cnn's blocks).
    for item in [*program.blocks.values(), *program.networks.values()] if program.main_blocks else []:
        if isinstance(item, ast.NetworkAlias):
            referenced.add(item.target)
            names_used(item.args, referenced)
        else:
            # A block's own body does not count: a block that only calls itself is unused too.
            inner = names_used([item.body, [p.default for p in item.params if p.default is not None]], set())
            referenced |= inner - ({item.name} if isinstance(item, ast.BlockDef) else set())
    # A network parameter that takes a block (`unit = Bottleneck`) may be given any
    # block with --set, so in such a family file no block is unused.
    block_params = any(
        isinstance(p.default, ast.Name) and p.default.id in program.blocks
        for n in program.main_networks
        if isinstance(d := program.networks[n], ast.NetworkDef)
        for p in d.params
    )
    for name in [] if block_params else program.main_blocks:
        if name not in referenced:
            block = program.blocks[name]
            out.append((W001, f"block `{name}` is never used", block.name_span, "remove it, or use it in a network"))
    defs = [program.blocks[n] for n in program.main_blocks if n in referenced]  # unused: W001 says enough
    defs += [d for n in program.main_networks if isinstance(d := program.networks[n], ast.NetworkDef)]
    for d in defs:
        used = names_used(d.body, set())
        for i, p in enumerate(d.params):
            later = {n for q in d.params[i + 1 :] if q.default is not None for n in names_used(q.default, set())}
            if p.name not in used and p.name not in later and not p.name.startswith("_"):
                what = "block" if isinstance(d, ast.BlockDef) else "network"
                out.append((
                    W002,
                    f"parameter `{p.name}` of {what} `{d.name}` is never used",
                    p.span,
                    f"remove it, or rename it `_{p.name}` to keep it in the signature",
                ))
        _unused_lets(d.body, out)
    return out


def _child_fields(cls: type) -> list[str]:
    """The fields of an AST class that may hold AST nodes (not spans, labels or plain values)."""
    return [f for f in getattr(cls, "__dataclass_fields__", {}) if f not in _NOT_CHILDREN]


_NOT_CHILDREN = frozenset({"span", "label", "name_span", "kind_span", "target_span"})


#: What a field holding AST nodes holds (a tuple: isinstance is much slower with a `|` union).
_AST_CHILD = (list, ast.Expr, ast.Stmt, ast.Arg, ast.Shortcut, ast.Param, ast.InitAssign)


def names_used(node: Any, out: set[str]) -> set[str]:
    """Every name an AST subtree reads: variables, callees (a parameter may be called), and
    "in" where it reads the block input (a keyword, so no variable has that name)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
            continue
        if isinstance(n, ast.Name):
            out.add(n.id)
            continue
        if isinstance(n, ast.BlockInput):
            out.add("in")
            continue
        if isinstance(n, ast.CallStmt):
            out.add(n.name)
        if isinstance(n, ast.Stmt) and n.label is not None and n.label.parts:
            stack.extend(p for p in n.label.parts if isinstance(p, ast.Expr))  # "block{i}" reads i
        for f in _child_fields(type(n)):
            v = getattr(n, f)
            if isinstance(v, _AST_CHILD):
                stack.append(v)
    return out


def _unused_lets(body: list[ast.Stmt], out: list[_Finding]) -> None:
    """W004 for every `let` of a body (and the bodies inside it) that nothing after it reads."""
    # Only what follows a `let` can read it: statements up to the first one need no walk.
    first_let = next((i for i, stmt in enumerate(body) if isinstance(stmt, ast.LetStmt)), len(body))
    later: set[str] = set()
    for i in range(len(body) - 1, -1, -1):
        stmt = body[i]
        if isinstance(stmt, ast.LetStmt) and stmt.name not in later and not stmt.name.startswith("_"):
            out.append((
                W004,
                f"`let {stmt.name}` is never used",
                stmt.span,
                "remove it, or start its name with `_` to keep it",
            ))
        if i > first_let:
            names_used(stmt, later)
        for inner in _bodies(stmt):
            _unused_lets(inner, out)


def _bodies(stmt: ast.Stmt) -> list[list[ast.Stmt]]:
    """The statement lists nested directly in a statement."""
    if isinstance(stmt, ast.GroupStmt | ast.ForStmt | ast.AuxStmt):
        return [stmt.body]
    if isinstance(stmt, ast.ResidualStmt):
        return [stmt.body] + ([stmt.shortcut.body] if stmt.shortcut is not None else [])
    if isinstance(stmt, ast.IfStmt):
        return [stmt.then] + ([stmt.orelse] if stmt.orelse is not None else [])
    return []


