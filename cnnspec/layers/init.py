"""Initialisation schemes for `init KIND: weight = SCHEME(args), bias = SCHEME(args)`.

Every layer starts from torch's own default initialisation; a network's init
statements then re-initialise the weight or bias of every layer of a kind, or
of those whose module path matches the statement's pattern, in the order written.
The stock specs use them to reproduce torchvision's schemes exactly.
"""

from __future__ import annotations

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


def pattern_problem(pattern: str) -> str | None:
    """Why a module path pattern of an `init` rule cannot match a path; None when it can."""
    if not pattern:
        return "the pattern is empty"
    if any(not part for part in pattern.split(".")):
        return "the pattern has an empty name between dots"
    return None


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
