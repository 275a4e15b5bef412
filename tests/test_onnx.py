"""ONNX export: the stock specs through torch's exporter, run in onnxruntime, against the compiled module.

Of the specs in specs/ that check with their defaults, one for each distinct set of ops (layer
kinds with their arguments, sizes left out: see _ops) is exported with
cnnspec.backends.export.write_onnx (what `cnnspec compile -o model.onnx` writes) and run in
onnxruntime at batch 2; ResNet-101 and -152 go through the exporter as ResNet-50 does, VGG-13 to
-19 as VGG-11, and are left out. So are the members of a family that differ from its smallest only in
numbers the exporter passes through as attributes (attention heads, a patch embedding's patch size, a
learned tensor's shape, a dropout or stochastic depth probability): ViT-B/16, B/32 and L/16 go through
as vit_digits.cnn (the same vit.cnn at a small size), Swin-S as Swin-T, ConvNeXt-S and -B as ConvNeXt-T,
EfficientNet-B3 as B0; tests/test_vit.py, test_swin.py and test_families.py pin each member's twin.
Each goes through at a smaller input where that changes nothing the exporter writes but numbers (INPUT),
or as a smaller network of its file (STAND_IN): a family with a parameter for its depth with fewer
repeated blocks, Swin-T, the one family without a small member, at a smaller size too, and Inception-v3
without the auxiliary head that the exported graph leaves out;
test_each_export_has_its_specs_ops_and_size_cases checks both against the spec as it stands.
The output must match the compiled module's in eval mode within 1e-4, after batch-norm statistics
are calibrated on a random batch (see _calibrate_norms), wherever float32 arithmetic can reach that
(see _assert_matches: both are also measured against the module run in float64). Family files
without defaults (resnet.cnn, vgg.cnn) are listed in
FAMILY_FILES and tested to need parameters, so no spec drops out unnoticed. Exporting is slow
(torch.export traces every op), so all but the smallest specs are marked slow; every layer
option's own round trip is tests/test_export_options.py's.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import cnnspec
from cnnspec.api import analyse
from cnnspec.backends.export import write_onnx
from cnnspec.backends.fx import to_graph_module

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")  # torch's ONNX exporter needs it

SPECS = Path(__file__).resolve().parent.parent / "specs"

#: Family files whose networks need parameters; each is tested to need them.
FAMILY_FILES = {"resnet.cnn": "layers", "vgg.cnn": "cfg", "vit.cnn": "patch_size", "convnext.cnn": "setting"}
#: Specs quick enough to export in the default run.
FAST = {"lenet5.cnn"}


def _marks(name: str) -> list[Any]:
    return [] if name in FAST else [pytest.mark.slow]


STOCK = sorted(p.name for p in SPECS.glob("*.cnn") if p.name not in FAMILY_FILES)
#: Arguments that only size a layer: two networks whose layers differ only in these (ResNet-50 and
#: ResNet-152, VGG-11 and VGG-19, ViT-B and ViT-L) go through the exporter as the same ops. The exporter
#: writes a head count into the attention's reshapes and a learned tensor's shape into its initializer,
#: as it writes a channel count into a convolution's weight.
_SIZES = {"out", "channels", "features", "heads", "shape"}


def _is_patch_embedding(attrs: dict[str, Any]) -> bool:
    """A convolution whose kernel tiles its input (kernel = stride > 1, no padding): ViT's and ConvNeXt's stems."""
    kernel = attrs.get("kernel")
    return kernel == attrs.get("stride") and attrs.get("padding") == (0, 0) and kernel != (1, 1)


def _exported_layers(graph: Any) -> list[Any]:
    """The layers the exported (eval-mode) graph computes: those the output depends on, auxiliary heads left out."""
    main = graph.ancestors(graph.output)
    return [node for node in graph.layers() if node.id in main]


def _ops(graph: Any) -> frozenset[tuple[str, str]]:
    """The network's layers as the exporter sees them: each kind with its arguments, sizes left out."""
    ops = set()
    for node in _exported_layers(graph):
        attrs = {k: v for k, v in node.attrs.items() if k not in _SIZES}
        if "groups" in attrs:  # grouped and depthwise convolutions are other ops than plain ones
            attrs["groups"] = attrs["groups"] > 1
        if "p" in attrs:  # dropout and stochastic depth are the identity in the exported (eval) graph
            attrs["p"] = attrs["p"] > 0
        if node.kind == "conv" and _is_patch_embedding(attrs):  # ViT-B/16 and B/32: one op, another patch size
            attrs["kernel"] = attrs["stride"] = "patch"
        ops.add((node.kind, repr(sorted(attrs.items()))))
    return frozenset(ops)


def _distinct(names: list[str]) -> list[str]:
    """One spec, the one with the fewest nodes, for each distinct set of ops: the depth variants of a
    family add nothing the exporter has not been through, and exporting is slow."""
    chosen: dict[frozenset[tuple[str, str]], tuple[int, str]] = {}
    for name in names:
        graph = analyse(SPECS / name).graph  # once: every worker collects this module
        size = (len(graph.nodes), name)
        ops = _ops(graph)
        chosen[ops] = min(chosen.get(ops, size), size)
    return sorted(name for _, name in chosen.values())


EXPORTED = _distinct(STOCK)

#: The input each exported spec runs at where a smaller one than its own leaves its ops and size cases
#: (_size_cases) as they are: a network's cost is its arithmetic, the exporter's its ops. The others
#: need their own size: AlexNet's adaptive pooling is the identity there (6×6), GoogLeNet-2014's
#: avgpool(7) needs a 7×7 map; 32×32 would leave VGG-16-D's last pooling a 1×1 map.
INPUT: dict[str, tuple[int, ...]] = {
    "alexnet2012.cnn": (3, 99, 99),
    "googlenet.cnn": (3, 64, 64),
    "vgg16_d.cnn": (3, 64, 64),
}
#: Specs exported as another network of their own file (keyword arguments to analyse: the family
#: network's parameters, which an alias such as resnet50.cnn takes too), with the same exported ops and
#: size cases and fewer repeated blocks: the exporter's cost is per op, and a repeated block adds none
#: it has not been through. Each family keeps one block of each kind its stock member has: a stage's
#: first block (the one that strides or widens) and, where a later one adds a residual (MobileNet-v2,
#: EfficientNet, whose stages of one block would never keep their shape), a second. ResNets and DenseNet
#: one block a stage; EfficientNet's depth_mult of 0.26 leaves each stage one block but its 4-block
#: stage 2 (ceil(4 × 0.26)); VGG-11 one convolution between poolings, at its own size (its adaptive
#: pooling is the identity at 224×224); ViT one encoder layer. Swin-T (186 nodes at 224×224), the one
#: family without a small member, as two stages of two blocks at 56×56, the first with shifted windows
#: over a 14×14 map, the second one 7×7 window, where the shift falls away, as in Swin-T's last stage.
#: Inception-v3 without its auxiliary head, which the exported (eval-mode) graph leaves out and which
#: alone needs the 299×299 input (a 17×17 map); its file, as GoogLeNet's and VGG-16-D's, has no
#: parameter for its depth.
_SMALL = (3, 64, 64)
STAND_IN: dict[str, dict[str, Any]] = {
    "convnext_tiny.cnn": {
        "input_shape": _SMALL, "setting": [[96, 192, 1], [192, 384, 1], [384, 768, 1], [768, 0, 1]],
    },
    "densenet.cnn": {"input_shape": _SMALL, "block_config": [1, 1, 1, 1]},
    "efficientnet.cnn": {"input_shape": _SMALL, "depth_mult": 0.26},
    "inception_v3.cnn": {"input_shape": (3, 107, 107), "aux_logits": False},
    "mobilenet_v2.cnn": {
        "input_shape": _SMALL,
        "setting": [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2], [6, 64, 1, 2], [6, 96, 1, 1], [6, 160, 1, 2],
                    [6, 320, 1, 1]],
    },
    "resnet18.cnn": {"input_shape": _SMALL, "layers": [1, 1, 1, 1]},
    "resnet50.cnn": {"input_shape": _SMALL, "layers": [1, 1, 1, 1]},
    "resnext50_32x4d.cnn": {"input_shape": _SMALL, "layers": [1, 1, 1, 1]},
    "swin.cnn": {"input_shape": (3, 56, 56), "embed_dim": 16, "depths": [2, 2], "num_heads": [2, 4]},
    "vgg11.cnn": {"cfg": [64, "M", 128, "M", 256, "M", 512, "M", 512, "M"]},
    "vit_digits.cnn": {"num_layers": 1},
}


def _exported(name: str) -> Any:
    """The spec as exported: at its INPUT size, or its STAND_IN network."""
    if name in STAND_IN:
        return analyse(SPECS / name, **STAND_IN[name])
    return analyse(SPECS / name, input_shape=INPUT.get(name))


def _size_cases(graph: Any) -> frozenset[tuple[str, ...]]:
    """What the exported ops do that depends on the sizes of the maps, beyond their arguments: whether
    an adaptive pooling is global, the identity, or divides its input; whether a pooling's ceil_mode
    changes its output; whether window attention shifts, sees one window, or pads; which layers
    give a 1×1 map (a convolution seeing padding only, a reduction over nothing)."""
    cases = set()
    for node in _exported_layers(graph):
        a, shape = node.attrs, node.in_shapes[0] if node.in_shapes else ()
        if node.kind.startswith("adaptive_"):
            i, o = shape[-2:], node.out_shape[-2:]
            divides = i[0] % o[0] == i[1] % o[1] == 0
            cases.add((node.kind, f"global={o == (1, 1)}", f"identity={i == o}", f"divides={divides}"))
        elif a.get("ceil_mode"):
            stride, padding, dilation = a["stride"] or a["kernel"], a["padding"], a.get("dilation", (1, 1))
            floor = tuple(
                (n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(shape[-2:], a["kernel"], stride, padding, dilation, strict=True)
            )
            cases.add((node.kind, f"ceil changes the size={floor != node.out_shape[-2:]}"))
        elif node.kind == "window_attention":
            h, w, win = shape[0], shape[1], a["window"]
            ph, pw = -(-h // win) * win, -(-w // win) * win
            cases.add((node.kind, f"shifts={bool(a['shift']) and (win < ph or win < pw)}",
                       f"one window={(ph, pw) == (win, win)}", f"pads={(ph, pw) != (h, w)}"))
        if len(node.out_shape) == 3 and node.out_shape[-2:] == (1, 1):
            cases.add((node.kind, "1×1 map"))
    return frozenset(cases)


def _fingerprint(gm: torch.fx.GraphModule) -> str:
    """Identical for two modules with the same graph, submodules and parameter shapes."""
    parts = [gm.code, repr(gm), *(f"{k}:{tuple(v.shape)}" for k, v in gm.state_dict().items())]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@pytest.fixture(scope="module")
def exports() -> dict[str, tuple[Path, dict[str, Any]]]:
    """ONNX files already written in this run, by module fingerprint, with the weights they hold."""
    return {}


def _calibrate_norms(gm: torch.fx.GraphModule, shape: tuple[int, ...]) -> None:
    """Set every batch norm's running statistics from one random batch, as training would.

    Freshly initialised running statistics (mean 0, variance 1) normalise
    nothing in eval mode, and outputs grow with depth (ResNet-152 reaches 1e8,
    Inception-v3 1e12), where float32 rounding alone exceeds any absolute
    tolerance. Calibrated, the outputs stay near 1 as a trained network's do.
    """
    norms = [m for m in gm.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:  # nothing to set (VGG, AlexNet): a forward pass would only cost time
        return
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly its statistics
    gm.train()
    with torch.no_grad():
        gm(torch.randn(4, *shape, generator=torch.Generator().manual_seed(2)))
    for m in norms:
        m.momentum = 0.1


def _session(path: Path) -> Any:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _assert_matches(got: np.ndarray, want: np.ndarray, exact: np.ndarray) -> None:
    """onnxruntime's output (got) against the compiled module's (want) and the exact result.

    exact is the compiled module run in float64 on the same weights and input.
    The tolerance is 1e-4, relative to the outputs' scale where it exceeds 1:
    float32 keeps about 7 digits, and a network without batch norm (vgg16_d.cnn)
    reaches 1e8. Where torch's own float32 output is further than that from
    the exact one, two float32 implementations cannot agree to 1e-4 either, and
    onnxruntime must instead be no less accurate than torch, within a factor of 2.

    That is the case for the deepest ResNets. Measured at batch 2 (onnxruntime
    1.32, torch 2.14.1, CPU), with outputs near 1, as max |difference|:

        spec        torch32-exact  ort-exact  ort-torch32  exact(input rounded)-exact
        resnet50    3.4e-5         2.5e-5     4.4e-5       4.7e-6
        resnet101   1.7e-4         1.3e-4     2.3e-4       2.5e-5
        resnet152   8.8e-4         6.2e-4     1.0e-3       1.2e-4

    The last column is the float64 network given its input perturbed by one
    float32 rounding (relative 2**-24): ResNet-152, randomly initialised,
    amplifies a perturbation thousands-fold through its 50 residual blocks,
    so rounding in each of them leaves torch's float32 result 8.8e-4 from the
    exact one (8.2e-4 with torch's oneDNN kernels switched off). onnxruntime
    is closer to it than torch is, with its graph optimisations (conv/batch-norm
    fusion) or without them (6.1e-4 with ORT_DISABLE_ALL), and torchvision's
    resnet152 exported the same way gives the same figures (torch 7.8e-4,
    onnxruntime 5.5e-4): accumulation-order noise, not an export error.
    """
    assert got.shape == want.shape == exact.shape
    tol = 1e-4 * max(1.0, float(np.abs(exact).max()))
    noise = float(np.abs(want - exact).max())  # torch's own float32 rounding error
    assert np.abs(got - exact).max() <= max(tol, 2 * noise)
    # Parity with the compiled module: 1e-4 wherever torch's own error leaves room for it.
    assert np.abs(got - want).max() <= max(tol, 3 * noise)


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in EXPORTED])
def test_onnx_matches_compiled_module(
    name: str, tmp_path_factory: pytest.TempPathFactory, exports: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    checked = _exported(name)
    torch.manual_seed(0)
    gm = to_graph_module(checked.graph)
    _calibrate_norms(gm, checked.graph.input_shape)  # leaves it in training mode
    key = _fingerprint(gm)
    if key in exports:
        path, weights = exports[key]
        gm.load_state_dict(weights, strict=True)
    else:
        path = tmp_path_factory.mktemp("onnx") / f"{Path(name).stem}.onnx"
        write_onnx(gm, checked.graph, path)
        assert gm.training, "write_onnx exports in eval mode and restores the mode it found"
        exports[key] = (path, gm.state_dict())
    gm.eval()
    session = _session(path)
    [inp] = session.get_inputs()
    assert inp.name == "x" and inp.shape[0] == "batch"
    assert [o.name for o in session.get_outputs()] == ["y"]
    gm64 = copy.deepcopy(gm).double()
    g = torch.Generator().manual_seed(1)
    for batch in (2, 1) if name in FAST else (2,):  # the batch dimension is dynamic
        x = torch.randn(batch, *checked.graph.input_shape, generator=g)
        [got] = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            want = gm(x).numpy()
            exact = gm64(x.double()).numpy()
        _assert_matches(got, want, exact)


@pytest.mark.parametrize("name", sorted(INPUT.keys() | STAND_IN.keys()))
def test_each_export_has_its_specs_ops_and_size_cases(name: str) -> None:
    assert name in EXPORTED, f"{name} is no longer exported: drop it from INPUT or STAND_IN"
    stock, exported = analyse(SPECS / name).graph, _exported(name).graph
    assert len(exported.nodes) <= len(stock.nodes)
    assert all(e <= s for e, s in zip(exported.input_shape, stock.input_shape, strict=True))
    assert _ops(exported) == _ops(stock)
    assert _size_cases(exported) == _size_cases(stock)


@pytest.mark.parametrize("name", sorted(FAMILY_FILES))
def test_family_files_need_parameters(name: str) -> None:
    with pytest.raises(cnnspec.SpecError, match=FAMILY_FILES[name]):
        cnnspec.check(SPECS / name)


@pytest.mark.slow
def test_onnx_of_a_network_with_aux_outputs_holds_the_main_output(tmp_path: Path) -> None:
    checked = analyse(SPECS / "googlenet.cnn", aux_logits=True, input_shape=(3, 96, 96))
    gm = to_graph_module(checked.graph)
    write_onnx(gm, checked.graph, tmp_path / "googlenet.onnx")
    gm.eval()
    session = _session(tmp_path / "googlenet.onnx")
    assert len(session.get_outputs()) == 1
    x = torch.randn(2, *checked.graph.input_shape)
    [got] = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert np.abs(got - gm(x).numpy()).max() <= 1e-4


def test_compile_command_writes_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnspec.cli import main

    out = tmp_path / "lenet5.onnx"
    assert main(["compile", str(SPECS / "lenet5.cnn"), "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    assert "ONNX" in capsys.readouterr().out
    assert _session(out).get_inputs()[0].shape == ["batch", 1, 32, 32]
