"""Options: config files, command-line precedence, and one-line errors for bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from train_helpers import load_weights

from cnnspec.train import cli
from cnnspec.train.api import resolve_config
from cnnspec.train.config import read_config_file, resolve
from cnnspec.train.errors import UsageError
from cnnspec.train.rundir import Plan

FRESH = Plan(resume_from=None, clear=False)


def test_toml_and_yaml_files_and_cli_wins(tmp_path: Path) -> None:
    toml = tmp_path / "a.toml"
    toml.write_text('[train]\nbatch-size = 16\nepochs = 4\nmilestones = [1, 2]\nparams = { num_classes = 10 }\n')
    yml = tmp_path / "b.yaml"
    yml.write_text("batch_size: 16\nepochs: 4\nprecision: bf16\n")
    assert read_config_file(toml)["batch_size"] == 16
    cfg = resolve_config(None, out=tmp_path / "o", plan=FRESH, config=toml, options={"epochs": 7, "data": "digits"})
    assert (cfg.batch_size, cfg.epochs, cfg.milestones, cfg.params) == (16, 7, [1, 2], {"num_classes": 10})
    cfg = resolve_config(None, out=tmp_path / "o", plan=FRESH, config=yml, options={"batch_size": 8, "data": "digits"})
    assert (cfg.batch_size, cfg.epochs, cfg.precision) == (8, 4, "bf16")


def test_bad_values_name_the_option() -> None:
    with pytest.raises(UsageError, match="batch-size"):
        resolve({"batch_size": 0})
    with pytest.raises(UsageError, match="no-such-option"):
        resolve({"no_such_option": 1})
    with pytest.raises(UsageError, match="unknown data source"):
        resolve({"data": "mnist"})


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def test_usage_errors_are_one_line_exit_2(tmp_path: Path, lenet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "run")
    code, err = _main(capsys, str(lenet), "--out", out, "--bogus")
    assert code == 2 and len(err.splitlines()) == 1 and "--bogus" in err
    code, err = _main(capsys, str(lenet), "--data", "digits", "--out", out, "--batch-size", "-3")
    assert code == 2 and len(err.splitlines()) == 1 and "batch-size" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("epochs = [\n")
    code, err = _main(capsys, str(lenet), "--out", out, "--config", str(bad))
    assert code == 2 and len(err.splitlines()) == 1 and "bad.toml" in err
    code, err = _main(capsys, str(lenet), "--out", out, "--data", f"imagefolder:{tmp_path / 'nowhere'}")
    assert code == 2 and len(err.splitlines()) == 1 and "train/" in err
    code, err = _main(capsys, str(tmp_path / "missing.cnn"), "--data", "digits", "--out", out)
    assert code == 2 and "does not exist" in err


def test_data_is_required_and_the_error_names_the_sources(
    tmp_path: Path, lenet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 23: without --data the trainer ran 20 epochs on the demo digits."""
    out = tmp_path / "r"
    code, err = _main(capsys, str(lenet), "--out", str(out))
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("cnnspec train: error: missing --data")
    assert all(word in err for word in ("digits", "imagefolder:PATH", "synthetic[:N]"))
    assert not (out / "config.yaml").exists()  # refused before the run began
    with pytest.raises(UsageError, match="missing --data"):
        resolve_config(None, out=tmp_path / "o", plan=FRESH, options={"epochs": 3})


def test_data_may_come_from_the_config_file_or_the_resumed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, out, common = _tiny_run(tmp_path)
    conf = tmp_path / "run.toml"
    conf.write_text('data = "synthetic:32"\n')
    rest = [a for a in common if a not in ("--data", "synthetic:32")]
    code, err = _main(capsys, str(spec), "--config", str(conf), "--epochs", "2", "--stop-after", "1", *rest)
    assert code == 0, err
    assert yaml.safe_load((out / "config.yaml").read_text())["data"] == "synthetic:32"
    code, err = _main(capsys, "--resume", "--out", str(out))  # no --data: the run's own
    assert code == 0, err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2


def test_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    help_text = parser.format_help()
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        text = " ".join((action.help or "").split())
        assert "(default:" in text or "(required" in text or "required," in text, (action.option_strings, text)
    assert "--data SOURCE" in help_text and "required, the images to train on" in " ".join(help_text.split())


def test_class_count_mismatch_says_how_to_fix(tmp_path: Path, lenet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main(capsys, str(lenet), "--data", "digits", "--out", str(tmp_path / "r"), "--set", "num_classes=7")
    assert code == 2
    assert "10 classes" in err and "--set num_classes=10" in err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_existing_run_is_not_overwritten(tmp_path: Path, lenet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "metrics.jsonl").write_text("precious\n")
    code, err = _main(capsys, str(lenet), "--data", "digits", "--out", str(out))
    assert code == 2 and "--resume" in err and "--force" in err
    assert (out / "metrics.jsonl").read_text() == "precious\n"
    code, err = _main(capsys, str(lenet), "--data", "digits", "--out", str(out), "--resume")
    assert code == 2 and "no checkpoint" in err


def test_spec_errors_are_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "broken.cnn"
    spec.write_text("network Broken {\n    input: 1 x 8 x 8\n    conv(4, 99)\n}\n")
    code, err = _main(capsys, str(spec), "--data", "digits", "--out", str(tmp_path / "r"))
    assert code == 1
    assert "Traceback" not in err and "broken.cnn" in err


TINY = """\
network Tiny(kernel = [3, 3], num_classes = 10) {
    input: 1 x 8 x 8
    conv1: conv(4, kernel)
    relu
    flatten
    fc: linear(num_classes)
}
"""


def _tiny_run(tmp_path: Path) -> tuple[Path, Path, tuple[str, ...]]:
    """TINY written to a file, the run directory, and the options of a quick run on synthetic images."""
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    out = tmp_path / "run"
    return spec, out, ("--data", "synthetic:32", "--batch-size", "16", "--progress", "off", "--out", str(out))


def test_path_finds_the_imports_and_a_resumed_run_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "tiny.cnn").write_text(TINY)
    spec = tmp_path / "proj" / "main.cnn"
    spec.parent.mkdir()
    spec.write_text('import "tiny.cnn"\nnetwork Mine = Tiny(num_classes = 10)\n')
    out = tmp_path / "run"
    common = ("--data", "synthetic:32", "--batch-size", "16", "--progress", "off", "--out", str(out))
    code, err = _main(capsys, str(spec), *common)
    assert code == 1 and 'cannot import "tiny.cnn"' in err
    monkeypatch.chdir(tmp_path)
    code, err = _main(capsys, str(spec), "--path", "lib", "--epochs", "2", "--stop-after", "1", *common, "--force")
    assert code == 0, err
    assert yaml.safe_load((out / "config.yaml").read_text())["path"] == [str(lib)]
    monkeypatch.chdir(spec.parent)  # the saved path is absolute
    code, err = _main(capsys, "--resume", "--out", str(out))
    assert code == 0, err


def test_set_takes_spec_values_and_a_resumed_run_keeps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--set layers=[...] is a list, as for `cnnspec check`; config.yaml keeps it as spec text for --resume."""
    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    out = tmp_path / "run"
    common = ("--data", "synthetic:64", "--batch-size", "16", "--progress", "off", "--out", str(out))
    code, err = _main(capsys, str(spec), "--set", "kernel=[5, 5]", "--epochs", "2", "--stop-after", "1", *common)
    assert code == 0, err
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["sets"] == {"kernel": "[5, 5]"} and saved["params"] == {}
    assert load_weights(out / "model.safetensors")["conv1.weight"].shape == (4, 1, 5, 5)

    code, err = _main(capsys, str(spec), "--epochs", "2", "--resume", *common)  # no --set: the saved one holds
    assert code == 0, err
    assert load_weights(out / "model.safetensors")["conv1.weight"].shape == (4, 1, 5, 5)
    assert yaml.safe_load((out / "config.yaml").read_text())["sets"] == {"kernel": "[5, 5]"}


@pytest.mark.parametrize("bad", ["kernel", "kernel=[5", "2x=1"])
def test_a_bad_set_is_the_same_usage_error_from_check_and_train(
    tmp_path: Path, lenet: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    from cnnspec.cli import main as cnnspec_main

    assert cnnspec_main(["check", str(lenet), "--set", bad]) == 2
    checked = capsys.readouterr().err.strip()
    assert cnnspec_main(["train", str(lenet), "--set", bad, "--out", str(tmp_path / "r")]) == 2
    trained = capsys.readouterr().err.strip()
    assert checked.startswith("cnnspec check: error: --set ") and len(checked.splitlines()) == 1
    assert trained == checked.replace("cnnspec check:", "cnnspec train:", 1)
    assert not (tmp_path / "r").exists()


def test_sets_in_a_config_file_are_checked_like_the_command_line(tmp_path: Path) -> None:
    good = resolve({"sets": {"kernel": "[5, 5]"}}, {"params": {"num_classes": 3}})
    assert (good.sets, good.params) == ({"kernel": "[5, 5]"}, {"num_classes": 3})
    # A later layer giving a parameter in one form replaces the other form.
    assert resolve({"params": {"kernel": 3}}, {"sets": {"kernel": "[5, 5]"}}).params == {}
    assert resolve({"sets": {"kernel": "[5, 5]"}}, {"params": {"kernel": 3}}).sets == {}
    with pytest.raises(UsageError, match=r"invalid option sets: --set kernel: cannot read the value '\[5'"):
        resolve({"sets": {"kernel": "[5"}})


def test_a_spec_file_named_with_brackets_and_equals_is_a_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lenet (copy).cnn`, the name a file manager gives a copy, is a file to read, never spec text
    (issue 25: it used to be parsed as source, `<spec>:1:1: error[E002]`)."""
    spec = tmp_path / "tiny (copy) v=2.cnn"
    spec.write_text(TINY)
    out = tmp_path / "run"
    code, err = _main(capsys, str(spec), "--data", "synthetic:32", "--batch-size", "16", "--epochs", "1",
                      "--progress", "off", "--out", str(out))
    assert code == 0, err
    assert (out / "model.safetensors").exists()


@pytest.mark.parametrize("out", ["/proc/cnnspec-no-such-dir", "/dev/null/run"])
def test_an_out_directory_that_cannot_be_written_is_refused_before_any_work(
    out: str, lenet: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: an --out under /proc or /dev/null failed with an OSError traceback after 6-12 s."""
    code, err = _main(capsys, str(lenet), "--data", "digits", "--epochs", "1", "--out", out)
    assert code == 2, err
    assert err.startswith(f"cnnspec train: error: --out {out}: cannot write there (")
    assert "Traceback" not in err


def test_half_written_files_of_a_killed_run_are_removed_at_the_next_start(tmp_path: Path) -> None:
    """A kill during a checkpoint write leaves `.NAME.PID.tmp` behind; the next start removes those of
    dead processes and keeps a live process's (it may be writing)."""
    import subprocess
    import sys

    from cnnspec.train import rundir

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(done.stdout)  # a process that has exited
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    stale = [ckpt / f".step10-epoch1.pt.{dead}.tmp", tmp_path / f".model.safetensors.{dead}.tmp"]
    live = ckpt / f".step20-epoch2.pt.{os.getpid()}.tmp"
    for p in [*stale, live]:
        p.write_bytes(b"partial")
    keep = tmp_path / "notes.tmp"
    keep.write_text("mine")
    assert sorted(rundir.remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert live.exists() and keep.exists() and not any(p.exists() for p in stale)


def test_resume_refuses_an_emptied_config_rather_than_running_the_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: an emptied config.yaml made --resume run the default 20 epochs instead of the run's."""
    spec, out, common = _tiny_run(tmp_path)
    code, err = _main(capsys, str(spec), "--epochs", "3", "--stop-after", "1", *common)
    assert code == 0, err
    (out / "config.yaml").write_text("")
    code, err = _main(capsys, str(spec), "--resume", *common)
    assert code == 2
    assert "config.yaml is missing or emptied" in err and "--force" in err


def test_a_config_that_is_not_a_regular_file_says_so(lenet: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _main(capsys, str(lenet), "--data", "digits", "--config", "/dev/zero", "--out", "/tmp/unused")
    assert code == 2
    assert "'/dev/zero' is not a regular file" in err


def test_a_second_trainer_on_a_run_directory_in_use_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: two trainers on one --out both ran and interleaved metrics.jsonl. The run holds a
    lock on its directory; here a real second process holds it, as a running trainer would."""
    import subprocess
    import sys

    spec = tmp_path / "tiny.cnn"
    spec.write_text(TINY)
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
         "f.write('pid 4242'); f.flush(); print('locked', flush=True); time.sleep(60)",
         str(out / ".lock")],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        common = ("--data", "synthetic:32", "--batch-size", "16", "--progress", "off", "--out", str(out))
        code, err = _main(capsys, str(spec), "--epochs", "1", "--force", *common)
        assert code == 2, err
        assert "is in use by another cnnspec train (pid 4242)" in err
        assert not (out / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    code, err = _main(capsys, str(spec), "--epochs", "1", "--force", *common)  # the lock died with its process
    assert code == 0, err


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("synthetic:-5", "synthetic:N needs a positive whole number of images, got '-5'"),
        ("synthetic:0", "synthetic:N needs a positive whole number of images, got '0'"),
        ("nosuch", "unknown data source 'nosuch'"),
    ],
)
def test_a_bad_data_source_is_a_usage_error_naming_data(
    data: str, why: str, lenet: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: synthetic:-5 ended in a RuntimeError traceback; nosuch blamed the option `config`."""
    code, err = _main(capsys, str(lenet), "--data", data, "--out", str(tmp_path / "r"))
    assert code == 2
    assert err.startswith(f"cnnspec train: error: invalid option data: {why}")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("--optimizer", "adamw"), "optimizer: the run has 'sgd', this invocation 'adamw'"),
        (("--set", "kernel=[5, 5]"), "sets: the run has {}, this invocation {'kernel': '[5, 5]'}"),
        ("edit the spec", "does not fit this network (Error(s) in loading state_dict"),
    ],
)
def test_resume_refuses_a_changed_network_or_optimizer_and_names_the_change(
    change: tuple[str, ...] | str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: resuming with another spec ended in a size-mismatch traceback, with --optimizer adamw
    in KeyError: 'step'."""
    spec, _, common = _tiny_run(tmp_path)
    code, err = _main(capsys, str(spec), "--epochs", "2", "--stop-after", "1", *common)
    assert code == 0, err
    extra: tuple[str, ...] = ()
    if change == "edit the spec":
        spec.write_text(TINY.replace("conv(4, kernel)", "conv(6, kernel)"))
    else:
        extra = tuple(change)
    code, err = _main(capsys, str(spec), "--resume", *extra, *common)
    assert code == 2, err
    assert expected in err and "--force" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("damage", ["overwrite 4 KiB in the middle", "truncate"])
def test_resume_passes_over_a_damaged_newest_checkpoint_and_says_so(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: random bytes in a checkpoint loaded silently; a truncated newest one was refused with
    miniz's "failed finding central directory" instead of falling back to the previous intact one."""
    from cnnspec.train import checkpoint

    spec, out, common = _tiny_run(tmp_path)
    assert cli.main([str(spec), "--epochs", "3", "--stop-after", "2", *common]) == 0
    older, newest = checkpoint.list_checkpoints(out)[-2:]
    data = bytearray(newest.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        data[middle : middle + 4096] = os.urandom(4096)
    newest.write_bytes(bytes(data))
    assert not checkpoint.intact(newest) and checkpoint.intact(older)
    with pytest.raises(Exception, match="damaged"):
        checkpoint.load(newest)
    capsys.readouterr()
    assert cli.main([str(spec), "--resume", *common]) == 0
    said = "".join(capsys.readouterr())
    assert f"warning: {newest.name} is damaged" in said
    assert f"resuming from {older.name}" in said
    assert checkpoint.intact(newest)  # epoch 2 was trained again and its checkpoint written anew
