"""Every option of every layer kind round-trips through every export format.

For each kind in the layer table and each of its arguments, a small network
uses a value of that argument other than its default (values are drawn from
what the argument's checker accepts, the strings it names in its error
message included; HAND lists the few that need care), and each kind is also
built with its defaults. Each network is compiled with cnnspec.compile and
exported:

- to Python source, which must import, load the compiled module's
  state_dict with strict=True, give the same outputs in eval mode, the same
  outputs in one training step under the same seed, and the same buffers
  (batch-norm statistics) after it;
- to .pt2 (torch.export), whose program must give the same eval outputs;
- to ONNX (where onnxruntime and onnxscript are installed), run in
  onnxruntime, or refused with ExportError where ONNX cannot express the
  option (ONNX_REFUSED), never written wrong.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from support import load_generated_class

import cnnspec
from cnnspec.api import analyse
from cnnspec.backends import export
from cnnspec.backends.fx import to_graph_module
from cnnspec.layers.kind import Arg, ArgError, LayerKind, show_value
from cnnspec.layers.registry import all_kinds

#: Values tried, in order, for an argument: the first that its checker accepts and that builds.
POOL: tuple[Any, ...] = (2, 3, 1, [2, 1], [1, 2], True, False, 0.25, 0.5, 1e-3, 0.2, 0, 1.5, -0.5)
#: The input every network gets: odd sizes, so that ceil_mode and padding change the output.
INPUT = (4, 7, 7)
#: The input of the layers that take N×D tokens (attention).
TOKENS = (5, 4)

#: Values that need care, by (kind, argument): tried before POOL.
HAND: dict[tuple[str, str], list[Any]] = {
    ("groupnorm", "groups"): [2],  # must divide the 4 channels
    ("conv", "groups"): [2],
    ("conv", "out"): [4],  # groups = 2 must divide it too
    ("lrn", "size"): [3],
    ("stochastic_depth", "p"): [0.5],
    ("dropout", "p"): [0.25],
    ("maxpool", "padding"): [1],  # at most half the kernel
    ("avgpool", "padding"): [1],
    # The tensor ops, on the 4×7×7 input (torch dims: the batch is 0).
    ("permute", "dims"): [[0, 2, 3, 1], [0, -1, 1, 2]],
    ("reshape", "shape"): [[7, 28], [4, 49]],
    ("transpose", "dim0"): [2, 1],
    ("transpose", "dim1"): [3, -2],
    ("select", "dim"): [2, -1],
    ("select", "index"): [1, -2],
    ("slice", "dim"): [2, -1],
    ("slice", "start"): [1],
    ("slice", "end"): [5],
    ("slice", "step"): [2],
    ("pad", "pad"): [[1, 2], [0, 1, 2, -1]],
    ("pad", "value"): [0.5],
    ("roll", "shifts"): [[2], [-3]],
    ("roll", "dims"): [[3], [1]],
    ("mean", "dims"): [[2, 3], [-1]],
    ("chunk", "chunks"): [2, [1, 3]],
    ("chunk", "index"): [1, -2],
    ("chunk", "dim"): [-3],
    ("channel_shuffle", "groups"): [2, 4],
    ("upsample", "scale"): [1.5],
    ("upsample", "size"): [[9, 11]],
    ("conv_transpose", "out"): [4, 6],
    ("conv_transpose", "groups"): [2],
    ("conv_transpose", "output_padding"): [1],
    ("flatten", "start"): [2],
    ("flatten", "end"): [2],
    ("split", "chunks"): [2, [1, 3]],  # two parts (a count or sizes) for the two branches of _call
    ("attention", "heads"): [2],  # must divide the tokens' width 4
    ("window_attention", "heads"): [1, 7],  # must divide the 7 channels of the 4×7×7 map read as H×W×C
}
#: Other arguments an option needs beside it, by (kind, argument): output_padding needs a stride above 1.
WITH: dict[tuple[str, str], dict[str, Any]] = {
    ("conv_transpose", "output_padding"): {"stride": 2},
    ("upsample", "align_corners"): {"mode": "bilinear"},
}
#: Extra cases: option combinations where one value alone does not reach the corner.
EXTRA: list[tuple[str, str, str]] = [
    ("conv", "padding", 'conv(4, [2, 3], padding = "same", dilation = 2)'),  # asymmetric "same" padding
    ("avgpool", "count_include_pad", "avgpool(3, 2, padding = 1, ceil_mode = true, count_include_pad = false)"),
    ("maxpool", "ceil_mode", "maxpool(3, stride = 2, padding = 1, dilation = 2, ceil_mode = true)"),
    ("adaptive_maxpool", "size", "adaptive_maxpool(1)"),  # global: the one size of 7×7 that ONNX holds
    # Learned tensors as the families use them: a layer scale, a class token, a position embedding.
    ("param", "shape", "mul { identity; layer_scale: param([4, 1, 1], 0.5) }"),
    ("param", "shape", "concat { token: param([1, 1, 7, 7], 0.25); identity }"),
    ("param", "buffer", "add { identity; pos: param([1, 4, 7, 7], 0.5, buffer = true) }"),
]


def _string_options(arg: Arg) -> list[str]:
    """The strings an argument's checker names when it refuses a value (a choice's options, "same")."""
    try:
        arg.check("\x00")
    except ArgError as e:
        return [m[0] or m[1] for m in re.findall(r"'(\w+)'|\"(\w+)\"", str(e))]
    return []


def _accepted(arg: Arg, value: Any) -> bool:
    try:
        arg.check(value)
    except ArgError:
        return False
    return True


def _call(kind: LayerKind, args: dict[str, Any]) -> str:
    """The spec text calling kind with args (required ones positionally)."""
    text = ", ".join(f"{k} = {_spec_value(v)}" for k, v in args.items())
    if kind.is_join:  # a join's arguments (split's chunks, concat's dim) before its two branches
        return f"{kind.name}({text}) {{ identity; relu }}" if text else f"{kind.name} {{ identity; relu }}"
    return f"{kind.name}({text})" if text else kind.name


def _spec_value(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(map(_spec_value, v)) + "]"
    return show_value(v)


def _spec(layer: str) -> str | None:
    """A network around one layer, on a feature map, on flat features or on tokens; None if none checks."""
    for shape, before in ((INPUT, ""), (INPUT, "flatten\n    "), (TOKENS, "")):
        text = f"network T {{\n    input: {' x '.join(map(str, shape))}\n    {before}{layer}\n}}\n"
        try:
            cnnspec.check(text)
        except cnnspec.SpecError:
            continue
        return text
    return None


def _candidates(kind: LayerKind, arg: Arg) -> list[Any]:
    values = [*HAND.get((kind.name, arg.name), []), *_string_options(arg), *POOL]
    return [v for v in values if _accepted(arg, v)]


def _required(kind: LayerKind) -> dict[str, Any] | None:
    """Values for the required arguments of kind under which a small network checks."""
    args: dict[str, Any] = {}
    for arg in kind.args:
        if not arg.required:
            continue
        for v in _candidates(kind, arg):
            if _spec(_call(kind, {**args, arg.name: v})) is not None or len(args) + 1 < sum(
                a.required for a in kind.args
            ):
                args[arg.name] = v
                break
        else:
            return None
    return args if _spec(_call(kind, args)) is not None else None


def cases() -> list[Any]:
    """(kind, option, network source) for each kind with its defaults and each argument set off its default."""
    out: list[Any] = []
    for name, kind in all_kinds().items():
        base = _required(kind)
        assert base is not None, f"no small network checks for {name}"
        out.append(pytest.param(name, "(defaults)", _spec(_call(kind, base)), id=f"{name}-defaults"))
        for arg in kind.args:
            default = None if arg.required else arg.check(arg.default) if arg.default is not None else None
            found = 0
            for v in _candidates(kind, arg):
                if arg.check(v) == default or (arg.required and v == base[arg.name]):
                    continue
                text = _spec(_call(kind, {**base, **WITH.get((name, arg.name), {}), arg.name: v}))
                if text is None:
                    continue
                out.append(pytest.param(name, arg.name, text, id=f"{name}-{arg.name}={_spec_value(v)}"))
                found += 1
                # Every string option (padding "same" and "valid"), otherwise one value.
                if not isinstance(v, str):
                    break
            assert found, f"no non-default value of {name}'s {arg.name} checks"
    for name, option, layer in EXTRA:
        text = _spec(layer)
        assert text is not None, layer
        out.append(pytest.param(name, option, text, id=f"{name}-{option}-combined"))
    return out


CASES = cases()


def _compiled(text: str) -> tuple[Any, torch.fx.GraphModule]:
    checked = analyse(text)
    torch.manual_seed(0)
    gm = to_graph_module(checked.graph)
    # Running statistics other than torch's (0, 1), so that eval mode uses them.
    for m in gm.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return checked, gm


def _x(shape: tuple[int, ...], batch: int = 3) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(1))



@pytest.mark.parametrize(("kind", "option", "text"), CASES)
def test_option_round_trips_through_python_source(kind: str, option: str, text: str, tmp_path: Path) -> None:
    checked, gm = _compiled(text)
    path = tmp_path / "model.py"
    export.write_python(gm, checked.graph, path)
    model = load_generated_class(path)()
    model.load_state_dict(gm.state_dict(), strict=True)
    x = _x(checked.graph.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), gm.eval()(x), rtol=0, atol=0)
        # Training mode: dropout's and stochastic depth's draws, batch-norm's statistics and momentum.
        torch.manual_seed(5)
        want = gm.train()(x)
        torch.manual_seed(5)
        got = model.train()(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(model.state_dict(), gm.state_dict(), rtol=0, atol=0)
    for (name, mine), (_, theirs) in zip(model.named_modules(), gm.named_modules(), strict=True):
        if name:  # every submodule rebuilt with the same settings
            assert repr(mine) == repr(theirs), name
            assert _settings(mine) == _settings(theirs), name


def _settings(m: torch.nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(m).items() if not k.startswith("_") and not isinstance(v, torch.Tensor)}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "option", "text"), CASES)
def test_option_round_trips_through_pt2(kind: str, option: str, text: str, tmp_path: Path) -> None:
    checked, gm = _compiled(text)
    path = tmp_path / "model.pt2"
    export.write_pt2(gm, checked.graph, path)
    program = torch.export.load(str(path)).module()
    gm.eval()
    for batch in (3, 1):
        x = _x(checked.graph.input_shape, batch)
        with torch.no_grad():
            torch.testing.assert_close(program(x), gm(x), rtol=1e-5, atol=1e-5)


#: Cases that ONNX cannot express, which write_onnx must refuse, with what the refusal names: adaptive
#: max pooling to a size that does not divide the input (torch's exporter has no conversion for it).
ONNX_REFUSED = {
    ("adaptive_maxpool", "(defaults)"): "pools 7×7 to 2×2 \\(option size\\)",
    ("adaptive_maxpool", "size"): "pools 7×7 to 3×3 \\(option size\\)",
}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "option", "text"), CASES)
def test_option_round_trips_through_onnx_or_is_refused(kind: str, option: str, text: str, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")  # torch's ONNX exporter needs it
    checked, gm = _compiled(text)
    path = tmp_path / "model.onnx"
    if (kind, option) in ONNX_REFUSED and "(1)" not in text:
        with pytest.raises(export.ExportError, match=ONNX_REFUSED[kind, option]):
            export.write_onnx(gm, checked.graph, path)
        assert not path.exists()
        return
    export.write_onnx(gm, checked.graph, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gm.eval()
    for batch in (3, 1):
        x = _x(checked.graph.input_shape, batch)
        [got] = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(got), gm(x), rtol=1e-4, atol=1e-5)


def test_compile_refuses_an_onnx_file_it_cannot_write_right(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnspec.cli import main

    spec = tmp_path / "net.cnn"
    spec.write_text("network N {\n    input: 4 x 7 x 7\n    conv(4, 3)\n    adaptive_maxpool(2)\n}\n")
    out = tmp_path / "net.onnx"
    assert main(["compile", str(spec), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4:5: adaptive_maxpool '1' pools 5×5 to 2×2 (option size)" in err
    assert "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [spec]


class _Scaled(torch.nn.Module):
    """A module whose setting neither its repr nor an attribute of its parameter's name holds."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.factor = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def test_python_source_refuses_a_module_it_cannot_rebuild(tmp_path: Path) -> None:
    checked, gm = _compiled("network N {\n    input: 4 x 7 x 7\n    relu\n}\n")
    gm.add_module("0", _Scaled(2.0))  # what a registered layer might build
    path = tmp_path / "model.py"
    with pytest.raises(export.ExportError, match=r"module '0' \(_Scaled\) cannot be written as Python source"):
        export.write_python(gm, checked.graph, path)
    assert not path.exists()
