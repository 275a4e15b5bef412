"""From trained weights to an export: `cnnspec compile SPEC --weights RUN -o FILE` and compile(weights=).

LeNet-5 is trained for one epoch on the digits by the real trainer; its
run directory (or its model.safetensors) is loaded, exported to .py (the
weights written beside it) and ONNX, and the exports give the trained
model's outputs. Weights that do not fit the spec (another spec's, a
truncated file, a directory without weights, another --set) are usage
errors that name the keys and the spec, with exit status 2 and no traceback.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from support import SPECS

import cnnspec
from cnnspec.backends.weights import WeightsError
from cnnspec.cli import main

LENET = SPECS / "lenet5.cnn"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory of the real trainer: LeNet-5, one epoch on the digits."""
    out = tmp_path_factory.mktemp("weights") / "run"
    result = cnnspec.train(str(LENET), data="digits", out=out, epochs=1, progress="off")
    assert result.model_path == out / "model.safetensors"
    return out


@pytest.fixture(scope="module")
def trained(run: Path) -> torch.nn.Module:
    """The trained network, loaded by torch itself (not through --weights), in eval mode."""
    model = cnnspec.compile(LENET)
    model.load_state_dict(load_file(str(run / "model.safetensors")), strict=True)
    return model.eval()


def _digits() -> torch.Tensor:
    return torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(0))


def _compile(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["compile", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_api_loads_a_run_directory_or_its_file(run: Path, trained: torch.nn.Module) -> None:
    x = _digits()
    with torch.no_grad():
        expected = trained(x)
    fresh = cnnspec.compile(LENET).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(x), expected)  # training changed the weights
    for weights in (run, run / "model.safetensors", str(run)):
        model = cnnspec.compile(LENET, weights=weights).eval()
        with torch.no_grad():
            assert torch.equal(model(x), expected)


def test_a_torch_saved_state_dict_loads_too(tmp_path: Path, run: Path, trained: torch.nn.Module) -> None:
    torch.save(trained.state_dict(), tmp_path / "lenet.pt")
    model = cnnspec.compile(LENET, weights=tmp_path / "lenet.pt").eval()
    x = _digits()
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))


def test_py_export_with_weights_gives_the_trained_outputs(
    tmp_path: Path, run: Path, trained: torch.nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "lenet5.py"
    code, out, err = _compile(capsys, str(LENET), "--weights", str(run), "-o", str(target), "-q")
    assert code == 0, err
    beside = tmp_path / "lenet5.safetensors"
    assert f"wrote:       {beside}" in out and f"weights from {run / 'model.safetensors'}" in out
    spec = importlib.util.spec_from_file_location("lenet5_export", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported = module.LeNet5()
    exported.load_state_dict(load_file(str(beside)), strict=True)
    exported.eval()
    x = _digits()
    with torch.no_grad():
        assert torch.equal(exported(x), trained(x))
    # the weights file beside it is not overwritten without --force
    code, _, err = _compile(capsys, str(LENET), "--weights", str(run), "-o", str(tmp_path / "lenet5.py"), "-q")
    assert code == 2 and "exists; pass --force" in err


@pytest.mark.slow
def test_onnx_and_pt2_exports_with_weights_give_the_trained_outputs(
    tmp_path: Path, run: Path, trained: torch.nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    import onnxruntime

    x = _digits()
    with torch.no_grad():
        expected = trained(x)
    onnx = tmp_path / "lenet5.onnx"
    code, _, err = _compile(capsys, str(LENET), "--weights", str(run), "-o", str(onnx), "-q")
    assert code == 0, err
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    (got,) = session.run(["y"], {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=1e-5, atol=1e-5)
    pt2 = tmp_path / "lenet5.pt2"
    code, _, err = _compile(capsys, str(LENET), "--weights", str(run / "model.safetensors"), "-o", str(pt2), "-q")
    assert code == 0, err
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(str(pt2)).module()(x), expected, rtol=1e-5, atol=1e-5)


def _usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code, out, err = _compile(capsys, *args)
    assert code == 2, (out, err)
    assert "Traceback" not in err and "internal error" not in err
    assert err.startswith("cnnspec compile: error: --weights ")
    return err


def test_another_specs_weights_name_the_keys_and_the_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.cnn"
    other.write_text(
        "network Other {\n    input: 1 x 32 x 32\n"
        + "".join(f"    c{i}: conv(4, 3, padding = 1)\n" for i in range(8))
        + "    flatten\n    head: linear(10)\n}\n"
    )
    weights = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in cnnspec.compile(other).state_dict().items()}, str(weights))
    err = _usage_error(capsys, str(LENET), "--weights", str(weights), "-q")
    assert f"does not fit LeNet5 of {LENET}" in err
    assert "10 missing keys: conv1.weight, conv1.bias, conv2.weight, conv2.bias, fc1.weight and 5 more" in err
    assert "18 unexpected keys: c0.bias, c0.weight" in err and "and 13 more" in err
    with pytest.raises(WeightsError, match="10 missing keys"):
        cnnspec.compile(LENET, weights=weights)


def test_a_truncated_file_is_a_usage_error(tmp_path: Path, run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = (run / "model.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    err = _usage_error(capsys, str(LENET), "--weights", str(cut), "-q")
    assert f"--weights {cut}: cannot read it" in err and "is the file complete?" in err


def test_a_directory_without_weights_is_a_usage_error(
    tmp_path: Path, run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(capsys, str(LENET), "--weights", str(tmp_path), "-q")
    assert f"--weights {tmp_path}: the directory holds no model.safetensors" in err
    # a run that has not finished has checkpoints only: say how to finish it
    unfinished = tmp_path / "unfinished"
    shutil.copytree(run, unfinished)
    (unfinished / "model.safetensors").unlink()
    err = _usage_error(capsys, str(LENET), "--weights", str(unfinished), "-q")
    assert f"cnnspec train --resume --out {unfinished}" in err
    err = _usage_error(capsys, str(LENET), "--weights", str(tmp_path / "missing"), "-q")
    assert "no such file or directory" in err
    (tmp_path / "w.bin").write_bytes(b"")
    err = _usage_error(capsys, str(LENET), "--weights", str(tmp_path / "w.bin"), "-q")
    assert "expected a run directory, a .safetensors file" in err


def test_other_set_values_than_the_runs_are_named(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _usage_error(capsys, str(LENET), "--weights", str(run), "--set", "num_classes=4", "-q")
    assert "fc3.weight (10x84 in the file, 4x84 in the network)" in err
    assert "this sets num_classes=4, the run did not" in err


def test_a_changed_spec_whose_weights_fit_loads_with_a_warning(
    tmp_path: Path, run: Path, trained: torch.nn.Module, capsys: pytest.CaptureFixture[str]
) -> None:
    edited = tmp_path / "lenet5.cnn"
    edited.write_text("# edited after training\n" + LENET.read_text())
    code, _, err = _compile(capsys, str(edited), "--weights", str(run), "-q")
    assert code == 0, err
    assert "cnnspec compile: warning: --weights" in err and f"not {edited}" in err
    with pytest.warns(UserWarning, match="the run trained the spec text saved in"):
        model = cnnspec.compile(edited, weights=run).eval()
    x = _digits()
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))
    # the run's own copy of the spec compiles without a warning
    code, _, err = _compile(capsys, str(run / "spec.cnn"), "--weights", str(run), "-q")
    assert code == 0 and "warning" not in err
