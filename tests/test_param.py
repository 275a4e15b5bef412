"""Learned tensors (`param`): registered at the spec's module path, used by add, mul and concat, in every pass."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import load_generated_class, run_cli
from test_analysis import measure_saved_bytes

import cnnspec
from cnnspec.api import analyse
from cnnspec.backends import export
from cnnspec.backends.fx import to_graph_module

#: A ConvNeXt-like block (layer scale), a class token and a position embedding (a buffer here).
SPEC = """
block Block(sd) {
    residual {
        mul {
            block: { conv(in.channels, 3, padding = 1, groups = in.channels); permute([0, 2, 3, 1])
                     layernorm(1e-6, over = "last"); linear(2 * in.channels); gelu; linear(in.channels)
                     permute([0, 3, 1, 2]) }
            layer_scale: param([in.channels, 1, 1], 1e-6)
        }
        stochastic_depth: stochastic_depth(sd, "row")
    }
}
network T {
    input: 3 x 16 x 16
    features: { conv(8, 4, stride = 4); Block(0.0); Block(0.0); Block(0.0) }
    flatten(2)
    transpose(1, 2)
    concat { class_token: param([1, 1, 8]); identity }
    add { identity; pos_embedding: param([1, 17, 8], buffer = true) }
    select(1, 0)
    head: linear(10)
}
"""


class _Block(torch.nn.Module):
    """The reference: torchvision's CNBlock, as it registers its layer scale."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.block = torch.nn.Sequential(
            torch.nn.Conv2d(d, d, 3, padding=1, groups=d),
            torch.nn.Identity(),
            torch.nn.LayerNorm(d, eps=1e-6),
            torch.nn.Linear(d, 2 * d),
            torch.nn.GELU(),
            torch.nn.Linear(2 * d, d),
        )
        self.layer_scale = torch.nn.Parameter(torch.ones(d, 1, 1) * 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block[0](x).permute(0, 2, 3, 1)
        for m in list(self.block)[2:]:
            y = m(y)
        return self.layer_scale * y.permute(0, 3, 1, 2) + x


class _Ref(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.class_token = torch.nn.Parameter(torch.zeros(1, 1, 8))
        self.register_buffer("pos_embedding", torch.zeros(1, 17, 8))
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 4, stride=4), *[_Block(8) for _ in range(3)])
        self.head = torch.nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embedding
        return self.head(x[:, 0])


def test_param_is_registered_at_its_module_path_and_loads_strictly() -> None:
    ref = _Ref()
    with torch.no_grad():
        for p in [*ref.parameters(), *ref.buffers()]:
            p.normal_()
    m = cnnspec.compile(SPEC)
    assert "features.1.layer_scale" in m.state_dict()  # the path itself, not ...layer_scale.weight
    assert set(m.state_dict()) == set(ref.state_dict())
    m.load_state_dict(ref.state_dict(), strict=True)
    assert dict(m.named_buffers()).keys() == {"pos_embedding"}
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(m.eval()(x), ref.eval()(x), rtol=0, atol=1e-5)


def test_param_counts_apart_from_buffers_and_costs_no_macs() -> None:
    c = analyse(SPEC)
    ref = _Ref()
    assert c.analysis.trainable_params == sum(p.numel() for p in ref.parameters())
    params = {n.path: (c.analysis.params[n.id], c.analysis.macs[n.id]) for n in c.graph.nodes}
    assert params["features.1.layer_scale"] == ((8, 0), 0)
    assert params["pos_embedding"] == ((0, 17 * 8), 0)
    assert params["class_token"] == ((8, 0), 0)


def test_param_starts_at_its_value_and_init_rules_set_it() -> None:
    m = cnnspec.compile(SPEC)
    assert torch.equal(m.features[1].layer_scale, torch.full((8, 1, 1), 1e-6))
    ruled = SPEC.replace(
        "input: 3 x 16 x 16", 'input: 3 x 16 x 16\n    init param "class_token": weight = normal(std = 0.02)'
    )
    torch.manual_seed(0)
    token = cnnspec.compile(ruled).class_token
    assert token.std().item() > 0.005 and token.requires_grad


def test_param_is_no_activation_in_the_memory_figures() -> None:
    c = analyse(SPEC)
    gm = to_graph_module(c.graph)
    for batch in (1, 3):
        assert c.analysis.activation_bytes(batch) == measure_saved_bytes(gm, torch.randn(batch, 3, 16, 16))


def test_param_is_never_overwritten_in_place() -> None:
    m = cnnspec.compile("network T { input: 4 x 2 x 2\n add { p: param([1, 4, 2, 2], 1.0); identity }\n relu }")
    m.train()(torch.randn(2, 4, 2, 2)).sum().backward()
    assert torch.equal(m.p.detach(), torch.ones(1, 4, 2, 2))


def test_identical_blocks_with_a_param_fold_and_draw(tmp_path: Path) -> None:
    summary = cnnspec.check(SPEC).summary
    assert "features.1-3  Block ×3" in summary
    assert "class_token     param      1×8          8" in summary  # the per-sample shape, its parameters
    spec = tmp_path / "t.cnn"
    spec.write_text(SPEC)
    run = run_cli("diagram", spec, "-o", tmp_path / "t.svg")
    assert run.rc == 0, run.err
    svg = (tmp_path / "t.svg").read_text()
    assert "×3" in svg and "param 1×1×8" in svg


def test_python_source_rebuilds_params_and_buffers(tmp_path: Path) -> None:
    c = analyse(SPEC)
    gm = to_graph_module(c.graph)
    path = tmp_path / "model.py"
    export.write_python(gm, c.graph, path)
    text = path.read_text()
    assert "self.layer_scale = nn.Parameter(torch.full((8, 1, 1), 1e-06))" in text
    assert "self.register_buffer('pos_embedding', torch.full((1, 17, 8), 0.0))" in text
    model = load_generated_class(path)()
    model.load_state_dict(gm.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(model.eval()(x), gm.eval()(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("shape", "message"),
    [("[1, 2, 8, 8, 8]", "has 5 dims, more than its input"), ("[3, 1, 8]", "it is 3, not 1")],
)
def test_param_shape_errors_name_both_shapes(shape: str, message: str) -> None:
    with pytest.raises(cnnspec.SpecError, match=message):
        cnnspec.check(f"network T {{ input: 4 x 8\n add {{ identity; param({shape}) }} }}")
