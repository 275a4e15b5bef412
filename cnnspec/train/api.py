"""The Python API: ``cnnspec.train(spec, data=..., out=..., **options)``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.train import rundir
from cnnspec.train.config import CONFIG_FILENAME, DATA_CHOICES, TrainConfig, read_config_file, resolve
from cnnspec.train.errors import UsageError

if TYPE_CHECKING:
    from torch import nn

    from cnnspec.train.loop import TrainResult


def resolve_config(
    spec: str | None,
    *,
    out: Path,
    plan: rundir.Plan,
    config: str | Path | None = None,
    options: dict[str, Any] | None = None,
) -> TrainConfig:
    """Merge defaults, the saved config (when resuming), a config file and explicit options."""
    layers: list[dict[str, Any]] = []
    saved = _saved_config(out) if plan.resume_from is not None else None
    if saved is not None:
        layers.append(saved)
    if config is not None:
        layers.append(read_config_file(config))
    explicit = {k: v for k, v in (options or {}).items() if v is not None}
    if spec is not None:
        explicit["spec"] = spec
    layers.append(explicit)
    if not any("data" in layer for layer in layers):
        # No default: a run that trains on the demo digits because --data was forgotten wastes
        # an afternoon and looks like it worked.
        raise UsageError(f"missing --data, the images to train on: {DATA_CHOICES}")
    cfg = resolve(*layers)
    if saved is not None:
        _same_run(saved, cfg, out)
    if plan.resume_from is not None and cfg.stop_after is not None and "stop_after" not in explicit:
        # --stop-after belongs to the invocation that gave it, not to the run.
        cfg.stop_after = None
    return cfg


#: The options that make a run what it is: a resumed run that changed one could not load its checkpoint.
_RUN_IDENTITY = ("network", "params", "sets", "optimizer")


def _same_run(saved: dict[str, Any], cfg: TrainConfig, out: Path) -> None:
    """Refuse to resume with options that change the network or the optimizer, naming each change."""
    changed = [
        f"{key}: the run has {saved.get(key)!r}, this invocation {getattr(cfg, key)!r}"
        for key in _RUN_IDENTITY
        if key in saved and saved[key] != getattr(cfg, key)
    ]
    if changed:
        raise UsageError(
            f"--resume: these options differ from the run in {out}: " + "; ".join(changed)
            + ". Resume with the run's own options, or start over with --force"
        )


def _saved_config(out: Path) -> dict[str, Any]:
    """The options a run saved in its config.yaml, which a resumed run must continue with."""
    saved = out / CONFIG_FILENAME
    values = read_config_file(saved) if saved.is_file() else {}
    if "epochs" not in values:  # every saved config holds every option: an empty one was damaged
        raise UsageError(
            f"--resume: {saved} is missing or emptied, so the run's options are lost; "
            "restore it, or pass every option again with --force to start over"
        )
    return values


def train(
    spec: str | Path | Callable[[], nn.Module] | None = None,
    *,
    data: str | None = None,
    out: str | Path,
    config: str | Path | None = None,
    network: str | None = None,
    params: dict[str, Any] | None = None,
    resume: bool = False,
    force: bool = False,
    input_shape: tuple[int, int, int] | None = None,
    **options: Any,
) -> TrainResult:
    """Train a network and write the run into ``out``; returns a :class:`TrainResult`.

    ``spec`` is a ``.cnn`` path or source text (compiled with ``cnnspec.compile``;
    ``network`` and ``params`` as there; the ``sets`` option takes parameters as
    spec text, as ``--set`` does), or a zero-argument factory returning
    any ``nn.Module`` classifier together with ``input_shape`` (C, H, W).
    ``data`` is ``"digits"``, ``"imagefolder:PATH"`` or ``"synthetic[:N]"``, required
    unless ``config`` or the resumed run gives it (UsageError otherwise);
    ``config`` a TOML/YAML file; ``options`` any :class:`TrainConfig` field
    (they win over the file). ``resume=True`` continues the run in ``out``;
    ``force=True`` starts over there. Under torchrun, call it on every worker.
    Raises :class:`cnnspec.train.errors.TrainError` (or a subclass) on bad input.
    """
    from cnnspec.train import loop

    cfg, source, out, plan = _prepare(spec, data=data, out=out, config=config, network=network, params=params,
                                      resume=resume, force=force, input_shape=input_shape, options=options)
    return loop.run(cfg, source, out, plan)


def check_launch(
    spec: str | Path | None,
    *,
    world: int,
    out: str | Path,
    config: str | Path | None = None,
    resume: bool = False,
    force: bool = False,
    **options: Any,
) -> None:
    """Refuse, before any worker starts, options a run of world workers cannot train with (UsageError).

    The launcher calls it: a pipeline that does not fit the world size or
    the network fails here with one message, not in every worker.
    """
    from cnnspec.train.errors import TrainError

    # Only a pipeline run is checked here: the others report their errors from the workers, as always.
    try:
        plan = rundir.plan(Path(out), resume=resume, force=force)
        spec_str = None if spec is None else str(spec)
        opts = dict(options)
        cfg = resolve_config(spec_str, out=Path(out), plan=plan, config=config, options=opts)
    except TrainError:
        return
    if cfg.pipeline is None and not cfg.shard:
        from cnnspec.train.pipeline import check_pipeline_only

        check_pipeline_only(cfg)
        return
    _prepare(spec, data=options.pop("data", None), out=out, config=config, network=options.pop("network", None),
             params=options.pop("params", None), resume=resume, force=force, input_shape=None, options=options,
             world=world)


def _prepare(
    spec: str | Path | Callable[[], nn.Module] | None,
    *,
    data: str | None,
    out: str | Path,
    config: str | Path | None,
    network: str | None,
    params: dict[str, Any] | None,
    resume: bool,
    force: bool,
    input_shape: tuple[int, int, int] | None,
    options: dict[str, Any],
    world: int | None = None,
) -> tuple[TrainConfig, Any, Path, rundir.Plan]:
    """The resolved config, model source, run directory and plan of a run, every input checked."""
    from cnnspec.train import faults, model

    out = Path(out)
    plan = rundir.plan(out, resume=resume, force=force)
    factory = spec if callable(spec) else None
    spec_str = None if factory is not None or spec is None else str(spec)
    opts = dict(options, data=data, network=network, params=params)
    cfg = resolve_config(spec_str, out=out, plan=plan, config=config, options=opts)
    try:
        faults.from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc

    if factory is not None:
        if input_shape is None:
            raise UsageError("a model factory needs input_shape=(C, H, W)")
        source = model.from_factory(factory, tuple(input_shape))
    else:
        spec_path = cfg.spec
        if spec_path is None or (plan.resume_from is not None and not Path(spec_path).is_file()):
            saved = out / rundir.SPEC_FILENAME
            if plan.resume_from is None or not saved.is_file():
                raise UsageError("no spec given: pass the .cnn file to train")
            spec_path = str(saved)
        source = model.from_spec(spec_path, cfg.network, cfg.network_params(), cfg.path)
        if "\n" in spec_path:  # source text, not a path: keep only the copy in out/
            cfg.spec = None
    if cfg.pipeline is not None or cfg.shard:
        _check_pipeline(cfg, source, world)
    else:
        from cnnspec.train.pipeline import check_pipeline_only

        check_pipeline_only(cfg)
    return cfg, source, out, plan


def _check_pipeline(cfg: TrainConfig, source: Any, world: int | None) -> None:
    """Refuse a --pipeline (or --shard) run that cannot work, naming the option (UsageError); world: the workers."""
    import os

    from cnnspec.train import pipeline

    if world is None:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    unsupported = {"compile": "--compile", "sync_bn": "--sync-bn"}
    for name, flag in unsupported.items():
        if getattr(cfg, name):
            raise UsageError(f"{flag} is not supported with {'--shard' if cfg.shard else '--pipeline'} yet; "
                             "leave it out")
    pipeline.layout(cfg, world)
    if cfg.shard:
        return
    if source.checked is None:
        raise UsageError("--pipeline needs a .cnn spec: a module factory has no graph to cut")
    checked = source.checked()
    if checked.graph.aux:
        raise UsageError(pipeline.aux_refusal(checked.graph))
    pipeline.plan_cuts(checked, cfg)
