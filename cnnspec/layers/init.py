"""Initialisation schemes for `init KIND: weight = SCHEME(args), bias = SCHEME(args)`.

Every layer starts from torch's own default initialisation; a network's init
statements then re-initialise the weight or bias of every layer of a kind, or
of those whose module path matches the statement's pattern, in the order written.
The stock specs use them to reproduce torchvision's schemes exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

#: scheme name -> (allowed keyword arguments with defaults, description)
SCHEMES: dict[str, tuple[dict[str, Any], str]] = {
    "default": ({}, "keep torch's default initialisation"),
    "zeros": ({}, "all zeros"),
    "ones": ({}, "all ones"),
    "constant": ({"value": 0.0}, "a constant value"),
    "normal": ({"mean": 0.0, "std": 1.0}, "normal distribution"),
    "trunc_normal": ({"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}, "normal truncated to [a, b]"),
    "uniform": ({"a": 0.0, "b": 1.0}, "uniform on [a, b]"),
    "uniform_fan_out": ({}, "uniform on ±1/sqrt(out features) (EfficientNet's classifier)"),
    "kaiming_normal": ({"mode": "fan_in", "nonlinearity": "leaky_relu", "a": 0.0}, "He et al. 2015, normal"),
    "kaiming_uniform": ({"mode": "fan_in", "nonlinearity": "leaky_relu", "a": 0.0}, "He et al. 2015, uniform"),
    "xavier_normal": ({"gain": 1.0}, "Glorot & Bengio 2010, normal"),
    "xavier_uniform": ({"gain": 1.0}, "Glorot & Bengio 2010, uniform"),
}

TARGETS = ("weight", "bias")

#: The schemes that scale by a tensor's fan-in and fan-out, which only a tensor of two or more
#: dimensions has (torch refuses them on a bias or a normalisation layer's weight).
FAN_SCHEMES = frozenset({"kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform"})
#: What torch.nn.init.calculate_gain knows, for kaiming's `nonlinearity`.
NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)
_CHOICES = {"mode": ("fan_in", "fan_out"), "nonlinearity": NONLINEARITIES}


def argument_problems(scheme: str, args: dict[str, Any]) -> dict[str, str]:
    """Why each argument given to a scheme cannot be used, by argument name (empty: all can).

    Checked before any tensor exists, so that `check` refuses what torch would
    refuse only when `compile` applies the scheme. Values the caller could not
    evaluate are left out of args.
    """
    out: dict[str, str] = {}
    for name, value in args.items():
        choices = _CHOICES.get(name)
        if choices is not None:
            if value not in choices:
                out[name] = f"expected one of {', '.join(_text(c) for c in choices)}, got {_text(value)}"
        elif isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            out[name] = f"expected a finite number, got {_text(value)}"
    if out:
        return out
    kw = {**SCHEMES[scheme][0], **args}
    if scheme == "normal" and kw["std"] < 0:
        out["std"] = f"a standard deviation cannot be negative, got {_text(kw['std'])}"
    if scheme == "trunc_normal" and kw["std"] <= 0:
        out["std"] = f"a truncated normal needs a positive standard deviation, got {_text(kw['std'])}"
    if scheme in ("uniform", "trunc_normal"):
        # uniform(a, a) is a constant; a truncated normal needs room between its bounds.
        empty = kw["a"] > kw["b"] if scheme == "uniform" else kw["a"] >= kw["b"]
        if empty:
            out["b" if "b" in args else "a"] = f"the interval [a, b] = [{_text(kw['a'])}, {_text(kw['b'])}] is empty"
    return out


def pattern_problem(pattern: str) -> str | None:
    """Why a module path pattern of an `init` rule cannot match a path; None when it can."""
    if not pattern:
        return "the pattern is empty"
    if any(not part for part in pattern.split(".")):
        return "the pattern has an empty name between dots"
    return None


def _text(v: Any) -> str:
    """A value as a spec writes it: true, "fan_in", 0.5."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    return repr(v)


def path_matches(pattern: str, path: str) -> bool:
    """Whether a module path matches a pattern of `init KIND "PATTERN"`.

    Names are compared one by one, so the pattern has as many dot-separated
    names as the path; within a name `*` matches any run of characters, `?`
    one, and `[...]` one of a set (fnmatch's rules, case-sensitive). A `*`
    never crosses a dot: "layer*.*.bn3" matches layer1.0.bn3, not layer1.0.
    """
    parts, names = pattern.split("."), path.split(".")
    return len(parts) == len(names) and all(map(fnmatchcase, names, parts))


def apply(tensor: Any, scheme: str, args: dict[str, Any]) -> None:
    """Re-initialise a tensor in place with a named scheme."""
    import torch
    from torch.nn import init

    kw = {**SCHEMES[scheme][0], **args}
    fns: dict[str, Callable[[], Any]] = {
        "default": lambda: None,
        "zeros": lambda: init.zeros_(tensor),
        "ones": lambda: init.ones_(tensor),
        "constant": lambda: init.constant_(tensor, kw["value"]),
        "normal": lambda: init.normal_(tensor, kw["mean"], kw["std"]),
        "trunc_normal": lambda: init.trunc_normal_(tensor, kw["mean"], kw["std"], kw["a"], kw["b"]),
        "uniform": lambda: init.uniform_(tensor, kw["a"], kw["b"]),
        "uniform_fan_out": lambda: init.uniform_(tensor, -(tensor.shape[0] ** -0.5), tensor.shape[0] ** -0.5),
        "kaiming_normal": lambda: init.kaiming_normal_(
            tensor, a=kw["a"], mode=kw["mode"], nonlinearity=kw["nonlinearity"]
        ),
        "kaiming_uniform": lambda: init.kaiming_uniform_(
            tensor, a=kw["a"], mode=kw["mode"], nonlinearity=kw["nonlinearity"]
        ),
        "xavier_normal": lambda: init.xavier_normal_(tensor, kw["gain"]),
        "xavier_uniform": lambda: init.xavier_uniform_(tensor, kw["gain"]),
    }
    with torch.no_grad():
        fns[scheme]()
