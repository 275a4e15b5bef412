"""The training configuration: one pydantic model, readable from TOML or YAML.

Values are resolved in this order, later winning: field defaults, the config
saved in the run directory (when resuming), a ``--config`` file, and finally
options given on the command line or as keyword arguments to the API.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cnnspec.commands.common import UsageError as CommandUsageError
from cnnspec.commands.common import parse_set_value
from cnnspec.train.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, packaged as tomli
    import tomli as tomllib

ParamValue = bool | int | float | str

CONFIG_FILENAME = "config.yaml"


#: The data sources, in words (--data's help, the error when it is missing).
DATA_CHOICES = (
    "digits (scikit-learn's 8x8 digits, no download), imagefolder:PATH (train/ and val/ class folders) "
    "or synthetic[:N] (N random images)"
)


class TrainConfig(BaseModel):
    """Everything that decides how a network is trained."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # What to train.
    spec: str | None = Field(None, description="path of the .cnn spec (set by the CLI/API)")
    network: str | None = Field(None, description="network to build when the spec holds several")
    params: dict[str, ParamValue] = Field(
        default_factory=dict, description="network parameters as plain values (Python API), e.g. num_classes=10"
    )
    path: list[str] = Field(
        default_factory=list, description="directories to look for the spec's imports in (--path DIR, repeatable)"
    )
    sets: dict[str, str] = Field(
        default_factory=dict,
        description="network parameters as spec expressions (--set NAME=VALUE), e.g. layers: '[1, 1, 1, 1]'",
    )

    # Data.
    data: str = Field(
        "digits", description="digits | imagefolder:PATH | synthetic[:N] (N training images)"
    )
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="digits: share kept for validation")
    data_seed: int = Field(0, description="seed of the fixed train/validation split")
    num_workers: int | None = Field(
        None, ge=0, description="loading processes per worker for image folders (in-memory sets: none)"
    )
    # The device path is not the default yet: its GPU figures (issue 26) have not been measured.
    image_pipeline: Literal["auto", "device", "workers"] = Field(
        "workers",
        description="image folders: decode and augment in the loading processes, or on the device (auto: on CUDA)",
    )
    skip_bad_images: bool = Field(
        False, description="image folders: leave out files that cannot be read as images (counted) instead of stopping"
    )

    # Length and batch.
    epochs: int = Field(20, ge=1, description="epochs of the whole schedule")
    stop_after: int | None = Field(
        None, ge=1, description="stop after this many epochs in total (resume later with --resume)"
    )
    batch_size: int = Field(64, ge=1, description="images per device per micro-batch")
    accum_steps: int = Field(1, ge=1, description="micro-batches accumulated per optimizer step")
    seed: int = Field(0, description="seed of initialisation and data order")

    # Optimisation.
    optimizer: Literal["sgd", "adamw"] = "sgd"
    base_lr: float = Field(0.1, gt=0.0, description="learning rate at base_batch images per step")
    base_batch: int = Field(256, ge=1, description="global batch for which base_lr is meant")
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(5e-4, ge=0.0, description="applied to weights, never to norms/biases")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    clip_grad_norm: float | None = Field(None, gt=0.0, description="clip the global gradient norm")

    # Learning-rate schedule.
    warmup_epochs: float = Field(1.0, ge=0.0, description="linear warmup length in epochs")
    warmup_steps: int | None = Field(None, ge=0, description="warmup in steps (wins over epochs)")
    schedule: Literal["cosine", "step", "multistep", "constant"] = "cosine"
    min_lr: float = Field(0.0, ge=0.0, description="cosine: the final learning rate")
    step_size: int = Field(30, ge=1, description="step: epochs between decays")
    milestones: list[int] = Field(default_factory=lambda: [30, 60, 80], description="multistep: epochs")
    gamma: float = Field(0.1, gt=0.0, description="step/multistep: decay factor")

    # Precision and speed.
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = False
    compile: bool = Field(False, description="run the model through torch.compile")
    sync_bn: bool = Field(False, description="synchronise batch-norm statistics across workers")
    device: Literal["auto", "cpu", "cuda"] = "auto"

    # Pipeline (model) parallelism: docs/parallelism.md.
    pipeline: int | None = Field(
        None, ge=1, description="cut the network into N pipeline stages (model parallelism); "
        "the data-parallel degree is the rest of the world size"
    )
    microbatches: int | None = Field(
        None, ge=1, description="with --pipeline: micro-batches each --batch-size is split into "
        "(default: one per pipeline rank, the fewest 1F1B accepts, raised to a divisor of --batch-size)"
    )
    pipeline_schedule: Literal["gpipe", "1f1b", "interleaved"] = Field(
        "1f1b", description="with --pipeline: the pipeline schedule (also --schedule gpipe|1f1b|interleaved)"
    )
    stages_per_rank: int | None = Field(
        None, ge=1, description="with --pipeline: stages each pipeline rank runs (interleaved: 2 or more; default 2)"
    )
    balance: Literal["macs", "params", "memory"] = Field(
        "macs", description="with --pipeline: what the planner balances across stages"
    )
    shard: bool = Field(
        False, description="shard parameters, gradients and optimizer state over the workers (FSDP2) instead of DDP"
    )

    # Checkpoints and logging.
    keep_checkpoints: int = Field(3, ge=1, description="how many recent checkpoints to keep")
    checkpoint_every: int = Field(0, ge=0, description="also checkpoint every N steps (0: epoch ends only)")
    log_every: int = Field(10, ge=1, description="steps between progress updates")
    progress: Literal["auto", "on", "off"] = Field("auto", description="progress bar (auto: if a TTY)")
    tensorboard: bool = Field(False, description="also log to DIR/tb (needs tensorboard)")

    @field_validator("milestones")
    @classmethod
    def _sorted_milestones(cls, value: list[int]) -> list[int]:
        if sorted(value) != value or any(m < 1 for m in value):
            raise ValueError("milestones must be increasing positive epoch numbers")
        return value

    @field_validator("sets")
    @classmethod
    def _sets_are_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name.isidentifier():
                raise ValueError(f"{name!r} is not a parameter name")
            try:
                parse_set_value(name, text)
            except CommandUsageError as exc:
                raise ValueError(str(exc)) from None
        return value

    def network_params(self) -> dict[str, Any]:
        """The network's parameters: plain values and parsed --set expressions (these win)."""
        return {**self.params, **{name: parse_set_value(name, text) for name, text in self.sets.items()}}

    @field_validator("data")
    @classmethod
    def _data_source_known(cls, value: str) -> str:
        kind, _, arg = value.partition(":")
        if kind not in {"digits", "imagefolder", "synthetic"}:
            raise ValueError(f"unknown data source {value!r}; use digits, imagefolder:PATH or synthetic[:N]")
        if kind == "synthetic" and arg and not (arg.isdigit() and int(arg) > 0):
            raise ValueError(f"synthetic:N needs a positive whole number of images, got {arg!r}")
        return value


def field_names() -> list[str]:
    """Names of all config fields, in declaration order."""
    return list(TrainConfig.model_fields)


def _normalise_keys(raw: dict[str, Any]) -> dict[str, Any]:
    # Config files may spell options as on the command line (batch-size).
    return {str(k).replace("-", "_"): v for k, v in raw.items()}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or YAML (.yaml/.yml) file into a dict of config values.

    A ``[train]`` table (TOML) or ``train:`` mapping (YAML), if present, is used;
    otherwise the top level is.
    """
    path = Path(path)
    if not path.exists():
        raise UsageError(f"config file {str(path)!r} does not exist")
    if not path.is_file():
        raise UsageError(f"config file {str(path)!r} is not a regular file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".toml":
            raw: Any = tomllib.loads(text)
        elif path.suffix in {".yaml", ".yml"}:
            import yaml

            raw = yaml.safe_load(text) or {}
        else:
            raise UsageError(f"config file {str(path)!r}: use a .toml, .yaml or .yml file")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise UsageError(f"config file {str(path)!r} is not valid: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError and friends; yaml is imported lazily
        raise UsageError(f"config file {str(path)!r} is not valid: {exc}".replace("\n", " ")) from exc
    if not isinstance(raw, dict):
        raise UsageError(f"config file {str(path)!r} must hold a table of options")
    if isinstance(raw.get("train"), dict):
        raw = raw["train"]
    return _normalise_keys(raw)


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad option and why."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where.replace('_', '-')}: {msg}")
    return "invalid option " + "; ".join(parts)


def resolve(*layers: dict[str, Any]) -> TrainConfig:
    """Merge option layers (later wins; ``params`` and ``sets`` merge key by key) and validate.

    A network parameter lives in one of the two: a later layer that gives it in
    one takes it out of the other, so a --set on resume replaces a saved value.
    """
    merged: dict[str, Any] = {}
    by_kind: dict[str, dict[str, Any]] = {"params": {}, "sets": {}}
    for layer in layers:
        layer = _normalise_keys(layer)
        for kind, other in (("params", "sets"), ("sets", "params")):
            given = layer.get(kind) or {}
            if not isinstance(given, dict):
                raise UsageError(f"invalid option {kind}: expected a table of NAME = VALUE, got {given!r}")
            by_kind[kind].update(given)
            for name in given:
                by_kind[other].pop(name, None)
        merged.update({k: v for k, v in layer.items() if k not in by_kind})
    merged.update(by_kind)
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from exc


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config as YAML (atomically), so the run can be repeated."""
    import os

    import yaml

    text = "# resolved cnnspec training config; reused by --resume\n" + yaml.safe_dump(
        config.model_dump(mode="json"), sort_keys=False
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_saved_config(path: Path) -> dict[str, Any]:
    """Read a config written by :func:`save_config` as a dict of values."""
    return read_config_file(path)
