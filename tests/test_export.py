"""Writing compiled networks out: standalone PyTorch source and torch.export programs.

The generated .py file must load in a fresh interpreter that cannot import
cnnspec at all, rebuild the same module hierarchy (so the compiled module's
state_dict loads with strict=True) and compute the same outputs. The .pt2
file must load with torch.export.load and run, with a dynamic batch size.
"""

from __future__ import annotations

import ast as pyast
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from support import SPECS, load_generated_class

import cnnspec
from cnnspec import cli
from cnnspec.api import analyse
from cnnspec.backends import export, pysource
from cnnspec.backends.fx import to_graph_module

#: Run in a fresh interpreter: import the generated file with cnnspec made unimportable,
#: load the weights, run the input, and report what it imported and computed.
LOADER = textwrap.dedent(
    """
    import importlib.abc, importlib.util, json, sys

    class NoCnnspec(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "cnnspec" or name.startswith("cnnspec."):
                raise ImportError("the generated module must not import cnnspec")
            return None

    sys.meta_path.insert(0, NoCnnspec())
    import torch

    source, cls, weights, data, threads = sys.argv[1:6]
    torch.set_num_threads(int(threads))  # the parent's: another split of the sums rounds differently
    spec = importlib.util.spec_from_file_location("generated", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, cls)()
    result = model.load_state_dict(torch.load(weights), strict=True)
    model.eval()
    x, expected = torch.load(data)
    with torch.no_grad():
        y = model(x)
    print(json.dumps({
        "max_diff": (y - expected).abs().max().item(),
        "shape": list(y.shape),
        "params": sum(p.numel() for p in model.parameters()),
        "cnnspec_loaded": any(m == "cnnspec" or m.startswith("cnnspec.") for m in sys.modules),
    }))
    """
)


def _roundtrip(
    spec: str | Path, tmp_path: Path, batch: int = 2, input_shape: tuple[int, ...] | None = None
) -> dict[str, object]:
    checked = analyse(spec, input_shape=input_shape)
    gm = to_graph_module(checked.graph).eval()
    source = tmp_path / "model.py"
    export.write_python(gm, checked.graph, source)
    x = torch.randn(batch, *checked.graph.input_shape)
    with torch.no_grad():
        expected = gm(x)
    torch.save(gm.state_dict(), tmp_path / "weights.pt")
    torch.save((x, expected), tmp_path / "data.pt")
    (tmp_path / "load.py").write_text(LOADER)
    cls = type(gm).__name__
    p = subprocess.run(
        [sys.executable, str(tmp_path / "load.py"), str(source), cls, str(tmp_path / "weights.pt"),
         str(tmp_path / "data.pt"), str(torch.get_num_threads())],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout.strip().splitlines()[-1])
    result["source"] = source.read_text()
    result["static_params"] = checked.analysis.trainable_params
    return result


def _imports(source: str) -> set[str]:
    names: set[str] = set()
    for node in pyast.walk(pyast.parse(source)):
        if isinstance(node, pyast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, pyast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


@pytest.mark.parametrize(("name", "shape"), [("lenet5", None), ("resnet18", (3, 64, 64)), ("googlenet", (3, 96, 96)),
                                             ("alexnet2012", (3, 99, 99))])
def test_python_source_loads_in_a_fresh_interpreter_without_cnnspec(
    name: str, shape: tuple[int, ...] | None, tmp_path: Path
) -> None:
    result = _roundtrip(SPECS / f"{name}.cnn", tmp_path, input_shape=shape)
    assert _imports(str(result["source"])) == {"torch"}
    assert result["cnnspec_loaded"] is False
    assert result["params"] == result["static_params"]
    assert result["max_diff"] == 0.0


def test_python_source_of_a_module_torch_nn_lacks(tmp_path: Path) -> None:
    text = """
network Deep {
    input: 8 x 6 x 6
    residual { conv(8, 3, padding = 1); batchnorm; stochastic_depth(0.2) }
    relu
    concat { identity; conv(4, 1) }
    mul { identity; { adaptive_avgpool(1); conv(12, 1); sigmoid } }
    flatten
    linear(3)
}
"""
    result = _roundtrip(text, tmp_path, batch=3)
    assert _imports(str(result["source"])) == {"torch"}
    assert "class StochasticDepth" in str(result["source"])
    assert result["shape"] == [3, 3]
    assert result["max_diff"] == 0.0


def test_python_source_reads_as_the_spec() -> None:
    checked = analyse(SPECS / "resnet18.cnn")
    gm = to_graph_module(checked.graph)
    source = pysource.python_source(gm, checked.graph)
    assert "class BasicBlock(nn.Module):" in source and "class resnet18(nn.Module):" in source
    downsample = "nn.Sequential(nn.Conv2d(64, 128, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(128))"
    assert f"downsample={downsample}" in source
    assert "downsample: nn.Module | None = None" in source  # layer1 has none: the child is optional
    compile(source, "model.py", "exec")


def test_pt2_loads_and_runs_with_any_batch(tmp_path: Path) -> None:
    checked = analyse(SPECS / "resnet18.cnn", input_shape=(3, 64, 64))
    gm = to_graph_module(checked.graph).eval()
    path = tmp_path / "model.pt2"
    export.write_pt2(gm, checked.graph, path)
    program = torch.export.load(str(path))
    assert isinstance(program, torch.export.ExportedProgram)
    runnable = program.module()
    for batch in (1, 3):
        x = torch.randn(batch, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(runnable(x), gm(x), rtol=1e-5, atol=1e-5)
    assert sum(p.numel() for p in program.parameters()) == checked.analysis.trainable_params


def test_compile_returns_a_fresh_module_each_time() -> None:
    a = cnnspec.compile(SPECS / "lenet5.cnn")
    b = cnnspec.compile(SPECS / "lenet5.cnn")
    assert a is not b and a.conv1 is not b.conv1


def _run_generated(source: Path) -> dict[str, object]:
    """Import a generated module in this interpreter, run its network on zeros; its docstrings and output shape.

    The file's own directory is the working directory meanwhile, so that a file it were to write (the
    injection below) lands there. (The one test that needs a fresh interpreter, one that cannot import
    cnnspec, is _roundtrip's.)
    """
    spec = importlib.util.spec_from_file_location(f"generated_{abs(hash(str(source)))}", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    cwd = Path.cwd()
    os.chdir(source.parent)
    try:
        spec.loader.exec_module(module)
    finally:
        os.chdir(cwd)
    *_, name = re.findall(r"^class (\w+)\(nn.Module\):", source.read_text(), re.M)
    cls = getattr(module, name)
    model = cls().eval()
    with torch.no_grad():
        y = model(torch.zeros(1, 1, 4, 4))
    return {"doc": module.__doc__, "class_doc": cls.__doc__, "shape": list(y.shape)}


@pytest.mark.parametrize(
    "hostile",
    [
        'x"""; open("INJECTED", "w").write("ran"); """',  # would close the docstring and run a statement
        "a\\N{b}c\\",  # \N and a trailing backslash: escapes that make a .py unparsable
        "two\nlines'\"",
    ],
)
def test_a_file_name_reaches_the_generated_module_as_text_never_as_code(hostile: str, tmp_path: Path) -> None:
    net = tmp_path / f"{hostile}.cnn"
    net.write_text("network Tiny {\n    input: 1 x 4 x 4\n    conv(2, 3)\n}\n")
    main = tmp_path / "main.cnn"
    main.write_text(f"import {json.dumps(net.name)}\n")
    out = tmp_path / "model.py"
    assert cli.main(["compile", str(main), "--network", "Tiny", "-o", str(out)]) == 0
    result = _run_generated(out)
    assert not (tmp_path / "INJECTED").exists()
    assert str(net) in str(result["doc"]) or net.name in str(result["doc"])  # the name, read back unchanged
    assert result["shape"] == [1, 2, 2, 2]


@pytest.mark.parametrize("name", ["getattr", "super", "nn", "torch", "print"])
def test_a_network_named_like_a_builtin_exports_a_module_that_imports_and_runs(name: str, tmp_path: Path) -> None:
    spec = tmp_path / "net.cnn"
    spec.write_text(f"network {name} {{\n    input: 1 x 4 x 4\n    conv(2, 3)\n    relu\n}}\n")
    out = tmp_path / "model.py"
    assert cli.main(["compile", str(spec), "-o", str(out)]) == 0
    result = _run_generated(out)
    assert result["shape"] == [1, 2, 2, 2]
    assert str(result["class_doc"]).startswith(f"{name}: input 1x4x4")


# ------------------------------------------------- labels named like what the generated code uses



#: Layouts putting a label on a module at the top, on one in a block, on a join's branch, and on
#: a function (flatten) at the top, with layers after each so that a rebound name would be read.
NAME_LAYOUTS = {
    "modules": """
        L: conv(4, 3)
        b: { L: conv(4, 3, padding = 1); relu }
        j: add { identity; L: relu }
        flatten
        linear(3)""",
    "function": """
        conv(4, 3)
        relu
        L: flatten
        linear(3)""",
}

#: label -> (its compiled name at the top, in a block): kept wherever torch's add_module takes it.
#: `self`, `x`, `torch`, builtins: names the generated forward uses, which its values are named apart from.
#: `training`, `forward`, ...: attributes of every nn.Module, refused by add_module at any level.
#: `graph`, `code`, `meta`: attributes of the compiled GraphModule only, refused at its top level alone.
COLLIDING = {
    "self": ("self", "self"), "Self": ("Self", "Self"), "SELF": ("SELF", "SELF"), "x": ("x", "x"),
    "torch": ("torch", "torch"), "nn": ("nn", "nn"), "operator": ("operator", "operator"),
    "getattr": ("getattr", "getattr"), "super": ("super", "super"), "len": ("len", "len"),
    "inf": ("inf", "inf"), "device": ("device", "device"), "StochasticDepth": ("StochasticDepth", "StochasticDepth"),
    "training": ("training_", "training_"), "forward": ("forward_", "forward_"),
    "parameters": ("parameters_", "parameters_"), "modules": ("modules_", "modules_"),
    "add_module": ("add_module_", "add_module_"), "state_dict": ("state_dict_", "state_dict_"),
    "register_buffer": ("register_buffer_", "register_buffer_"), "T_destination": ("T_destination_", "T_destination_"),
    "graph": ("graph_", "graph"), "code": ("code_", "code"), "meta": ("meta_", "meta"),
    "aux_names": ("aux_names_", "aux_names"),
    # Not identifiers, but torch takes them (torchvision's RegNet names its blocks `block1-0`): kept, and
    # reached through getattr; a quote would end the string fx writes, so that one name is renamed.
    '"block1-0"': ("block1-0", "block1-0"), '"a b"': ("a b", "a b"), '"١٢"': ("١٢", "١٢"),
    '"it\'s"': ("it_s", "it_s"),
}  # fmt: skip


@pytest.mark.parametrize("layout", sorted(NAME_LAYOUTS))
@pytest.mark.parametrize("label", sorted(COLLIDING))
def test_a_label_named_like_what_the_generated_code_uses_compiles_and_exports(
    label: str, layout: str, tmp_path: Path
) -> None:
    def spec(name: str) -> str:
        body = textwrap.dedent(NAME_LAYOUTS[layout]).replace("L:", f"{name}:")
        return "network N {\n    input: 2 x 6 x 6\n" + textwrap.indent(body, "    ") + "\n}\n"

    torch.manual_seed(0)
    gm = cnnspec.compile(spec(label)).eval()
    torch.manual_seed(0)
    plain = cnnspec.compile(spec("plain")).eval()  # the same layers and weights, under a neutral name
    top, inner = COLLIDING[label]

    def renamed(key: str) -> str:
        parts = key.split(".")
        return ".".join((top if i == 0 else inner) if p == "plain" else p for i, p in enumerate(parts))

    assert list(gm.state_dict()) == [renamed(k) for k in plain.state_dict()]
    x = torch.randn(2, 2, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = plain(x)
        torch.testing.assert_close(gm(x), want, rtol=0, atol=0)
    out = tmp_path / "model.py"
    (tmp_path / "net.cnn").write_text(spec(label))
    assert cli.main(["compile", str(tmp_path / "net.cnn"), "-o", str(out)]) == 0
    model = load_generated_class(out)()
    model.load_state_dict(gm.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), want, rtol=0, atol=0)


def test_module_attribute_lists_are_torchs() -> None:
    """The literal lists of names a submodule cannot take are nn.Module's and the compiled module's own."""
    from cnnspec.backends.names import MODULE_ATTRS, ROOT_ATTRS
    from cnnspec.layers.nn import AuxOutputsGraphModule

    module = {n for n in dir(torch.nn.Module()) if not n.startswith("_")}
    assert module == MODULE_ATTRS
    g = torch.fx.Graph()
    g.output(g.placeholder("x"))
    root = AuxOutputsGraphModule(torch.nn.Module(), g, g, "N", ["aux"], [0.3])
    assert {n for n in dir(root) if not n.startswith("_")} - module == ROOT_ATTRS
    for name in MODULE_ATTRS:
        with pytest.raises(KeyError, match="already exists"):
            torch.nn.Module().add_module(name, torch.nn.Identity())
    for name in ROOT_ATTRS:
        torch.nn.Module().add_module(name, torch.nn.Identity())  # below the top, torch takes them
