"""Stage 5, the command line, run for real: `python -m cnnspec ...` in a subprocess.

Exit status 0 when the spec is valid, 1 when it has errors, 2 for usage
errors; spec errors print as `path:line:col: error[Exxx]: message` with the
source line and a caret, and nothing ever prints a Python traceback
(run_cli asserts that on every call).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import CANON, SPECS, run_cli, spec_file

import cnnspec

# ---------------------------------------------------------------------- check


def test_check_prints_the_summary() -> None:
    r = run_cli("check", SPECS / "lenet5.cnn")
    assert r.rc == 0, r.err
    assert "LeNet5" in r.out and "61,706" in r.out


def test_quiet_prints_no_summary_and_keeps_the_result_lines(tmp_path: Path) -> None:
    """The README's first command checks, then compiles: the summary is printed once (issue 23)."""
    r = run_cli("check", SPECS / "lenet5.cnn", "--quiet")
    assert r.rc == 0 and r.out == "", r.both
    r = run_cli("compile", SPECS / "lenet5.cnn", "-q", "-o", tmp_path / "lenet.py")
    assert r.rc == 0, r.err
    assert "61,706" not in r.out.replace("61,706 parameters", "")  # no table, only the result lines
    assert r.out.splitlines()[0].startswith("compiled:") and "wrote:" in r.out
    spec = spec_file(tmp_path, "block Unused() { relu }\nnetwork N {\n    input: 3 x 8 x 8\n    relu\n}\n")
    r = run_cli("check", spec, "--quiet")
    assert r.rc == 0 and r.out == "" and "warning" in r.err  # warnings still reach the user


def test_check_json_prints_errors_as_json_too(tmp_path: Path) -> None:
    """`check --json` is JSON whatever happens: a tool reading it never gets the text form."""
    spec = spec_file(tmp_path, "network N {\n    input: 3 x 8 x 8\n    conv(4, 3, strid = 2)\n}\n")
    r = run_cli("check", spec, "--json")
    assert r.rc == 1
    [d] = json.loads(r.out)
    assert (d["code"], d["line"], d["severity"]) == ("E209", 3, "error")


def test_check_json_is_one_object_with_the_essentials() -> None:
    r = run_cli("check", SPECS / "resnet18.cnn", "--json")
    assert r.rc == 0, r.err
    data = json.loads(r.out)
    assert isinstance(data, dict)
    for key in ("network", "input_shape", "output_shape", "total_params", "trainable_params", "macs", "layers"):
        assert key in data, key
    assert data["network"] == "resnet18"
    assert data["input_shape"] == [3, 224, 224] and data["output_shape"] == [1000]
    assert data["total_params"] == data["trainable_params"] == CANON["resnet18"].params
    report = cnnspec.check(SPECS / "resnet18.cnn")
    assert data["macs"] == report.macs
    assert [row["path"] for row in data["layers"]] == [row.path for row in report.layers]
    assert data["layers"][0]["output_shape"] == [64, 112, 112]


def test_set_gives_resnet152_a_ten_way_head() -> None:
    r = run_cli("check", SPECS / "resnet152.cnn", "--set", "num_classes=10", "--json")
    assert r.rc == 0, r.err
    data = json.loads(r.out)
    assert data["output_shape"] == [10]
    fc = data["layers"][-1]
    assert fc["path"] == "fc" and fc["output_shape"] == [10] and fc["params"] == 2048 * 10 + 10
    assert data["total_params"] == CANON["resnet152"].params - 2048 * 990 - 990


def test_set_values_are_spec_expressions_and_input_overrides_the_shape() -> None:
    r = run_cli(
        "check", SPECS / "resnet50.cnn", "--set", "layers=[2, 2, 2, 2]", "--set", "unit=BasicBlock",
        "--input", "3x160x160", "--json",
    )
    assert r.rc == 0, r.err
    data = json.loads(r.out)
    assert data["total_params"] == CANON["resnet18"].params
    assert data["input_shape"] == [3, 160, 160]
    assert data["layers"][0]["output_shape"] == [64, 80, 80]


def test_check_picks_a_network_by_name(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, "network A { input: 4\n linear(2) }\nnetwork B { input: 4\n linear(3) }\n")
    r = run_cli("check", spec, cwd=tmp_path)
    assert r.rc == 1 and "--network" in r.err
    r = run_cli("check", spec, "--network", "B", "--json", cwd=tmp_path)
    assert r.rc == 0 and json.loads(r.out)["output_shape"] == [3]


def test_a_family_file_needs_its_parameters() -> None:
    r = run_cli("check", SPECS / "resnet.cnn")
    assert r.rc == 1 and "layers" in r.err
    r = run_cli("check", SPECS / "resnet.cnn", "--set", "layers=[1, 1, 1, 1]", "--json")
    assert r.rc == 0 and json.loads(r.out)["output_shape"] == [1000]


# --------------------------------------------------------------- errors, status


def test_an_unknown_set_name_is_an_error_that_lists_the_parameters() -> None:
    r = run_cli("check", SPECS / "resnet152.cnn", "--set", "num_clases=10")
    assert r.rc == 1
    assert "num_clases" in r.err
    for name in ("layers", "unit", "num_classes", "groups", "width_per_group"):
        assert name in r.err, name


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "SPEC", "--set", "num_classes"],
        ["check", "SPEC", "--set", "num_classes=[1,"],
        ["check", "SPEC", "--input", "1x3x224x224"],  # 3x224 is N x D tokens since attention
        ["check", "SPEC", "--input", "axbxc"],
        ["check", "SPEC", "--depth", "-1"],
        ["frobnicate", "SPEC"],
        [],
    ],
)
def test_usage_errors_exit_with_2(args: list[str]) -> None:
    args = [str(SPECS / "lenet5.cnn") if a == "SPEC" else a for a in args]
    r = run_cli(*args)
    assert r.rc == 2, (r.out, r.err)
    assert r.err.strip()


def test_a_missing_spec_file_is_an_error() -> None:
    r = run_cli("check", "no/such/net.cnn")
    assert r.rc == 1
    assert "no/such/net.cnn" in r.err and "error" in r.err


BAD = {
    "syntax": ("network N {\n    input: 3 x 32 x 32\n    conv(64 3)\n}\n", 3, 13),
    "unknown layer": ("network N {\n    input: 3 x 32 x 32\n    conv(8, 3)\n    convv(8, 3)\n}\n", 4, 5),
    "wrong argument": ("network N {\n    input: 3 x 32 x 32\n    conv(8, 3, strides = 2)\n}\n", 3, 16),
    "bad value": ("network N {\n    input: 3 x 32 x 32\n    conv(8, 3, stride = -2)\n}\n", 3, 25),
    "shapes": ("network N {\n    input: 3 x 32 x 32\n    maxpool(4)\n    conv(8, 9)\n}\n", 4, 5),
    "flat": ("network N {\n    input: 3 x 32 x 32\n    flatten\n    conv(8, 3)\n}\n", 4, 5),
    "dims": ("network N {\n    input: 3 x 32 x 32\n    permute([0, 2, 3, 3])\n}\n", 3, 5),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_specs_print_location_source_and_caret(case: str, tmp_path: Path) -> None:
    text, line, col = BAD[case]
    spec = spec_file(tmp_path, text, name="bad.cnn")
    r = run_cli("check", "bad.cnn", cwd=tmp_path)
    assert r.rc == 1, (r.out, r.err)
    first = r.err.splitlines()[0]
    assert re.match(rf"bad\.cnn:{line}:{col}: error\[E\d{{3}}\]: \S", first), first
    source_line = text.splitlines()[line - 1]
    lines = r.err.splitlines()
    quoted = next(i for i, s in enumerate(lines) if s.endswith("| " + source_line))
    caret = lines[quoted + 1]
    bar = caret.index("|")
    assert caret[bar + 2 + col - 1] == "^", caret
    assert set(caret[bar + 2 : bar + 2 + col - 1]) <= {" "}
    # The same error from the compile command, with the same status.
    assert run_cli("compile", spec, cwd=tmp_path).rc == 1


def test_diagnostics_as_json(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, BAD["unknown layer"][0])
    r = run_cli("check", spec, "--diagnostics", "json", cwd=tmp_path)
    assert r.rc == 1
    (d,) = json.loads(r.out)
    assert (d["line"], d["col"], d["severity"]) == (4, 5, "error")
    assert d["code"].startswith("E") and "convv" in d["message"]


def test_every_independent_error_is_reported_once(tmp_path: Path) -> None:
    text = "network N {\n    input: 3 x 32 x 32\n    frob(3)\n    conv(8, 3, strid = 1)\n}\n"
    spec = spec_file(tmp_path, text, name="two.cnn")
    r = run_cli("check", "two.cnn", cwd=tmp_path)
    assert r.rc == 1
    located = re.findall(r"^two\.cnn:(\d+):\d+: error", r.err, flags=re.M)
    assert located == ["3", "4"]
    assert spec.exists()


# -------------------------------------------------------------------- compile


def test_compile_prints_the_module_it_built() -> None:
    r = run_cli("compile", SPECS / "lenet5.cnn")
    assert r.rc == 0, r.err
    assert "61,706 parameters" in r.out


def test_compile_writes_python_that_loads_in_a_fresh_interpreter(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    r = run_cli("compile", SPECS / "resnet18.cnn", "--set", "num_classes=10", "-o", out, cwd=tmp_path)
    assert r.rc == 0, r.err
    assert out.exists() and "model.py" in r.out
    probe = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('model', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "import torch\n"
        "net = m.resnet18().eval()\n"
        "print(tuple(net(torch.randn(2, 3, 64, 64)).shape), sum(p.numel() for p in net.parameters()),\n"
        "      any(k.startswith('cnnspec') for k in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["(2,", "10)", str(CANON["resnet18"].params - 512 * 990 - 990), "False"]


def test_compile_writes_an_exported_program(tmp_path: Path) -> None:
    out = tmp_path / "model.pt2"
    r = run_cli("compile", SPECS / "lenet5.cnn", "-o", out, cwd=tmp_path)
    assert r.rc == 0, r.err
    import torch

    program = torch.export.load(str(out))
    y = program.module()(torch.randn(5, 1, 32, 32))
    assert y.shape == (5, 10)


def test_compile_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "model.py"
    out.write_text("# precious\n")
    r = run_cli("compile", SPECS / "lenet5.cnn", "-o", out, cwd=tmp_path)
    assert r.rc == 2 and "--force" in r.err
    assert out.read_text() == "# precious\n"
    r = run_cli("compile", SPECS / "lenet5.cnn", "-o", out, "--force", cwd=tmp_path)
    assert r.rc == 0, r.err
    assert "class LeNet5(nn.Module)" in out.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.py"]  # no temporary file left


@pytest.mark.parametrize("name", ["model.txt", "model", "missing/model.py"])
def test_compile_output_usage_errors(name: str, tmp_path: Path) -> None:
    r = run_cli("compile", SPECS / "lenet5.cnn", "-o", tmp_path / name, cwd=tmp_path)
    assert r.rc == 2, (r.out, r.err)
    assert list(tmp_path.iterdir()) == []


def test_a_spec_error_writes_nothing(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, BAD["shapes"][0])
    r = run_cli("compile", spec, "-o", tmp_path / "model.py", cwd=tmp_path)
    assert r.rc == 1
    assert not (tmp_path / "model.py").exists()


# ---------------------------------------------------------------------- other


def test_layers_lists_the_vocabulary() -> None:
    r = run_cli("layers")
    assert r.rc == 0
    assert re.search(r"^conv\(out, kernel", r.out, flags=re.M)
    assert re.search(r"^batchnorm", r.out, flags=re.M)
    # piped: 80 columns, descriptions under their signatures where a line would be wider (issue 23)
    assert max(len(line) for line in r.out.splitlines()) <= 80
    # what it lists can be written: an optional argument worked out from the others is shown
    # as `[stride]`, never as a default (`stride = none`) that is E102 "unknown name" in a spec
    assert "none" not in r.out.replace('"none"', "")
    assert "maxpool(kernel, [stride], padding = 0" in r.out


def test_version_and_help() -> None:
    r = run_cli("--version")
    assert r.rc == 0 and cnnspec.__version__ in r.out
    r = run_cli("check", "--help")
    assert r.rc == 0 and "--set" in r.out and "--json" in r.out and "--input" in r.out
    r = run_cli("compile", "--help")
    assert r.rc == 0 and "--force" in r.out and "-o" in r.out


def test_the_console_script_is_installed() -> None:
    import shutil

    exe = shutil.which("cnnspec")
    if exe is None:
        pytest.skip("the cnnspec console script is not on PATH")
    p = subprocess.run([exe, "check", str(SPECS / "lenet5.cnn"), "--json"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and json.loads(p.stdout)["total_params"] == 61_706


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """The temporary file is private (mkstemp); the file it becomes follows the umask like any other."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    from cnnspec.commands.common import write_new

    out = tmp_path / "model.dot"
    write_new(out, force=False, writer=lambda p: p.write_text("digraph {}\n"))
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


# ------------------------------------------------------------ import weight

_IMPORTS_AFTER = """\
import contextlib, io, json, sys
import cnnspec.cli
with contextlib.redirect_stdout(io.StringIO()):
    rc = cnnspec.cli.main(sys.argv[1:])
print(json.dumps({"rc": rc, "torch": "torch" in sys.modules}))
"""


def _run_in_fresh_interpreter(*args: str | Path) -> dict:
    p = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, *map(str, args)], capture_output=True, text=True,
                       timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["check", "RESNET152"],
        ["check", "RESNET152", "--json"],
        ["diagram", "RESNET152", "-o", "OUT.dot"],
        ["layers"],
        ["train", "--help"],
    ],
)
def test_check_diagram_and_layers_never_import_torch(args: list[str], tmp_path: Path) -> None:
    """A cold `cnnspec check` must stay well under half a second, and importing torch alone takes longer."""
    args = [str(SPECS / "resnet152.cnn") if a == "RESNET152" else str(tmp_path / a) if a == "OUT.dot" else a
            for a in args]
    result = _run_in_fresh_interpreter(*args)
    assert result == {"rc": 0, "torch": False}


def test_the_torch_import_check_sees_torch_when_it_is_imported(tmp_path: Path) -> None:
    """compile needs torch: the probe above would report it, so its False is not vacuous."""
    assert _run_in_fresh_interpreter("compile", SPECS / "lenet5.cnn") == {"rc": 0, "torch": True}


@pytest.mark.parametrize("command", [["check"], ["check", "--json"], ["compile"], ["diagram", "-o", "DIR/x.dot"]])
def test_a_spec_file_named_with_brackets_and_equals_is_a_path(command: list[str], tmp_path: Path) -> None:
    """`lenet (copy).cnn`, the name a file manager gives a copy, is a file to read, never spec text
    (issue 25: it used to be parsed as source, `<spec>:1:1: error[E002]`)."""
    spec = tmp_path / "lenet (copy) v=2.cnn"
    spec.write_text((SPECS / "lenet5.cnn").read_text())
    name, *rest = command
    r = run_cli(name, spec, *[a.replace("DIR", str(tmp_path)) for a in rest])
    assert r.rc == 0, r.err
    assert "<spec>" not in r.both
