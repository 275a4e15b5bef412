"""The Python expressions of generated source, as `ast` nodes: reading and changing a call's arguments,
the constants in an expression and their names, and formatting to the line width.

Pure functions over the standard library's ast; the writer in pysource.py decides what to write.
"""

from __future__ import annotations

import ast as pyast
import copy
from typing import Any

#: The line width of generated source.
WIDTH = 120

#: Short names for a constructor parameter in the name of a class parameter (conv1_out, bn1_features).
_SHORT = {"in_channels": "in", "out_channels": "out", "num_features": "features", "in_features": "in",
          "out_features": "out"}  # fmt: skip


def all_constant(nodes: list[pyast.expr]) -> bool:
    """Whether every node is a constant."""
    return all(isinstance(n, pyast.Constant) for n in nodes)


def shallow(call: pyast.Call) -> pyast.Call:
    """A copy of call whose argument lists may change without changing call's."""
    out = pyast.Call(call.func, list(call.args), list(call.keywords))
    out._cnnspec_path = call._cnnspec_path  # type: ignore[attr-defined]
    return out


def without_keyword(call: pyast.Call, i: int) -> str:
    """The text of call without its keyword argument i."""
    return pyast.unparse(pyast.Call(call.func, call.args, call.keywords[:i] + call.keywords[i + 1 :]))


def call_arg(call: pyast.Call, i: int) -> pyast.expr:
    """A call's keyword argument i, or its positional argument ~i where i is negative."""
    return call.keywords[i].value if i >= 0 else call.args[~i]


def set_call_arg(call: pyast.Call, i: int, value: pyast.expr) -> None:
    """Set call's argument i (as call_arg numbers them) to value."""
    if i >= 0:
        call.keywords[i] = pyast.keyword(call.keywords[i].arg, value)
    else:
        call.args[~i] = value


def collapsed(call: pyast.Call, i: int) -> str | None:
    """The text of call with argument i, a tuple of equal items, written as one item (`kernel_size=3`
    for `(3, 3)`); None where the items differ."""
    trial = shallow(call)
    value = call_arg(trial, i)
    if not isinstance(value, pyast.Tuple) or len({pyast.dump(e) for e in value.elts}) != 1:
        return None
    set_call_arg(trial, i, value.elts[0])
    return pyast.unparse(trial)


def structure(expr: pyast.expr) -> str:
    """expr's structure with every constant a placeholder: equal for two calls that differ only in values."""

    def walk(node: Any) -> Any:
        if isinstance(node, pyast.Constant):
            return "_"
        if isinstance(node, pyast.AST):
            return (type(node).__name__, *(walk(getattr(node, f, None)) for f in node._fields))
        if isinstance(node, list):
            return tuple(walk(n) for n in node)
        return node

    return repr(walk(expr))


def copy_expr(expr: pyast.expr) -> pyast.expr:
    """A deep copy of expr, to change without changing expr."""
    return copy.deepcopy(expr)


def constants(expr: pyast.expr, prefix: str, signature: Any) -> list[tuple[str, Any]]:
    """(label, value) of every constant in expr, in order; a label names the constructor argument
    it stands for (conv1_out, bn1_features, conv2_stride)."""
    out: list[tuple[str, Any]] = []

    def label(parts: list[str]) -> str:
        return "_".join(p for p in parts if p) or "value"

    def walk(node: pyast.AST, where: list[str]) -> None:
        if isinstance(node, pyast.Constant):
            out.append((label(where), node.value))
            return
        if isinstance(node, pyast.Call):
            func = pyast.unparse(node.func)
            names = signature(func) if func not in ("nn.Sequential", "OrderedDict") else []
            for i, a in enumerate(node.args):
                name = names[i] if i < len(names) else (str(i) if func == "nn.Sequential" else "")
                walk(a, [*where, _SHORT.get(name, name)])
            for kw in node.keywords:
                walk(kw.value, [*where, _SHORT.get(kw.arg or "", kw.arg or "")])
            return
        for child in pyast.iter_child_nodes(node):
            walk(child, where)

    walk(expr, [prefix] if prefix else [])
    return out


def substitute(expr: pyast.expr, names: list[str | None]) -> pyast.expr:
    """expr with its constants, in order, replaced by the names given (None: kept)."""
    it = iter(names)

    class Sub(pyast.NodeTransformer):
        def visit_Constant(self, node: pyast.Constant) -> pyast.AST:
            name = next(it)
            return node if name is None else pyast.Name(name)

    return Sub().visit(copy_expr(expr))


def fmt(expr: pyast.expr, indent: int, lead: int = 0) -> str:
    """expr as source, its arguments one a line where one line would pass the line length."""
    text = pyast.unparse(expr)
    if len(text) + indent + lead <= WIDTH - 2 or not isinstance(expr, pyast.Call | pyast.List):
        return text
    pad = " " * (indent + 4)
    func = pyast.unparse(expr.func) if isinstance(expr, pyast.Call) else ""
    inner = expr.args[0] if isinstance(expr, pyast.Call) and func == "nn.Sequential" and len(expr.args) == 1 else None
    listed = inner.args[0] if isinstance(inner, pyast.Call) and pyast.unparse(inner.func) == "OrderedDict" else None
    if isinstance(listed, pyast.List):
        rows = []
        for e in listed.elts:
            if isinstance(e, pyast.Tuple) and len(e.elts) == 2:
                key = pyast.unparse(e.elts[0])
                rows.append(f"({key}, {fmt(e.elts[1], indent + 4, len(key) + 4)})")
            else:
                rows.append(fmt(e, indent + 4))
        return "nn.Sequential(OrderedDict([\n" + "".join(f"{pad}{r},\n" for r in rows) + " " * indent + "]))"
    if isinstance(expr, pyast.List):
        items = [fmt(e, indent + 4) for e in expr.elts]
        return "[\n" + "".join(f"{pad}{i},\n" for i in items) + " " * indent + "]"
    items = [fmt(a, indent + 4) for a in expr.args]
    items += [
        f"{k.arg}={fmt(k.value, indent + 4, len(k.arg) + 1)}" if k.arg else f"**{pyast.unparse(k.value)}"
        for k in expr.keywords
    ]
    func = pyast.unparse(expr.func)
    if func == "nn.Sequential":
        items = runs(items)
    joined = ", ".join(items)
    if "\n" not in joined and len(joined) + indent + 4 <= WIDTH:
        return f"{func}(\n{pad}{joined}\n" + " " * indent + ")"
    n = len(expr.args)
    if 1 < n < len(items) and all(isinstance(a, pyast.Constant | pyast.Name) for a in expr.args):
        items = [", ".join(items[:n]), *items[n:]] if len(", ".join(items[:n])) + indent + 5 <= WIDTH else items
    return f"{func}(\n" + "".join(f"{pad}{i},\n" for i in items) + " " * indent + ")"


def runs(items: list[str]) -> list[str]:
    """items, with a run of three or more equal ones written once, repeated."""
    out: list[str] = []
    i = 0
    while i < len(items):
        j = i
        while j < len(items) and items[j] == items[i]:
            j += 1
        if j - i >= 3 and "\n" not in items[i]:
            out.append(f"*({items[i]} for _ in range({j - i}))")
        else:
            out += items[i:j]
        i = j
    return out
