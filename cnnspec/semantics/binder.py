"""The one argument binder: call arguments to the parameters of a layer, block or network,
and `--set` overrides to a network's parameters, with every mismatch reported (E207-E212,
E504-E506) in the order written."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cnnspec.diagnostics import Diagnostics, Frame
from cnnspec.diagnostics.codes import E207, E208, E209, E210, E504, E505, E506
from cnnspec.layers.kind import ArgError, Attrs, LayerKind
from cnnspec.layers.registry import suggest
from cnnspec.semantics.values import UNKNOWN, Budget, EvalError, Ref, evaluate, show, type_name
from cnnspec.syntax import ast
from cnnspec.syntax.source import Span

#: How the binder gets an argument's value: the caller evaluates it in its own context.
ValueOf = Callable[[ast.Expr], Any]


@dataclass(frozen=True)
class Callee:
    """What is called, as the binder's messages name it."""

    #: "`conv`" for a layer, "block `Bottleneck`" or "network `ResNet`" otherwise.
    title: str
    params: tuple[str, ...]
    #: The signature for help lines, made only when a message needs it.
    signature: Callable[[], str]
    is_layer: bool

    @staticmethod
    def layer(kind: LayerKind) -> Callee:
        """A layer kind, its parameters from the layer table."""
        return Callee(f"`{kind.name}`", tuple(a.name for a in kind.args), kind.signature, True)

    @staticmethod
    def definition(what: str, name: str, params: list[ast.Param]) -> Callee:
        """A block or network (what) defined in a spec."""
        return Callee(f"{what} `{name}`", tuple(p.name for p in params), lambda: signature(name, params), False)


class Binder:
    """Binds the calls of one elaboration, reporting to its diagnostics."""

    def __init__(self, diags: Diagnostics, refs: Mapping[str, Ref], budget: Budget) -> None:
        self.diags = diags
        self.refs = refs
        self.budget = budget
        #: Per layer kind of this check (the table does not change during one): its Callee, its
        #: arguments in order with the optional ones' defaults checked, its required arguments.
        self._layers: dict[str, tuple[Callee, dict[str, Any], frozenset[str]]] = {}

    def _given(
        self, callee: Callee, args: list[ast.Arg], value_of: ValueOf, trace: tuple[Frame, ...]
    ) -> tuple[dict[str, Any], dict[str, Span], bool]:
        """The values of the arguments given, by parameter name, with their spans; E208-E210."""
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        ok = True
        n = len(callee.params)
        positional = [a for a in args if a.name is None] if len(args) > n else []
        if len(positional) > n:
            s = "s" if n != 1 else ""
            message = (
                f"{callee.title} takes at most {n} positional argument{s}, got {len(positional)}"
                if callee.is_layer
                else f"{callee.title} takes {n} argument{s}, got {len(positional)} positional"
            )
            self.diags.error(
                E210, message, positional[n].span, help=[f"signature: {callee.signature()}"], trace=trace
            )
            ok = False
        for i, a in enumerate(args):
            if a.name is None:
                if i >= n:
                    continue
                name = callee.params[i]
            elif a.name not in callee.params:
                hint = suggest(a.name, list(callee.params))
                noun = "argument" if callee.is_layer else "parameter"
                self.diags.error(
                    E209,
                    f"{callee.title} has no {noun} `{a.name}`",
                    a.span,
                    help=([f"did you mean `{hint}`?"] if hint else []) + [f"signature: {callee.signature()}"],
                    trace=trace,
                )
                ok = False
                continue
            else:
                name = a.name
            if name in values:
                if callee.is_layer:
                    self.diags.error(
                        E208,
                        f"argument `{name}` is given twice",
                        a.span,
                        help=[f"signature: {callee.signature()}"],
                        trace=trace,
                    )
                else:
                    self.diags.error(E208, f"argument `{name}` is given twice", a.span)
                ok = False
                continue
            values[name] = value_of(a.value)
            spans[name] = a.value.span
        return values, spans, ok

    def _missing(self, callee: Callee, name: str, span: Span, trace: tuple[Frame, ...]) -> None:
        self.diags.error(
            E207,
            f"{callee.title} needs its argument `{name}`",
            span,
            help=[f"signature: {callee.signature()}"],
            trace=trace,
        )

    def layer(
        self, kind: LayerKind, args: list[ast.Arg], span: Span, value_of: ValueOf, trace: tuple[Frame, ...]
    ) -> Attrs | None:
        """A layer call's checked arguments, every one of the kind's in its order; None on an error."""
        known = self._layers.get(kind.name)
        if known is None:
            # Every argument in the kind's order (the attrs' order), the optional ones at their
            # checked default; a required one's None is never returned: it is given or an error.
            template = {a.name: None if a.required or a.default is None else a.check(a.default) for a in kind.args}
            required = frozenset(a.name for a in kind.args if a.required)
            known = self._layers[kind.name] = (Callee.layer(kind), template, required)
        callee, template, required = known
        values, spans, ok = self._given(callee, args, value_of, trace)
        attrs = Attrs(template)
        for spec in kind.args:
            if spec.name not in values:
                if spec.name in required:
                    self._missing(callee, spec.name, span, trace)
                    ok = False
                continue
            value = values[spec.name]
            if value is UNKNOWN:
                ok = False
                continue
            try:
                attrs[spec.name] = spec.check(value)
            except ArgError as e:
                self.diags.error(
                    e.code,
                    f"`{kind.name}` argument `{spec.name}`: {e}",
                    spans[spec.name],
                    help=[f"signature: {kind.signature()}"],
                    trace=trace,
                )
                ok = False
        return attrs if ok else None

    def params(
        self,
        what: str,
        name: str,
        params: list[ast.Param],
        args: list[ast.Arg],
        span: Span,
        value_of: ValueOf,
        trace: tuple[Frame, ...],
    ) -> dict[str, Any] | None:
        """A block's (what="block") or network alias's (what="network") arguments by parameter;
        defaults may use earlier parameters. A network's missing ones are left to network_params."""
        callee = Callee.definition(what, name, params)
        values, _, ok = self._given(callee, args, value_of, trace)
        bound: dict[str, Any] = {}
        for p in params:
            if p.name in values:
                bound[p.name] = values[p.name]
            elif what == "network":
                continue  # the network's own defaults and --set fill the rest
            elif p.default is not None:
                try:
                    bound[p.name] = self.evaluate(p.default, bound)
                except EvalError as e:
                    self.eval_error(e, trace)
                    ok = False
            else:
                self._missing(callee, p.name, span, trace)
                ok = False
        return bound if ok else None

    def network_params(
        self, name: str, definition: ast.NetworkDef, bound: dict[str, Any], overrides: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """A network's parameters: --set overrides (typed like their defaults), then an alias's
        arguments (bound), then defaults; E504-E506."""
        declared = {p.name: p for p in definition.params}
        ok = True
        for key in overrides:
            if key not in declared:
                hint = suggest(key, list(declared))
                listed = ", ".join(param_text(p) for p in definition.params) or "none"
                self.diags.error(
                    E504,
                    f"network `{name}` has no parameter `{key}`",
                    None,
                    help=([f"did you mean `{hint}`?"] if hint else []) + [f"its parameters: {listed}"],
                )
                ok = False
        env: dict[str, Any] = {}
        for p in definition.params:
            try:
                if p.name in overrides:
                    env[p.name], typed = self._override(p, overrides[p.name], env, bound.get(p.name))
                    ok = ok and typed
                elif p.name in bound:
                    env[p.name] = bound[p.name]
                elif p.default is not None:
                    env[p.name] = self.evaluate(p.default, env)
                else:
                    self.diags.error(
                        E506,
                        f"network parameter `{p.name}` has no value",
                        p.span,
                        help=[f"give it a default, or pass --set {p.name}=VALUE"],
                    )
                    ok = False
            except EvalError as e:
                self.eval_error(e, ())
                ok = False
        return env if ok else None

    def _override(self, p: ast.Param, value: Any, env: dict[str, Any], expected: Any) -> tuple[Any, bool]:
        """A --set value, and whether it has the type of the parameter's default (else E505).
        Raises EvalError when the value is an expression that cannot be evaluated."""
        if isinstance(value, ast.Expr):
            value = self.evaluate(value, env)
        if expected is None and p.default is not None:
            try:
                expected = self.evaluate(p.default, env)
            except EvalError:
                expected = None
        if isinstance(expected, Ref) and isinstance(value, str) and value in self.refs:
            value = self.refs[value]  # the Python API names blocks by string
        if expected is not None and not same_type(expected, value):
            self.diags.error(
                E505,
                f"--set {p.name}: expected {_a(type_name(expected))} like {show(expected)}, "
                f"got {_a(type_name(value))} ({show(value)})",
                p.span,
                help=[f"the default of `{p.name}` is {show(expected)}; give a value of the same type"],
            )
            return value, False
        return value, True

    def evaluate(self, e: ast.Expr, env: Mapping[str, Any]) -> Any:
        """A default or --set value: env's names over the block and layer names, no `in`."""
        return evaluate(e, ChainMap(env, self.refs), None, self.budget)  # type: ignore[arg-type]

    def eval_error(self, e: EvalError, trace: tuple[Frame, ...]) -> None:
        """Report an expression's error."""
        self.diags.error(e.code, str(e), e.span, help=[e.help] if e.help else [], trace=trace)


def signature(name: str, params: list[ast.Param]) -> str:
    """A block's or network's signature for messages: `Bottleneck(planes, stride = …)`."""
    return f"{name}({', '.join(param_text(p) for p in params)})"


def param_text(p: ast.Param) -> str:
    """A parameter as a signature shows it."""
    return p.name if p.default is None else f"{p.name} = …"


def same_type(expected: Any, value: Any) -> bool:
    """Whether a --set value has its default's type (an int may stand for a float)."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return isinstance(expected, bool) and isinstance(value, bool)
    if isinstance(expected, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(expected, float) or isinstance(value, int))
    return type(expected) is type(value)


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word
