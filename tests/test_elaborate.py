"""Stage 2, elaboration: from the AST to the IR graph of one network.

Each language feature is checked through what it produces: the module
paths (named like nn.Sequential), the layer kinds and the inferred shapes.
Errors are checked by code, by the span they point at, and by the help that
lists what would have been valid.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
from support import SPECS, spec_file

import cnnspec
from cnnspec.api import analyse
from cnnspec.ir import Graph


def layers(spec: str | Path, **params: Any) -> dict[str, tuple[str, tuple[int, ...]]]:
    """path -> (op, output shape) of every layer of a spec's network."""
    report = cnnspec.check(spec, **params)
    return {row.path: (row.op, tuple(row.output_shape)) for row in report.layers}


def graph(spec: str | Path, **params: Any) -> Graph:
    """The elaborated IR graph."""
    return analyse(spec, **params).graph


def errors(spec: str | Path, **params: Any) -> list[cnnspec.Diagnostic]:
    """The errors that checking a spec raises (it must raise)."""
    with pytest.raises(cnnspec.SpecError) as e:
        cnnspec.check(spec, **params)
    assert e.value.errors
    return e.value.errors


def one_error(spec: str | Path, code: str, **params: Any) -> cnnspec.Diagnostic:
    """The single error of a spec, which must have this code."""
    errs = errors(spec, **params)
    assert [d.code for d in errs] == [code], [(d.code, d.message) for d in errs]
    return errs[0]


def net(body: str, params: str = "", input_: str = "3 x 32 x 32", blocks: str = "") -> str:
    """A spec text with one network N around body."""
    head = f"network N({params})" if params else "network N"
    return f"{blocks}\n{head} {{\n    input: {input_}\n{body}\n}}\n"


# ---------------------------------------------------------------- sequences


def test_a_sequence_takes_positional_names_and_chains_shapes() -> None:
    got = layers(net("conv(8, 3, padding = 1)\nrelu\nmaxpool(2)\nflatten\nlinear(10)"))
    assert got == {
        "0": ("conv", (8, 32, 32)),
        "1": ("relu", (8, 32, 32)),
        "2": ("maxpool", (8, 16, 16)),
        "3": ("flatten", (2048,)),
        "4": ("linear", (10,)),
    }


def test_named_layers_keep_their_positions_for_the_rest() -> None:
    got = layers(net("stem: conv(8, 3)\nrelu\nhead: conv(4, 1)\nrelu"))
    assert list(got) == ["stem", "1", "head", "3"]


def test_named_groups_open_a_scope_and_anonymous_ones_do_not() -> None:
    got = layers(net("features: { conv(8, 3); relu }\n{ maxpool(2); relu }\nbody { conv(4, 1); relu }"))
    assert list(got) == ["features.0", "features.1", "1", "2", "body.0", "body.1"]


def test_comments_and_multi_line_arguments() -> None:
    got = layers(
        net(
            "    # a comment line\n"
            "    conv(              # trailing comment\n"
            "        8,\n"
            "        3,\n"
            "        stride = 2,    # another\n"
            "        padding = 1,\n"
            "    )\n"
        )
    )
    assert got == {"0": ("conv", (8, 16, 16))}


def test_the_input_may_be_flat_or_overridden() -> None:
    assert layers(net("linear(5)", input_="20")) == {"0": ("linear", (5,))}
    got = layers(net("conv(8, 3)"), input_shape=(1, 10, 12))
    assert got == {"0": ("conv", (8, 8, 10))}


# ------------------------------------------------------------------- blocks


BLOCK = """
block Unit(c, k = 3, stride = 1, expand = 2) {
    conv: conv(c * expand, k, stride = stride, padding = k // 2)
    relu
}
"""


def test_blocks_with_defaults_keywords_and_arithmetic() -> None:
    got = layers(net("a: Unit(4)\nb: Unit(4, 5)\nc: Unit(c = 2, expand = 3, stride = 2)", blocks=BLOCK))
    assert got == {
        "a.conv": ("conv", (8, 32, 32)),
        "a.1": ("relu", (8, 32, 32)),
        "b.conv": ("conv", (8, 32, 32)),
        "b.1": ("relu", (8, 32, 32)),
        "c.conv": ("conv", (6, 16, 16)),
        "c.1": ("relu", (6, 16, 16)),
    }
    g = graph(net("b: Unit(4, 5)", blocks=BLOCK))
    conv = next(n for n in g.layers() if n.path == "b.conv")
    assert conv.attrs["kernel"] == (5, 5) and conv.attrs["padding"] == (2, 2)
    assert g.groups["b"].kind == "block" and g.groups["b"].name == "Unit"
    assert g.groups["b"].args == {"c": 4, "k": 5, "stride": 1, "expand": 2}


def test_defaults_may_use_earlier_parameters() -> None:
    blocks = "block B(c, mid = c // 2) { conv(mid, 1); conv(c, 1) }"
    got = layers(net("B(16)", blocks=blocks))
    assert got["0.0"] == ("conv", (8, 32, 32)) and got["0.1"] == ("conv", (16, 32, 32))


def test_unnamed_block_calls_take_a_position() -> None:
    got = layers(net("Unit(4)\nUnit(2)", blocks=BLOCK))
    assert list(got) == ["0.conv", "0.1", "1.conv", "1.1"]


def test_blocks_read_their_input_shape() -> None:
    blocks = """
block Widen() {
    conv(in.channels * 2, 1)
    conv(in.height, 1)          # in is the block's input, not the previous layer's output
}
"""
    got = layers(net("conv(5, 1)\nWiden", blocks=blocks, input_="3 x 7 x 9"))
    assert got["1.0"] == ("conv", (10, 7, 9))
    assert got["1.1"] == ("conv", (7, 7, 9))


def test_blocks_as_values() -> None:
    blocks = """
block Small(c) { conv(c, 1) }
block Big(c) { conv(c, 3, padding = 1); relu }
block Stage(unit, c) { unit(c); unit(c) }
"""
    text = net("s: Stage(unit, 4)\nlast: unit(2)", params="unit = Small", blocks=blocks)
    assert list(layers(text)) == ["s.0.0", "s.1.0", "last.0"]
    # Overridden by keyword, as a block value or by name (the Python API's form).
    big = ["s.0.0", "s.0.1", "s.1.0", "s.1.1", "last.0", "last.1"]
    assert list(layers(text, unit="Big")) == big


def test_layer_kinds_are_values_too() -> None:
    blocks = "block Wrap(act) { conv(4, 1); act }"
    text = net("Wrap(act)\nact", params="act = relu", blocks=blocks)
    assert layers(text) == {"0.0": ("conv", (4, 32, 32)), "0.1": ("relu", (4, 32, 32)), "1": ("relu", (4, 32, 32))}
    assert layers(text, act="sigmoid")["0.1"] == ("sigmoid", (4, 32, 32))


def test_a_block_value_from_the_stock_resnet_family() -> None:
    basic = layers(SPECS / "resnet50.cnn", unit="BasicBlock", num_classes=7)
    assert "layer1.0.conv3" not in basic
    assert basic["layer1.0.conv2"] == ("conv", (64, 56, 56))
    assert basic["fc"] == ("linear", (7,))


def test_recursive_blocks_are_an_error() -> None:
    blocks = "block A() { B }\nblock B() { A }"
    d = one_error(net("A", blocks=blocks), "E405")
    assert "A -> B -> A" in d.message


# -------------------------------------------------------------- repetition


def test_repetition_takes_the_next_positions() -> None:
    got = layers(net("conv(4, 1)\nUnit(2) * 3\nrelu", blocks=BLOCK))
    assert list(got) == ["0", "1.conv", "1.1", "2.conv", "2.1", "3.conv", "3.1", "4"]


def test_repetition_count_is_an_expression_and_may_be_zero() -> None:
    text = net("first: relu\nrelu * (n - 1)", params="n = 4")
    assert list(layers(text)) == ["first", "1", "2", "3"]
    assert list(layers(text, n=1)) == ["first"]


def test_a_labelled_repetition_is_a_scope_like_nn_sequential() -> None:
    g = graph(net("blocks: Unit(2) * 3", blocks=BLOCK))
    paths = [n.path for n in g.layers()]
    assert paths == ["blocks.0.conv", "blocks.0.1", "blocks.1.conv", "blocks.1.1", "blocks.2.conv", "blocks.2.1"]
    assert g.groups["blocks"].kind == "repeat"


def test_naming_templates() -> None:
    got = layers(net('"denselayer{1}": Unit(2) * 3\n"x{0}y": relu * 2', blocks=BLOCK))
    assert list(got) == [
        "denselayer1.conv",
        "denselayer1.1",
        "denselayer2.conv",
        "denselayer2.1",
        "denselayer3.conv",
        "denselayer3.1",
        "x0y",
        "x1y",
    ]


def test_a_bad_naming_template_is_an_error() -> None:
    d = one_error(net('"layer{1}{2}": relu * 2'), "E218")
    assert "{N}" in d.message
    # Braces that are not a number hold an expression, which reads the names in scope.
    d = one_error(net('"layer{n}": relu * 2'), "E102")
    assert d.span is not None and (d.span.col, d.span.end_col) == (8, 9)


def test_the_same_name_twice_in_a_scope_is_an_error() -> None:
    d = one_error(net("a: relu\na: relu"), "E404")
    assert d.span is not None and d.span.line == 5
    assert d.notes and d.notes[0].span is not None and d.notes[0].span.line == 4


# ----------------------------------------------------------------- residual


RESIDUAL = """
block Res(c, stride = 1) {
    residual {
        conv1: conv(c, 3, stride = stride, padding = 1)
        relu
    } shortcut downsample { conv(c, 1, stride = stride) }
    relu
}
"""


def test_residual_uses_identity_where_it_fits_and_the_projection_elsewhere() -> None:
    g = graph(net("a: Res(3)\nb: Res(8, 2)\nc: Res(8)", blocks=RESIDUAL))
    paths = [n.path for n in g.layers()]
    assert not any(p.startswith("a.downsample") or p.startswith("c.downsample") for p in paths)
    assert "b.downsample.0" in paths
    adds = [n for n in g.layers() if n.kind == "add"]
    assert len(adds) == 3
    for add in adds:
        assert add.skip == (1,) and add.attrs["residual"] is True
    # Identity: the add reads the block's input; projection: it reads the downsample.
    a_add, b_add, _ = adds
    assert g.nodes[a_add.inputs[1]].kind == "input"
    assert g.nodes[b_add.inputs[1]].path == "b.downsample.0"
    assert b_add.out_shape == (8, 16, 16)


def test_resnet18_projects_only_where_the_shape_changes() -> None:
    got = layers(SPECS / "resnet18.cnn")
    assert not any(p.startswith("layer1.") and ".downsample" in p for p in got)
    assert got["layer2.0.downsample.0"] == ("conv", (128, 28, 28))
    assert got["layer2.0.downsample.1"] == ("batchnorm", (128, 28, 28))
    assert "layer2.1.downsample.0" not in got
    for stage in ("layer3", "layer4"):
        assert f"{stage}.0.downsample.0" in got and f"{stage}.1.downsample.0" not in got


def test_resnet50_projects_in_every_first_block() -> None:
    got = layers(SPECS / "resnet50.cnn")
    # Bottleneck widens 64 -> 256 channels, so even layer1.0 needs the projection.
    assert got["layer1.0.downsample.0"] == ("conv", (256, 56, 56))
    assert "layer1.1.downsample.0" not in got


def test_residual_without_a_fitting_shortcut_is_an_error_with_both_shapes() -> None:
    d = one_error(net("residual { conv(8, 3, padding = 1) }"), "E302")
    assert "8×32×32" in d.message and "3×32×32" in d.message
    d = one_error(net("residual { conv(8, 3, padding = 1) } shortcut { conv(4, 1) }"), "E302")
    assert "4×32×32" in d.message


# -------------------------------------------------------------------- joins


def test_concat_add_and_mul() -> None:
    got = layers(
        net(
            "cat: concat { a: conv(4, 1); { conv(2, 1); relu }; maxpool(3, stride = 1, padding = 1) }\n"
            "sum: add { conv(5, 1); conv(5, 3, padding = 1) }\n"
            "se: mul { identity; { adaptive_avgpool(1); conv(5, 1); sigmoid } }\n"
        )
    )
    assert got["cat.a"] == ("conv", (4, 32, 32))
    assert got["cat.1"] == ("conv", (2, 32, 32)) and got["cat.2"] == ("relu", (2, 32, 32))
    assert got["cat.concat"] == ("concat", (9, 32, 32))
    assert got["sum.add"] == ("add", (5, 32, 32))
    assert got["se.2"] == ("conv", (5, 1, 1))
    assert got["se.mul"] == ("mul", (5, 32, 32))


def test_join_shape_mismatches_are_errors() -> None:
    (d,) = errors(net("concat { conv(4, 1); maxpool(2) }"))
    assert d.code.startswith("E30") and "32" in d.message and "16" in d.message
    assert any("branch 2" in n.message for n in d.notes)
    errs = errors(net("add { conv(4, 1); conv(5, 1) }"))
    assert "4×32×32" in errs[0].message and "5×32×32" in errs[0].message


def test_a_join_takes_its_arguments_before_the_braces() -> None:
    got = layers(net("permute([0, 2, 3, 1])\ncat: concat(dim = -1) { pick: slice(3, 0, 2); identity }"))
    assert got["cat.concat"] == ("concat", (32, 32, 5))
    got = layers(net("concat(2) { identity; slice(2, 0, 16) }"))
    assert got["concat"] == ("concat", (3, 48, 32))
    assert layers(net("concat(dim = 1) { identity; identity }"))["concat"] == ("concat", (6, 32, 32))


def test_bad_join_arguments_are_errors_at_the_spec() -> None:
    d = one_error(net("concat(dim = 4) { identity; identity }"), "E310")
    assert "dim 4 is out of range" in d.message and "B×3×32×32" in d.message
    assert one_error(net("concat(dim = 0) { identity; identity }"), "E310").message.count("batch")
    d = one_error(net("concat(dim = -1) { identity; maxpool(2) }"), "E303")
    assert "height" in d.message and "concat joins along dim -1" in d.help[0]
    assert "has no argument `axis`" in one_error(net("concat(axis = 1) { relu; relu }"), "E209").message
    d = one_error(net("add(1) { relu; relu }"), "E210")
    assert d.message == "`add` takes at most 0 positional arguments, got 1"
    d = one_error(net("g(1) { relu }"), "E104")
    assert "group `g` takes no arguments" in d.message and d.span.col == 3
    assert "expected an int" in one_error(net("concat(dim = 1.5) { relu; relu }"), "E211").message


def test_split_hands_branch_i_chunk_i() -> None:
    got = layers(net("s: split([1, 2]) { identity; b: conv(4, 1) }"))
    assert got["s.b"] == ("conv", (4, 32, 32)) and got["s.split"] == ("split", (5, 32, 32))
    assert [op for op, _ in got.values()].count("chunk") == 2
    d = one_error(net("split(3) { relu; relu }"), "E413")
    assert d.message == "`split` cuts its input into 3 chunks but has 2 branches"
    d = one_error(net("split(2) { relu; relu }"), "E311")
    assert d.message.startswith("split: 2 chunks do not divide dim 1 of B×3×32×32")
    assert one_error(net("split(2, dim = 0) { relu; relu }", input_="4 x 8 x 8"), "E310")


def test_googlenet_inception_widths() -> None:
    got = layers(SPECS / "googlenet.cnn")
    assert got["inception3a.concat"] == ("concat", (256, 28, 28))
    assert got["inception5b.concat"] == ("concat", (1024, 7, 7))
    assert got["inception3a.branch1.conv"] == ("conv", (64, 28, 28))
    assert got["inception3a.branch2.1.conv"] == ("conv", (128, 28, 28))


# ------------------------------------------------------- control and values


def test_if_else_and_for() -> None:
    body = "for c in widths {\n  if c == 0 { maxpool(2) } else if c < 0 { relu } else { conv(c, 3, padding = 1) }\n}"
    text = net(body, params="widths = [8, 0, -1, 16]")
    assert layers(text) == {
        "0": ("conv", (8, 32, 32)),
        "1": ("maxpool", (8, 16, 16)),
        "2": ("relu", (8, 16, 16)),
        "3": ("conv", (16, 16, 16)),
    }


def test_vgg_configurations_unroll_through_for_and_if() -> None:
    got = layers(SPECS / "vgg11.cnn")
    features = [(p, op) for p, (op, _) in got.items() if p.startswith("features.")]
    assert len(features) == 21  # 8 convs + 8 relus + 5 pools, as in torchvision's vgg11
    assert features[:3] == [("features.0", "conv"), ("features.1", "relu"), ("features.2", "maxpool")]
    bn = layers(SPECS / "vgg11.cnn", batch_norm=True)
    assert bn["features.1"][0] == "batchnorm" and len([p for p in bn if p.startswith("features.")]) == 29


def test_lists_indexing_let_and_conditional_expressions() -> None:
    text = net(
        "let half = widths[1] // 2\n"
        "conv(widths[0], 3, padding = 1)\n"
        "conv(half if big else 1, 1)\n"
        "conv(widths[-1] * 2 ** 2, 1)",
        params="widths = [4, 12, 6], big = true",
    )
    got = layers(text)
    assert [s[0] for _, s in got.values()] == [4, 6, 24]
    assert layers(text, big=False)["1"] == ("conv", (1, 32, 32))


def test_integer_arguments_accept_whole_floats_only() -> None:
    assert layers(net("conv(64 * 0.5, 1)"))["0"] == ("conv", (32, 32, 32))
    errs = errors(net("conv(64 * 0.3, 1)"))
    assert errs[0].span is not None and errs[0].span.line == 4


# ------------------------------------------------------ network parameters


def test_network_parameters_are_overridden_by_keyword() -> None:
    got = layers(SPECS / "resnet152.cnn", num_classes=10)
    assert got["fc"] == ("linear", (10,))
    assert cnnspec.check(SPECS / "resnet152.cnn", num_classes=10).output_shape == [10]
    # A list overrides a list, even one bound by the alias.
    shallow = layers(SPECS / "resnet152.cnn", layers=[1, 1, 1, 1])
    assert "layer3.1.conv1" not in shallow and "layer3.0.conv1" in shallow


def test_an_unknown_parameter_lists_the_networks_parameters() -> None:
    d = one_error(SPECS / "resnet18.cnn", "E504", num_clases=10)
    assert "num_clases" in d.message
    text = " ".join(d.help)
    assert "num_classes" in text  # the suggestion
    for p in ("layers", "unit", "num_classes", "groups", "width_per_group"):
        assert p in text


def test_a_parameter_of_the_wrong_type_is_an_error() -> None:
    d = one_error(SPECS / "resnet18.cnn", "E505", num_classes="ten")
    assert "int" in d.message and "string" in d.message


def test_a_parameter_without_value_is_an_error() -> None:
    d = one_error(SPECS / "resnet.cnn", "E506")
    assert "layers" in d.message and d.span is not None and d.span.file.endswith("resnet.cnn")
    assert layers(SPECS / "resnet.cnn", layers=[1, 1, 1, 1])["fc"] == ("linear", (1000,))


def test_network_selection() -> None:
    text = "network A { input: 4\n linear(2) }\nnetwork B { input: 4\n linear(3) }\n"
    assert one_error(text, "E503").message.endswith("A, B")
    assert cnnspec.check(text, network="B").output_shape == [3]
    d = one_error(text, "E501", network="C")
    assert d.help


def test_an_alias_binds_parameters_that_can_still_be_overridden() -> None:
    text = "network Base(n = 2, k = 3) { input: 8\n linear(n * k) }\nnetwork Six = Base(n = 2)\n"
    assert cnnspec.check(text, network="Six").output_shape == [6]
    assert cnnspec.check(text, network="Six", n=5).output_shape == [15]


# ------------------------------------------------------------------- imports


def test_imports_are_relative_to_the_importing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lib" / "deep").mkdir(parents=True)
    (tmp_path / "lib" / "blocks.cnn").write_text('import "deep/base.cnn"\nblock Pair(c) { Base(c); Base(c) }\n')
    (tmp_path / "lib" / "deep" / "base.cnn").write_text("block Base(c) { conv(c, 1); relu }\n")
    (tmp_path / "nets").mkdir()
    main = spec_file(tmp_path / "nets", 'import "../lib/blocks.cnn"\n' + net("Pair(4)"))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert list(layers(main)) == ["0.0.0", "0.0.1", "0.1.0", "0.1.1"]
    assert list(layers(os.path.relpath(main, elsewhere))) == ["0.0.0", "0.0.1", "0.1.0", "0.1.1"]


def test_a_diamond_import_reads_the_shared_file_once(tmp_path: Path) -> None:
    (tmp_path / "base.cnn").write_text("block Base(c) { conv(c, 1) }\n")
    (tmp_path / "a.cnn").write_text('import "base.cnn"\nblock A(c) { Base(c) }\n')
    (tmp_path / "b.cnn").write_text('import "base.cnn"\nblock B(c) { Base(c) }\n')
    main = spec_file(tmp_path, 'import "a.cnn"\nimport "b.cnn"\n' + net("A(2)\nB(3)"))
    assert layers(main)["1.0.0"] == ("conv", (3, 32, 32))


def test_an_import_cycle_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # file names show relative to the working directory
    (tmp_path / "a.cnn").write_text('import "b.cnn"\nblock A() { relu }\n')
    (tmp_path / "b.cnn").write_text('import "a.cnn"\nblock B() { relu }\n')
    main = spec_file(tmp_path, 'import "a.cnn"\n' + net("A\nB"))
    d = one_error(main, "E402")
    assert "a.cnn -> b.cnn -> a.cnn" in d.message
    assert d.span is not None and d.span.file.endswith("b.cnn") and d.span.line == 1


def test_a_file_importing_itself_is_a_cycle(tmp_path: Path) -> None:
    main = spec_file(tmp_path, 'import "net.cnn"\n' + net("relu"))
    one_error(main, "E402")


def test_a_missing_import_and_a_name_defined_twice(tmp_path: Path) -> None:
    main = spec_file(tmp_path, 'import "nowhere.cnn"\n' + net("relu"))
    d = one_error(main, "E401")
    assert "nowhere.cnn" in d.message and d.span is not None and d.span.line == 1
    (tmp_path / "lib.cnn").write_text("block B() { relu }\n")
    main = spec_file(tmp_path, 'import "lib.cnn"\nblock B() { relu }\n' + net("B"), name="twice.cnn")
    d = one_error(main, "E403")
    assert d.notes and d.notes[0].span is not None and d.notes[0].span.file.endswith("lib.cnn")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_a_file_longer_than_its_stat_size_is_read_whole_and_still_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import cnnspec.syntax.loader as loader

    # /proc files say they are 0 bytes long: the reader must not stop at the size stat gave.
    status = Path("/proc/self/status")
    assert status.stat().st_size == 0
    text = loader.read_spec(status)
    assert text.startswith("Name:") and len(text) > 100
    monkeypatch.setattr(loader, "MAX_SOURCE", 50)
    with pytest.raises(loader._TooLarge):
        loader.read_spec(status)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_what_is_not_a_regular_file_is_refused_without_reading_or_waiting(tmp_path: Path) -> None:
    # A FIFO with no writer would block an ordinary open; /dev/zero would never end.
    fifo = tmp_path / "pipe.cnn"
    os.mkfifo(fifo)
    (tmp_path / "folder.cnn").mkdir()
    for target, reason in [(fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                           (tmp_path / "folder.cnn", "it is a directory")]:
        main = spec_file(tmp_path, f'import "{target}"\n' + net("relu"))
        d = one_error(main, "E401")
        assert reason in d.message, d.message
        d = one_error(target, "E401")
        assert reason in d.message, d.message


def test_a_spec_file_is_read_whole(tmp_path: Path) -> None:
    text = net("relu\n" * 3000)  # larger than one read of a pipe or a buffer
    path = tmp_path / "long.cnn"
    path.write_text(text)
    import cnnspec.syntax.loader as loader

    assert loader.read_spec(path) == text
    assert len(cnnspec.check(path).layers) == 3000


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("body", "code", "line", "col", "words"),
    [
        ("    conv(8, 3)\n    frob(3)", "E101", 5, 5, "unknown layer or block `frob`"),
        ("    conv(8, 3)\n    rleu", "E101", 5, 5, "did you mean `relu`"),
        ("    conv(8, 3, strid = 2)", "E209", 4, 16, "has no argument `strid`"),
        ("    conv(8)", "E207", 4, 5, "needs its argument `kernel`"),
        ("    conv(8, 3, 1, 0, 1, 1, true, 9)", "E210", 4, 34, "positional"),
        ("    flatten\n    conv(8, 3)", "E304", 5, 5, "flatten"),
        ("    permute([0, 1, 1, 2])", "E312", 4, 5, "not a permutation"),
        ("    conv(8, 40)", "E", 4, 5, "does not fit"),
        ("    conv(8, 3, groups = 2)", "E", 4, 5, "groups=2"),
        ("    conv(8, 3, stride = 0)", "E", 4, 25, "stride"),
        ("    conv(8, width)", "E102", 4, 13, "unknown name `width`"),
        ("    relu * -1", "E217", 4, 12, "repetition count"),
        ("    if 3 { relu }", "E220", 4, 8, "true or false"),
        ("    for v in 3 { relu }", "E221", 4, 14, "list"),
        ("    conv(8, [1, 2, 3][5])", "E205", 4, 23, "out of range"),
    ],
)
def test_errors_point_at_the_cause(body: str, code: str, line: int, col: int, words: str) -> None:
    text = net(body)
    errs = errors(text)
    d = errs[0]
    assert d.code.startswith(code), (d.code, d.message)
    assert d.span is not None and (d.span.line, d.span.col) == (line, col), (d.span, d.message)
    assert words in d.message + " " + " ".join(d.help), (d.message, d.help)


def test_independent_errors_are_all_reported() -> None:
    errs = errors(net("conv(8, 3, strid = 2)\nfrob\nlinear(3)\nconv(4, width)"))
    assert [d.code for d in errs][:2] == ["E209", "E101"]
    assert len(errs) >= 3


def test_an_error_inside_a_block_names_the_instance() -> None:
    blocks = "block B(c) { conv(c, 9) }"
    errs = errors(net("ok: B(4)\nmaxpool(8)\nlate: B(4)", blocks=blocks))
    d = errs[0]
    assert d.span is not None and d.span.line == 1  # the conv inside the block
    assert d.trace and d.trace[-1].path == "late"


def test_layer_paths_are_unique_even_for_nested_joins() -> None:
    body = "concat {\n  conv(4, 1)\n  { conv(2, 1); concat { conv(3, 1); conv(5, 1) } }\n}"
    paths = [row.path for row in cnnspec.check(net(body)).layers]
    assert len(paths) == len(set(paths)), paths
    # Joins are numbered in the order written (the outer one first) and take no position.
    assert paths == ["0", "1", "2", "3", "concat_1", "concat"]


def test_joins_are_named_by_kind_in_the_order_written() -> None:
    body = (
        "stem: conv(4, 1)\n"
        "residual { conv(4, 1); residual { conv(4, 1) } }\n"
        "for i in range(2) { add { conv(4, 1); identity } }\n"
        "mul { identity; sigmoid }\n"
        "head: conv(4, 1)\n"
    )
    got = {path: op for path, (op, _) in layers(net(body)).items()}
    assert list(got) == [
        "stem", "1", "2", "add_1", "add",        # the residual written first is `add`
        "3", "4", "add_2", "5", "6", "add_3",    # each loop's add, numbered on
        "7", "8", "mul",
        "head",
    ]  # fmt: skip
    assert [op for path, op in got.items() if path.startswith(("add", "mul"))] == ["add"] * 4 + ["mul"]


def test_join_names_skip_the_names_labels_take_and_keep_to_their_scope() -> None:
    body = (
        "concat { a: conv(2, 1); concat_1: conv(2, 1) }\n"
        "concat { b: conv(2, 1); c: conv(2, 1) }\n"
        "concat: conv(4, 1)\n"  # a label written after the joins still keeps its name
        "g: concat { conv(2, 1); concat { conv(1, 1); conv(1, 1) } }\n"
    )
    paths = [row.path for row in cnnspec.check(net(body)).layers]
    assert paths == [
        "a", "concat_1", "concat_2",
        "b", "c", "concat_3",
        "concat",
        "g.0", "g.1", "g.2", "g.concat_1", "g.concat",
    ]  # fmt: skip


def test_nested_joins_of_a_replayed_block_keep_their_names() -> None:
    blocks = "block E() { concat { conv(2, 1); concat { conv(1, 1); conv(1, 1) }; concat { conv(1, 1); conv(1, 1) } } }"
    got = [row.path for row in cnnspec.check(net("first: E()\nsecond: E()", blocks=blocks)).layers]
    first = [p.removeprefix("first.") for p in got if p.startswith("first.")]
    assert first == ["0", "1", "2", "concat_1", "3", "4", "concat_2", "concat"]
    assert [p.removeprefix("second.") for p in got if p.startswith("second.")] == first


def test_inception_v3_joins_have_one_path_each() -> None:
    got = layers(SPECS / "inception_v3.cnn")
    assert [p for p in got if p.startswith("Mixed_7b.concat")] == [
        "Mixed_7b.concat_1", "Mixed_7b.concat_2", "Mixed_7b.concat"
    ]  # fmt: skip
    assert got["Mixed_7b.concat"] == ("concat", (2048, 8, 8))
    assert got["Mixed_7b.concat_1"] == got["Mixed_7b.concat_2"] == ("concat", (768, 8, 8))


# ------------------------------------------------- instances, threads

NODE_FIELDS = ("kind", "has_module", "attrs", "in_shapes", "out_shape", "span", "skip")


def _elaborate(spec: Path, **params: Any) -> tuple[Any, Graph]:
    """The program and graph of a spec's network, elaborated directly (no passes)."""
    from cnnspec.diagnostics import Diagnostics
    from cnnspec.semantics.elaborate import Elaborator, select_network
    from cnnspec.syntax.loader import load
    from cnnspec.syntax.source import SourceMap

    sources = SourceMap()
    diags = Diagnostics(sources)
    program = load(spec, sources)
    name = select_network(program, None, diags)
    assert name is not None
    g = Elaborator(program, diags).network(name, params)
    diags.raise_if_errors()
    assert g is not None
    return program, g


def test_equal_block_instances_elaborate_to_equal_nodes_each_with_its_own_paths() -> None:
    """Every instance is elaborated afresh: layer3.2 to layer3.35 of ResNet-152 are alike but for
    their paths, inputs (each reads the one before) and block frames."""
    _, g = _elaborate(SPECS / "resnet152.cnn")
    instances = [[n for n in g.nodes if n.path.startswith(f"layer3.{i}.")] for i in range(2, 36)]
    first = instances[0]
    assert len(first) == 10
    for i, nodes in enumerate(instances, 2):
        assert [[getattr(n, f) for f in NODE_FIELDS] for n in nodes] == [
            [getattr(n, f) for f in NODE_FIELDS] for n in first
        ]
        assert [n.path.removeprefix(f"layer3.{i}.") for n in nodes] == [n.path.removeprefix("layer3.2.") for n in first]
        assert {n.scope for n in nodes} >= {f"layer3.{i}"}
        assert all(n.trace[-1].path.startswith(f"layer3.{i}") for n in nodes)
    # Each instance reads the output of the one before it.
    for before, after in itertools.pairwise(instances):
        assert after[0].inputs == (before[-1].id,)
    assert [n.id for n in g.nodes] == list(range(len(g.nodes)))


def test_elaborations_in_threads_give_the_single_threaded_graphs() -> None:
    """Elaboration keeps no state between checks: 8 threads elaborating specs at once (each its
    own budget, scopes and binder) build exactly what one thread builds."""
    from concurrent.futures import ThreadPoolExecutor

    from cnnspec.diagnostics import Diagnostics
    from cnnspec.semantics.elaborate import Elaborator, select_network
    from cnnspec.syntax.loader import load
    from cnnspec.syntax.source import SourceMap

    specs = [SPECS / f"{n}.cnn" for n in ("resnet50", "googlenet", "densenet121", "mobilenet_v2", "vgg16")]
    programs = []
    for spec in specs:  # parsed up front: this test is about elaboration
        sources = SourceMap()
        program = load(spec, sources)
        programs.append((program, sources, select_network(program, None, Diagnostics(sources))))

    def run(job: tuple[Any, Any, str | None]) -> list[tuple[Any, ...]]:
        program, sources, name = job
        g = Elaborator(program, Diagnostics(sources)).network(name, {})
        assert g is not None
        return [(n.path, n.kind, n.inputs, n.out_shape, tuple(n.attrs.items())) for n in g.nodes]

    alone = [run(job) for job in programs]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(2):
            assert list(pool.map(run, programs * 4)) == alone * 4


def test_the_deepest_nesting_the_limits_allow_reports_e603_within_the_default_recursion_limit(
    tmp_path: Path,
) -> None:
    """Statements nested past Limits.max_nesting give E603, never a RecursionError, even with an
    expression nested as deep as the parser allows at the bottom (deep_recursion is gone)."""
    import sys

    from cnnspec.semantics.context import Limits
    from cnnspec.syntax.limits import MAX_NESTING

    assert sys.getrecursionlimit() <= 1000 + 100  # pytest does not raise it
    depth = Limits().max_nesting + 5
    # Each block adds a level of joins (the most frames per level) and calls the next block.
    blocks = [f"block B{i}() {{ concat {{ B{i + 1}; relu }} }}" for i in range(depth)]
    # An addition nested as deep as the parser allows (two Python frames a level to evaluate).
    expr = "1 + (" * (MAX_NESTING - 15) + "1" + ")" * (MAX_NESTING - 15)
    blocks.append(f"block B{depth}() {{ conv({expr}, 1) }}")
    spec = spec_file(tmp_path, "\n".join(blocks) + "\nnetwork n {\n    input: 3 x 8 x 8\n    B0\n}\n")
    (err,) = [e for e in errors(spec) if e.code == "E603"]
    assert err.message == f"blocks and groups are nested more than {Limits().max_nesting} deep"
    # Just under the limit, the same spec elaborates with the deep expression evaluated.
    shallow = Limits().max_nesting // 2 - 2
    blocks = [f"block B{i}() {{ concat {{ B{i + 1}; relu }} }}" for i in range(shallow)]
    blocks.append(f"block B{shallow}() {{ conv({expr}, 1) }}")
    spec = spec_file(tmp_path, "\n".join(blocks) + "\nnetwork n {\n    input: 3 x 8 x 8\n    B0\n}\n")
    deepest = [r for r in cnnspec.check(spec).layers if r.op.startswith("conv")]
    assert [r.output_shape for r in deepest] == [[1 + MAX_NESTING - 15, 8, 8]]


def test_an_argument_equal_to_another_only_as_a_python_key_is_checked_on_its_own(tmp_path: Path) -> None:
    # 1 == true in Python: `c` must not pass as `b` did.
    body = "    input: 3 x 8 x 8\n    a: B(1)\n    b: B(1)\n    c: B(true)\n"
    text = "block B(c) {\n    conv(c, 1)\n}\nnetwork n {\n" + body + "}\n"
    spec = spec_file(tmp_path, text)
    (err,) = errors(spec)
    assert err.code == "E211"
    assert "got a bool" in err.message
    assert [f.path for f in err.trace] == ["c"]


def test_static_warnings_are_found_again_for_a_spec_checked_again_and_anew_for_an_edited_one(tmp_path) -> None:
    """The findings are kept per parsed definitions: checking the same file again reports them
    again, each time, and editing the file (new definitions) finds them afresh."""
    spec = tmp_path / "net.cnn"
    spec.write_text("block Unused() { relu }\nnetwork Net(width = 8) {\n    input: 3 x 8 x 8\n    relu\n}\n")

    def found() -> list[tuple[str, str, int]]:
        return [(d.code, d.message, d.span.line) for d in analyse(spec).warnings]

    first = found()
    assert first == [
        ("W001", "block `Unused` is never used", 1),
        ("W002", "parameter `width` of network `Net` is never used", 2),
    ]
    assert found() == first
    spec.write_text(
        "block Used() { relu }\nnetwork Net(width = 8) {\n    input: 3 x 8 x 8\n    conv(width, 3)\n    Used\n}\n"
    )
    assert found() == []
    spec.write_text("network Net {\n    input: 3 x 8 x 8\n    let unused = 2\n    relu\n}\n")
    assert found() == [("W004", "`let unused` is never used", 3)]


def test_a_warning_handler_set_in_one_thread_is_not_called_for_checks_in_another(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from cnnspec import api

    spec = spec_file(tmp_path, "block Unused() { relu }\nnetwork n {\n    input: 3 x 8 x 8\n    relu\n}\n")
    seen: list[str] = []
    api.set_warning_handler(lambda warnings, sources: seen.extend(d.code for d in warnings))
    try:
        with ThreadPoolExecutor(1) as pool:
            elsewhere = pool.submit(lambda: [d.code for d in analyse(spec).warnings]).result()
        assert elsewhere == ["W001"]
        assert seen == []  # the other thread's check did not call this thread's handler
        analyse(spec)
        assert seen == ["W001"]
    finally:
        api.set_warning_handler(None)


# ------------------------------------------------------------------ the work budget (issue 25)


def _spent(text: str | Path) -> tuple[int, list[str]]:
    """The work one check of a spec spends (its largest network's), and the error codes it gives."""
    from cnnspec.diagnostics import Diagnostics
    from cnnspec.semantics.elaborate import Elaborator, select_network
    from cnnspec.syntax.loader import load
    from cnnspec.syntax.source import SourceMap

    sources = SourceMap()
    diags = Diagnostics(sources)
    program = load(text, sources)
    name = select_network(program, None, diags)
    assert name is not None
    elaborator = Elaborator(program, diags)
    elaborator.network(name, {})
    return elaborator.budget.spent, [d.code for d in diags.items if d.severity == "error"]


def _blocks_spec(n: int) -> str:
    import sys

    sys.path.insert(0, str(SPECS.parent / "benchmarks"))
    from bench_check import blocks_spec

    return blocks_spec(n)


def test_the_stock_specs_and_a_spec_of_1000_distinct_blocks_fit_the_work_budget_with_room() -> None:
    """The biggest stock spec spends a few percent of MAX_WORK; the 1,000-block spec of
    benchmarks/bench_check.py (10,000 layers) under 60%."""
    from cnnspec.semantics.values import MAX_WORK

    for stem in ("densenet169", "resnet152", "inception_v3", "efficientnet_b3"):
        spent, errors = _spent(SPECS / f"{stem}.cnn")
        assert not errors and spent < MAX_WORK // 20, (stem, spent)
    spent, errors = _spent(_blocks_spec(1000))
    assert not errors and spent < MAX_WORK * 6 // 10, spent


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        # Layers, through distinct block calls: their nodes cost time and memory in every later stage.
        # (4,000 calls of 7 tokens each stay under the 30,000 tokens a file may hold.)
        "\n".join(f"    U({4 + 4 * (i % 2)}, {i / 4000:.6f})" for i in range(4000)),
        # Loops that build nothing, lists built in loops, comprehensions, wide expressions.
        "    for i in range(1000) { for j in range(1000) { let _k = [i, j] } }",
        "    let a = [[i * j for j in range(2000)] for i in range(2000)]",
        "    for i in range(100000) { let _k = max(" + ", ".join(["i + 1"] * 100) + ") }",
        # A block that makes no layer, called a million times.
        "    for i in range(1000000) { E() }",
        "    E() * 1000000",
    ],
    ids=["distinct-blocks", "nested-loops", "comprehension", "wide-expression", "empty-block-loop", "empty-repeat"],
)
def test_work_of_every_kind_stops_with_e608_at_the_budget(body: str) -> None:
    block = (
        "block U(c, p) {\n    residual { conv(c, 3, padding = 1); batchnorm; relu; dropout(p); conv(c, 3, padding = 1);"
        " batchnorm } shortcut proj { conv(c, 1); batchnorm }\n    relu\n}\nblock E() {\n    let _x = 1\n}\n"
    )
    spent, errors = _spent(f"{block}network N {{\n    input: 3 x 8 x 8\n{body}\n    relu\n}}\n")
    assert "E608" in errors
    from cnnspec.semantics.values import MAX_WORK

    # Stopped at the limit (or before, for a repetition whose first copy shows it would pass).
    assert spent <= MAX_WORK + 100_000


def test_a_repetition_that_would_pass_the_budget_stops_at_its_first_copy() -> None:
    text = "block B() {\n    conv(4, 1)\n    relu\n}\nnetwork N {\n    input: 3 x 8 x 8\n    B * 100000\n}\n"
    spent, errors = _spent(text)
    assert errors == ["E608"]
    assert spent < 2_000  # one copy's work, not the budget's
    d = one_error(text, "E608")
    assert "100,000 copies of" in d.message and (d.span.line, d.span.col) == (7, 5)


# ------------------------------------------------------- naming templates


def test_expressions_in_labels_name_what_a_loop_builds_as_torchvision_regnet_does() -> None:
    spec = net(
        """
    trunk: {
        for s in range(len(depths)) {
            "block{s + 1}": {
                for i in range(depths[s]) { "block{s + 1}-{i}": { conv: conv(8, 3, padding = 1); relu } }
            }
        }
    }
    "head_{tag}{1}": conv(4, 1) * 2""",
        params='depths = [2, 1], tag = "x"',
        input_="3 x 8 x 8",
    )
    paths = [p for p, (op, _) in layers(spec).items() if op == "conv"]
    assert paths == [
        "trunk.block1.block1-0.conv", "trunk.block1.block1-1.conv", "trunk.block2.block2-0.conv", "head_x1", "head_x2",
    ]  # fmt: skip
    model = cnnspec.compile(spec)
    assert [k for k in model.state_dict() if k.endswith("weight")] == [p + ".weight" for p in paths]


def test_a_parameter_read_only_by_a_label_is_used() -> None:
    spec = net('    for i in range(2) { "c{i}_{tag}": conv(4, 1) }', params='tag = "a"')
    assert not cnnspec.check(spec).warnings
    assert [p for p in layers(spec)] == ["c0_a", "c1_a"]
