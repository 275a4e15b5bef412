"""Trained weights into a compiled module: a run directory of `cnnspec train`, or a weights file.

`cnnspec compile SPEC --weights RUN -o x.onnx` and `cnnspec.compile(SPEC, weights=RUN)`
go through here. The weights are checked against the network the spec gives
before they are loaded: every key the module has, no other key, and every
tensor of the module's shape; a mismatch is a WeightsError that names the
keys (the first few and how many) and the spec. A run directory also records
what it trained (config.yaml: the spec's path, the network, its parameters;
spec.cnn: the spec's text); where that differs from what is compiled, the
difference is named: in the error when the weights do not fit, as a warning
when they do (a comment or layout change leaves the weights valid).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

#: What a run directory of `cnnspec train` holds (cnnspec.train.rundir; repeated here so that
#: compiling needs none of the trainer's imports).
MODEL_FILENAME = "model.safetensors"
CONFIG_FILENAME = "config.yaml"
SPEC_FILENAME = "spec.cnn"
CHECKPOINT_DIR = "checkpoints"

#: Suffixes of the weight files read: safetensors, or a torch.save'd state_dict.
SUFFIXES = (".safetensors", ".pt", ".pth")

#: How many keys an error names before it says "and N more".
SHOWN = 5


class WeightsError(ValueError):
    """Weights that cannot be loaded into the network (the command line reports it as a usage error)."""


@dataclass
class Compiled:
    """What is compiled, to compare with what a run trained: the spec's path and text, the network's
    name, and its parameters as spec text (`--set` values, or Python values written as the spec would)."""

    spec: str
    text: str | None
    network: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass
class Loaded:
    """The weights read, where they came from, and the warnings to show."""

    state_dict: dict[str, torch.Tensor]
    path: Path
    warnings: list[str] = field(default_factory=list)


def param_text(value: Any) -> str:
    """A network parameter's value as comparable spec text: `[1, 1]`, `true`, `0.5`, `fan_out`.

    Parameters come as --set text (`layers=[1,1]`, `mode="fan_out"`) or as Python
    values (params={"layers": [1, 1]}); spaces and quotes are dropped so that the
    two spellings of one value compare equal.
    """
    text = value if isinstance(value, str) else json.dumps(value)
    return "".join(text.split()).replace('"', "").replace("'", "")


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:SHOWN])
    return shown + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


def weights_file(path: Path) -> tuple[Path, Path | None]:
    """The weights file that path names, and the run directory it belongs to (or None)."""
    if not path.exists():
        raise WeightsError(f"--weights {path}: no such file or directory")
    if path.is_dir():
        model = path / MODEL_FILENAME
        if not model.is_file():
            hint = "give a run directory of `cnnspec train` or a .safetensors file"
            if (path / CHECKPOINT_DIR).is_dir():
                hint = (
                    f"the run has not finished (its checkpoints are in {path / CHECKPOINT_DIR}); "
                    f"finish it with `cnnspec train --resume --out {path}`"
                )
            elif (path / CONFIG_FILENAME).is_file():
                hint = "the run wrote no weights yet"
            raise WeightsError(f"--weights {path}: the directory holds no {MODEL_FILENAME}; {hint}")
        return model, path
    if path.suffix not in SUFFIXES:
        raise WeightsError(
            f"--weights {path}: expected a run directory, a .safetensors file or a torch.save'd state_dict "
            f"(.pt, .pth), not {path.suffix or 'a file without a suffix'}"
        )
    run = path.parent if path.name == MODEL_FILENAME and (path.parent / CONFIG_FILENAME).is_file() else None
    return path, run


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a .safetensors file or a torch.save'd state_dict, on the CPU."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            tensors = load_file(str(path), device="cpu")
        else:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # safetensors' errors are its own type; torch.load raises a dozen kinds
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        hint = (
            "is the file complete?" if path.suffix == ".safetensors" else "it must be a state_dict saved by torch.save"
        )
        raise WeightsError(f"--weights {path}: cannot read it ({why}); {hint}") from None
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise WeightsError(f"--weights {path}: it holds no state_dict (a mapping of names to tensors)")
    return tensors


def run_differences(run: Path, compiled: Compiled) -> list[str]:
    """What the run in run trained that differs from what is compiled, one phrase each."""
    import yaml

    try:
        config = yaml.safe_load((run / CONFIG_FILENAME).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    if not isinstance(config, dict):
        config = {}
    found = []
    spec_copy = run / SPEC_FILENAME
    trained_from = str(config.get("spec") or spec_copy)
    if "\n" in trained_from:  # trained from spec text (the Python API), not a file
        trained_from = "spec text"
    if compiled.text is not None and spec_copy.is_file() and spec_copy.read_text(encoding="utf-8") != compiled.text:
        found.append(f"the run trained the spec text saved in {spec_copy} (from {trained_from}), not {compiled.spec}")
    network = config.get("network")
    if network and network != compiled.network:
        found.append(f"the run trained network {network}, this is {compiled.network}")
    trained = {k: param_text(v) for k, v in (config.get("params") or {}).items()}
    trained.update({k: param_text(v) for k, v in (config.get("sets") or {}).items()})
    for name in sorted(set(trained) | set(compiled.params)):
        was, now = trained.get(name), compiled.params.get(name)
        if was != now:
            found.append(
                f"the run set {name}={was}" + (f", this sets {name}={now}" if now is not None else ", this does not")
                if was is not None
                else f"this sets {name}={now}, the run did not"
            )
    return found


def load(module: nn.Module, weights: str | os.PathLike[str], compiled: Compiled) -> Loaded:
    """Check the weights at weights against module (the network compiled from compiled.spec), load them.

    Raises WeightsError naming the missing and unexpected keys and the tensors of
    another shape. Returns the warnings to show (a run that trained another
    spec text or parameters, where its weights still fit).
    """
    path, run = weights_file(Path(weights))
    tensors = read_state_dict(path)
    differences = run_differences(run, compiled) if run is not None else []
    expected = module.state_dict()
    missing = [k for k in expected if k not in tensors]
    unexpected = [k for k in tensors if k not in expected]
    reshaped = [
        f"{k} ({'x'.join(map(str, tensors[k].shape)) or 'scalar'} in the file, "
        f"{'x'.join(map(str, expected[k].shape)) or 'scalar'} in the network)"
        for k in expected
        if k in tensors and tensors[k].shape != expected[k].shape
    ]
    if missing or unexpected or reshaped:
        lines = [f"--weights {path} does not fit {compiled.network} of {compiled.spec}:"]
        if missing:
            lines.append(f"  {len(missing)} missing key{'s' * (len(missing) > 1)}: {_names(missing)}")
        if unexpected:
            lines.append(f"  {len(unexpected)} unexpected key{'s' * (len(unexpected) > 1)}: {_names(unexpected)}")
        if reshaped:
            lines.append(f"  {len(reshaped)} tensor{'s' * (len(reshaped) > 1)} of another shape: {_names(reshaped)}")
        if differences:
            lines.append("  (" + "; ".join(differences) + ")")
            lines.append("  compile the spec and --set values the run was trained with")
        else:
            lines.append("  give the weights of a network trained from this spec with these --set values")
        raise WeightsError("\n".join(lines))
    # Copy into the module's own tensors: its dtype and device stay as built.
    module.load_state_dict(tensors, strict=True)
    warnings = []
    if differences:
        warnings.append(
            f"--weights {run}: " + "; ".join(differences) + "; the weights fit this network's names and shapes "
            "and are loaded, but check that it is the network they were trained for"
        )
    return Loaded(tensors, path, warnings)
