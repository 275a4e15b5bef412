"""Writing a compiled network out: standalone Python source, a torch.export program, or ONNX."""

from __future__ import annotations

import ast as pyast
import builtins
import inspect
from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.backends.names import fx_name
from cnnspec.ir import Graph

if TYPE_CHECKING:
    import torch.fx


def docstring_text(text: str) -> str:
    """text as it may stand inside a triple-quoted docstring of generated code, read back unchanged.

    Spec names and file paths reach the generated module's docstrings: a quote,
    a backslash or a line break in them must not end the string or start an
    escape (a file name holding three quotes and a statement would otherwise
    have that statement run when the module is imported).
    """
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def _class_name(network: str, taken: set[str]) -> str:
    """The generated class's name: the network's, unless it would shadow a builtin (`super`,
    `getattr`) or a name the module itself uses."""
    name = fx_name(network)
    while name in taken or hasattr(builtins, name):
        name += "_"
    return name


def _constructor(module: torch.nn.Module, path: str, known: dict[str, str]) -> str:
    """Python that rebuilds module: its repr where that reads back as the same module (every stock
    layer), else a call giving each constructor argument from the module's own settings (a repr
    omits options such as AvgPool2d's ceil_mode, and writes padding="same" unquoted).

    Raises ExportError where neither rebuilds it: a wrong file is never written. known holds the
    text found for each class and settings, so that ResNet-152's 150 alike batch norms are
    rebuilt once.
    """
    import torch

    cls = type(module)
    key = f"{cls.__module__}.{cls.__qualname__} {_settings(module)!r}"
    if key in known:
        return known[key]
    prefix = "nn." if getattr(torch.nn, cls.__name__, None) is cls else ""
    tried = [prefix + repr(module)]
    call = _settings_call(module)
    if call is not None:
        tried.append(prefix + call)
    for text in tried:
        if _rebuilds(text, module):
            known[key] = text
            return text
    raise ExportError(
        f"module {path!r} ({cls.__name__}) cannot be written as Python source: neither its repr nor its "
        "constructor's arguments, read back from its attributes, rebuild it with the same settings; "
        "export it to .pt2 instead"
    )


def _literal(value: object) -> str | None:
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
        text = _literal(value)
        if text is None:
            return None
        args.append(f"{name}={text}")
    return f"{cls.__name__}({', '.join(args)})"


def _rebuilds(text: str, module: torch.nn.Module) -> bool:
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
    return bool(_settings(rebuilt) == _settings(module))


def _settings(m: torch.nn.Module) -> dict[str, object]:
    """What makes two modules of a class alike: repr, public attributes (the mode aside), and
    parameter and buffer names, shapes and types."""
    public = {k: v for k, v in vars(m).items() if not k.startswith("_") and k != "training"}
    tensors = [(k, tuple(v.shape), v.dtype) for k, v in [*m.named_parameters(), *m.named_buffers()]]
    return {"repr": repr(m), "tensors": tensors, **public}




def write_python(gm: torch.fx.GraphModule, graph: Graph, path: Path) -> None:
    """Write the standalone Python source of a network: a class per block, as a person writes PyTorch."""
    from cnnspec.backends.pysource import python_source as idiomatic  # (it builds on this module's helpers)

    path.write_text(idiomatic(gm, graph))


def write_pt2(gm: torch.fx.GraphModule, graph: Graph, path: Path) -> None:
    """Write a torch.export ExportedProgram (eval mode, batch dimension dynamic)."""
    import torch

    gm.eval()
    example = (torch.randn(2, *graph.input_shape),)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(gm, example, dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


#: ONNX keeps a model in one protobuf, which cannot exceed 2 GiB.
ONNX_MAX_BYTES = 2**31 - 1


class ExportError(ValueError):
    """A network that a format cannot hold (the command line reports it as a usage error)."""


def onnx_refusal(graph: Graph) -> str | None:
    """Why ONNX cannot hold the network, as a message pointing at the spec, or None.

    ONNX has no adaptive max pooling: torch's exporter writes it as a max pool
    only where the output size divides the input size (global pooling
    included), and fails on any other.
    """
    for node in graph.layers():
        if node.kind == "adaptive_maxpool":
            (_, h, w), (_, oh, ow) = node.in_shapes[0], node.out_shape
            if h % oh or w % ow:
                return (
                    f"{node.span}: adaptive_maxpool {node.path!r} pools {h}×{w} to {oh}×{ow} (option size): ONNX "
                    f"has no adaptive max pooling, and torch's exporter writes one only where the output size "
                    f"divides the input size; choose a size that divides {h}×{w}, or export to .pt2 or .py"
                )
    return None


def write_onnx(gm: torch.fx.GraphModule, graph: Graph, path: Path) -> None:
    """Write an ONNX model through torch's exporter (torch.export based; eval mode, batch dimension dynamic).

    The graph is the eval-mode one, so a network with auxiliary outputs exports
    its main output only. The input is named "x", the output "y"; weights are
    stored inside the file. onnxscript must be installed (torch's exporter
    needs it). Raises ExportError for a network whose weights exceed ONNX's 2 GiB,
    one with a layer option ONNX cannot express (onnx_refusal), or one torch's
    exporter fails on; nothing is written then.
    """
    import torch

    size = sum(t.numel() * t.element_size() for t in [*gm.parameters(), *gm.buffers()])
    if size > ONNX_MAX_BYTES:
        raise ExportError(f"{graph.network} holds {size / 2**30:.1f} GiB of weights; an ONNX file holds at most 2 GiB")
    refusal = onnx_refusal(graph)
    if refusal is not None:
        raise ExportError(refusal)
    was_training = gm.training
    gm.eval()
    try:
        example = (torch.randn(2, *graph.input_shape),)
        batch = torch.export.Dim("batch", min=1, max=65536)
        try:
            program = torch.onnx.export(
                gm,
                example,
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=["x"],
                output_names=["y"],
                verbose=False,
            )
        except Exception as e:  # (the exporter raises many kinds; each means "no file")
            reason = next((line for line in str(e).splitlines() if "No ONNX function" in line), type(e).__name__)
            raise ExportError(f"torch's ONNX exporter cannot convert {graph.network}: {reason.strip()}") from e
        assert program is not None
        program.save(str(path), external_data=False)
    finally:
        gm.train(was_training)
