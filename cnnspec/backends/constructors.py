"""Python text that rebuilds a torch module, checked by rebuilding it: what the .py export is made of.

A module is written as its repr where that reads back as the same module, else
as a call of its class with the constructor arguments read from its attributes;
either text is kept only if building it gives a module with the same settings.
"""

from __future__ import annotations

import ast as pyast
import builtins
import inspect
from typing import TYPE_CHECKING

from cnnspec.backends.names import fx_name

if TYPE_CHECKING:
    import torch


class ExportError(ValueError):
    """A network that a format cannot hold (the command line reports it as a usage error)."""


def docstring_text(text: str) -> str:
    """text as it may stand inside a triple-quoted docstring of generated code, read back unchanged.

    Spec names and file paths reach the generated module's docstrings: a quote,
    a backslash or a line break in them must not end the string or start an
    escape (a file name holding three quotes and a statement would otherwise
    have that statement run when the module is imported).
    """
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def class_name(network: str, taken: set[str]) -> str:
    """The generated class's name: the network's, unless it would shadow a builtin (`super`,
    `getattr`) or a name the module itself uses."""
    name = fx_name(network)
    while name in taken or hasattr(builtins, name):
        name += "_"
    return name


def constructor(module: torch.nn.Module, path: str, known: dict[str, str]) -> str:
    """Python that rebuilds module: its repr where that reads back as the same module (every stock
    layer), else a call giving each constructor argument from the module's own settings (a repr
    omits options such as AvgPool2d's ceil_mode, and writes padding="same" unquoted).

    Raises ExportError where neither rebuilds it: a wrong file is never written. known holds the
    text found for each class and settings, so that ResNet-152's 150 alike batch norms are
    rebuilt once.
    """
    import torch

    cls = type(module)
    key = f"{cls.__module__}.{cls.__qualname__} {settings(module)!r}"
    if key in known:
        return known[key]
    prefix = "nn." if getattr(torch.nn, cls.__name__, None) is cls else ""
    tried = [prefix + repr(module)]
    call = _settings_call(module)
    if call is not None:
        tried.append(prefix + call)
    for text in tried:
        if rebuilds(text, module):
            known[key] = text
            return text
    raise ExportError(
        f"module {path!r} ({cls.__name__}) cannot be written as Python source: neither its repr nor its "
        "constructor's arguments, read back from its attributes, rebuild it with the same settings; "
        "export it to .pt2 instead"
    )


def literal(value: object) -> str | None:
    """value as Python source that reads back equal to it, or None (a tensor, an object)."""
    text = repr(value)
    try:
        same = pyast.literal_eval(text) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text if same else None


def _settings_call(module: torch.nn.Module) -> str | None:
    """`Cls(name=value, ...)` for each constructor parameter the module keeps as an attribute of the same
    name (a bias kept as a tensor or None is the flag `bias`); None where a required one is missing."""
    import torch

    cls = type(module)
    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return None
    args = []
    for i, (name, param) in enumerate(params.items()):
        if i == 0 or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD) or name in ("device", "dtype"):
            continue
        if not hasattr(module, name):
            if param.default is param.empty:
                return None
            continue
        value = getattr(module, name)
        if isinstance(param.default, bool) and (value is None or isinstance(value, torch.Tensor)):
            value = value is not None  # nn.Linear(bias=False) keeps bias = None
        if param.default is not param.empty and type(value) is type(param.default) and value == param.default:
            continue
        text = literal(value)
        if text is None:
            return None
        args.append(f"{name}={text}")
    return f"{cls.__name__}({', '.join(args)})"


def rebuilds(text: str, module: torch.nn.Module) -> bool:
    """Whether text, a call of module's class with literal arguments, builds a module with its settings:
    the same repr, public attributes, and parameter and buffer names, shapes and types."""
    import torch

    cls = type(module)
    try:
        call = pyast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(call, pyast.Call) or pyast.unparse(call.func) not in (cls.__name__, f"nn.{cls.__name__}"):
        return False
    try:
        args = [pyast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: pyast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
        if len(kwargs) != len(call.keywords):
            return False
        with torch.device("meta"):  # the structure only: no memory for the weights
            rebuilt = cls(*args, **kwargs)
    except Exception:  # (any failure to rebuild means the text is not a constructor)
        return False
    return bool(settings(rebuilt) == settings(module))


def settings(m: torch.nn.Module) -> dict[str, object]:
    """What makes two modules of a class alike: repr, public attributes (the mode aside), and
    parameter and buffer names, shapes and types."""
    public = {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
    tensors = [(k, tuple(v.shape), v.dtype) for k, v in [*m.named_parameters(), *m.named_buffers()]]
    return {"repr": repr(m), "tensors": tensors, **public}
