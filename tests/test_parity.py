"""Parity with torchvision for the canon: AlexNet, VGG-11/13/16/19, GoogLeNet, ResNet-18..152.

For each network: the static parameter count is torchvision's to the unit;
torchvision's state_dict loads into the compiled module with strict=True
(same module names, same tensor shapes); with the same weights, in eval
mode, the outputs on a 224×224 batch agree to 1e-5. Before loading, the
reference's batch-norm affine parameters and running statistics are
randomised, so that parity tests more than freshly initialised (identity)
normalisation layers. The forward pass of the compiled module runs under
fx's ShapeProp, so the static shapes of every layer are checked on it too.

Each family's outputs are compared at full size once per depth pattern: VGG-13, -16 and -19 are
vgg.cnn with other counts of VGG-11's layers, ResNet-101 and -152 resnet.cnn with other counts of
ResNet-50's bottlenecks. Those five are built on the meta device instead, where the parameter
count, module tree, strict load and every layer's static shape (ShapeProp on a meta tensor) need
no weights and no arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from support import CANON, SPECS, Canon, assert_static_shapes, canon_params, randomise_batchnorm

import cnnspec

#: Largest absolute difference of outputs per network, for the record (printed with -s).
MAX_DIFF: dict[str, float] = {}


def _module_tree(model: torch.nn.Module) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Leaf module name -> (class name, parameter shapes)."""
    return {
        name: (type(m).__name__, tuple(tuple(p.shape) for p in m.parameters(recurse=False)))
        for name, m in model.named_modules()
        if not list(m.children()) and list(m.parameters(recurse=False))
    }


#: Canon members whose outputs the smallest member of their family stands for.
DEEPER = {"vgg13": "vgg11", "vgg16": "vgg11", "vgg19": "vgg11", "resnet101": "resnet50", "resnet152": "resnet50"}


@pytest.mark.parametrize("canon", [p for p in canon_params() if p.id in DEEPER])
def test_deeper_canon_matches_torchvision_on_the_meta_device(canon: Canon) -> None:
    assert DEEPER[canon.spec] in CANON
    report = cnnspec.check(canon.path)
    assert report.total_params == canon.params
    with torch.device("meta"):
        reference = canon.build_torchvision().eval()
        model = cnnspec.compile(canon.path).eval()
    assert sum(p.numel() for p in reference.parameters()) == canon.params
    assert sum(p.numel() for p in model.parameters()) == canon.params
    assert _module_tree(model) == _module_tree(reference)
    result = model.load_state_dict(reference.state_dict(), strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    got = assert_static_shapes(report, model, torch.empty(2, 3, 224, 224, device="meta"))
    assert got.shape == (2, 1000)


@pytest.mark.parametrize("canon", [p for p in canon_params() if p.id not in DEEPER])
def test_canon_matches_torchvision(canon: Canon) -> None:
    gen = torch.Generator().manual_seed(0)
    reference = canon.build_torchvision().eval()
    randomise_batchnorm(reference, gen)

    report = cnnspec.check(canon.path)
    assert report.total_params == canon.params
    assert sum(p.numel() for p in reference.parameters()) == canon.params

    model = cnnspec.compile(canon.path).eval()
    assert sum(p.numel() for p in model.parameters()) == canon.params
    # Same names, classes and shapes for every module that holds parameters.
    assert _module_tree(model) == _module_tree(reference)
    assert set(model.state_dict()) == set(reference.state_dict())
    result = model.load_state_dict(reference.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    x = torch.randn(2, 3, 224, 224, generator=gen)
    with torch.no_grad():
        expected = reference(x)
    got = assert_static_shapes(report, model, x)
    assert got.shape == expected.shape == (2, 1000)
    MAX_DIFF[canon.spec] = (got - expected).abs().max().item()
    print(f"\n{canon.spec}: params {report.total_params:,}; max |output difference| {MAX_DIFF[canon.spec]:.3g}")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


#: Spec -> torchvision model and arguments, for the order of state_dict keys.
ORDERED: dict[str, tuple[str, dict[str, Any]]] = {
    "resnet18": ("resnet18", {}),
    "alexnet": ("alexnet", {}),
    "vgg16": ("vgg16", {}),
    # With aux_logits torchvision defines aux1 and aux2 after inception5b; the spec builds each head
    # where it branches off (after inception4a and 4d), so only the order without them matches.
    "googlenet": ("googlenet", {"aux_logits": False, "init_weights": False}),
    "densenet121": ("densenet121", {}),
    "mobilenet_v2": ("mobilenet_v2", {}),
    "efficientnet_b0": ("efficientnet_b0", {}),
    "inception_v3": ("inception_v3", {"init_weights": False}),
}


@pytest.mark.parametrize("spec", list(ORDERED), ids=list(ORDERED))
def test_state_dict_order_is_torchvisions(spec: str) -> None:
    """The keys come in torchvision's definition order (conv1 ... layer4, fc), not only as a set.

    Both modules are built on the meta device: the order needs no weights.
    """
    import torchvision

    name, kwargs = ORDERED[spec]
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(**kwargs)
        model = cnnspec.compile(SPECS / f"{spec}.cnn")
    assert list(model.state_dict()) == list(reference.state_dict())
    # Where torchvision has an nn.Sequential of numbered modules (layer3, downsample, features), so does
    # the compiled module: `model.layer3[4]` and `model.features[0]` index the same layer in both.
    assert _numbered_sequentials(model) == _numbered_sequentials(reference)


def _numbered_sequentials(model: torch.nn.Module) -> list[str]:
    """Paths of the nn.Sequentials whose children are named 0..n-1, and of no other module with such children."""
    found = []
    for name, m in model.named_modules():
        children = [n for n, _ in m.named_children()]
        if name and children and children == [str(i) for i in range(len(children))]:
            found.append(name if isinstance(m, torch.nn.Sequential) else f"{name} (not a Sequential)")
    return found


def test_canon_is_the_issues_list() -> None:
    assert {c.spec: c.params for c in CANON.values()} == {
        "alexnet": 61_100_840,
        "vgg11": 132_863_336,
        "vgg13": 133_047_848,
        "vgg16": 138_357_544,
        "vgg19": 143_667_240,
        "googlenet": 6_624_904,
        "resnet18": 11_689_512,
        "resnet34": 21_797_672,
        "resnet50": 25_557_032,
        "resnet101": 44_549_160,
        "resnet152": 60_192_808,
    }


def test_vgg_with_batch_norm_matches_torchvision() -> None:
    import torchvision

    gen = torch.Generator().manual_seed(1)
    reference = torchvision.models.vgg11_bn().eval()
    randomise_batchnorm(reference, gen)
    spec = CANON["vgg11"].path
    model = cnnspec.compile(spec, batch_norm=True, input_shape=(3, 64, 64)).eval()
    assert cnnspec.check(spec, batch_norm=True).total_params == sum(p.numel() for p in reference.parameters())
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_a_smaller_head_matches_torchvisions() -> None:
    import torchvision

    reference = torchvision.models.resnet34(num_classes=10).eval()
    model = cnnspec.compile(CANON["resnet34"].path, num_classes=10, input_shape=(3, 96, 96)).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_googlenet_matches_torchvision_in_training_mode_too() -> None:
    """Without auxiliary heads both return one tensor in training mode; batch statistics agree."""
    gen = torch.Generator().manual_seed(2)
    canon = CANON["googlenet"]
    reference = canon.build_torchvision().train()
    model = cnnspec.compile(canon.path).train()
    model.load_state_dict(reference.state_dict(), strict=True)
    # Dropout draws differ between the two; compare the features before it.
    x = torch.randn(2, 3, 224, 224, generator=gen)
    features: dict[str, torch.Tensor] = {}
    reference.avgpool.register_forward_hook(lambda m, i, o: features.__setitem__("ref", o))
    model.get_submodule("avgpool").register_forward_hook(lambda m, i, o: features.__setitem__("ours", o))
    with torch.no_grad():
        reference(x)
        model(x)
    torch.testing.assert_close(features["ours"], features["ref"], rtol=1e-5, atol=1e-5)
    # Both updated their running statistics the same way.
    for key, value in reference.state_dict().items():
        if "running" in key:
            torch.testing.assert_close(model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
