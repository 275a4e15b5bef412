"""``cnnspec train SPEC --data SOURCE --out DIR [options]``: the command line.

Every :class:`TrainConfig` field is an option (``batch_size`` is
``--batch-size``); only options actually given override the config file.
"""

from __future__ import annotations

import argparse
import os
import sys
import types
import typing
from typing import Any, NoReturn

from cnnspec.commands.common import UsageError as CommandUsageError
from cnnspec.commands.common import add_path_arg, add_set_arg, set_texts
from cnnspec.train.config import DATA_CHOICES, TrainConfig
from cnnspec.train.errors import Interrupted, NonFiniteLoss, TrainError, UsageError

PROG = "cnnspec train"
# spec is positional, sets come from --set, path from --path (repeatable), params from the API
_NOT_OPTIONS = {"spec", "params", "sets", "data", "path"}


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        if _rank() == 0:
            print(f"{PROG}: error: {message} (see {PROG} --help)", file=sys.stderr)
        raise SystemExit(2)


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _split(cast: type) -> typing.Callable[[str], list]:
    def parse(text: str) -> list:
        return [cast(part) for part in text.split(",") if part.strip()]

    parse.__name__ = f"comma-separated {cast.__name__}"
    return parse


def _optional_number(cast: type) -> typing.Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in {"none", "off"} else cast(text)

    parse.__name__ = cast.__name__
    return parse


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training options (also settable in --config)")
    for name, info in TrainConfig.model_fields.items():
        if name in _NOT_OPTIONS:
            continue
        flag = "--" + name.replace("_", "-")
        kw: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": name}
        help_text = info.description or ""
        default = info.get_default(call_default_factory=True)
        ann = info.annotation
        args = typing.get_args(ann)
        if ann is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(ann) is typing.Literal:
            kw["choices"] = list(args)
        elif typing.get_origin(ann) is list:
            kw["type"], kw["metavar"] = _split(args[0]), "A,B,..."
        elif typing.get_origin(ann) is tuple:
            kw["type"], kw["metavar"] = _split(args[0]), "A,B"
        elif typing.get_origin(ann) in (typing.Union, types.UnionType):
            inner = next(a for a in args if a is not type(None))
            kw["type"] = _optional_number(inner)
        else:
            kw["type"] = ann
        kw["help"] = f"{help_text} (default: {default})".strip()
        group.add_argument(flag, **kw)


def build_parser() -> argparse.ArgumentParser:
    """The ``cnnspec train`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Train a network described by a .cnn spec, on one or many workers (DDP).",
        epilog="Multi-worker: torchrun --nproc-per-node N -m cnnspec train ...; see docs/training.md.",
    )
    parser.add_argument("spec", nargs="?", help="the .cnn spec file (optional with --resume)")
    add_set_arg(parser)
    add_path_arg(parser)
    parser.add_argument("--data", default=argparse.SUPPRESS, metavar="SOURCE",
                        help=f"required, the images to train on: {DATA_CHOICES} (no default; "
                             "--config may give it, --resume takes the run's own)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="run directory (checkpoints, metrics, weights) (required)")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML or YAML file of options; command-line values win (default: none)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in DIR from its last checkpoint (default: off)")
    parser.add_argument("--force", action="store_true",
                        help="start over in DIR, deleting the previous run's files (default: off)")
    launch = parser.add_argument_group("launching workers on this machine")
    launch.add_argument("--nproc-per-node", type=int, metavar="N",
                        help="start N workers with torchrun's elastic launcher (single node) "
                             "(default: none, this process trains alone or as one of torchrun's workers)")
    launch.add_argument("--max-restarts", type=int, default=0, metavar="R",
                        help="with --nproc-per-node: restart failed workers up to R times (default: 0)")
    _add_config_options(parser)
    return parser


def _strip_launch_options(argv: list[str]) -> list[str]:
    """``argv`` without --nproc-per-node/--max-restarts (what each worker gets)."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--nproc-per-node", "--max-restarts"):
            skip = True
            continue
        if arg.startswith(("--nproc-per-node=", "--max-restarts=")):
            continue
        rest.append(arg)
    return rest


def _pipeline_schedule_alias(argv: list[str]) -> list[str]:
    """argv with ``--schedule gpipe|1f1b|interleaved`` spelled ``--pipeline-schedule``.

    --schedule names the learning-rate schedule; a pipeline schedule's names
    cannot be one, so the issue's spelling is taken as the pipeline's option.
    """
    from cnnspec.train.pipeline import SCHEDULES

    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--schedule" and i + 1 < len(argv) and argv[i + 1] in SCHEDULES:
            out.append("--pipeline-schedule")
        elif arg.startswith("--schedule=") and arg.partition("=")[2] in SCHEDULES:
            out.append("--pipeline-schedule=" + arg.partition("=")[2])
        else:
            out.append(arg)
    return out


def _check_launch(args: argparse.Namespace, argv: list[str]) -> None:
    """Refuse a pipeline that cannot run on --nproc-per-node workers before starting any of them."""
    from cnnspec.train.api import check_launch

    options = {k: v for k, v in vars(args).items()
               if k not in {"spec", "sets", "out", "config", "resume", "force", "nproc_per_node", "max_restarts",
                            "path"}}
    if args.path:
        options["path"] = [os.path.abspath(d) for d in args.path]
    sets = set_texts(args.sets)
    check_launch(args.spec, world=args.nproc_per_node, out=args.out, config=args.config, resume=args.resume,
                 force=args.force, sets=sets or None, **options)


def _report(exc: TrainError | CommandUsageError) -> None:
    rank = _rank()
    # Usage errors and agreed stops happen identically on every worker: say them once.
    if rank == 0:
        print(f"{PROG}: error: {exc}" if "\n" not in str(exc) else str(exc), file=sys.stderr)
    elif not isinstance(exc, CommandUsageError | NonFiniteLoss | Interrupted):
        print(f"[rank {rank}] {PROG}: error: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``cnnspec train`` with ``argv`` (the arguments after ``train``); returns the exit status."""
    argv = _pipeline_schedule_alias(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)

    if args.nproc_per_node is not None:
        from cnnspec.train.launch import launch

        if args.nproc_per_node < 1:
            parser.error("--nproc-per-node must be at least 1")
        try:
            _check_launch(args, argv)
        except (TrainError, CommandUsageError) as exc:
            _report(exc)
            return exc.exit_code
        return launch(_strip_launch_options(argv), nproc_per_node=args.nproc_per_node,
                      max_restarts=args.max_restarts)

    options = {k: v for k, v in vars(args).items()
               if k not in {"spec", "sets", "out", "config", "resume", "force", "nproc_per_node", "max_restarts"}}
    if args.path:  # absolute: config.yaml keeps it, and --resume may run from another directory
        options["path"] = [os.path.abspath(d) for d in args.path]
    else:
        del options["path"]  # not given: a resumed run keeps its own
    try:
        # The same parser and usage error as `cnnspec check --set`; the texts are kept for config.yaml.
        sets = set_texts(args.sets)
        if args.spec is None and not args.resume:
            raise UsageError("missing the .cnn spec to train (e.g. cnnspec train specs/lenet5.cnn ...)")
        from cnnspec.train.api import train

        train(args.spec, out=args.out, config=args.config, resume=args.resume, force=args.force,
              sets=sets or None, **options)
    except (TrainError, CommandUsageError) as exc:
        _report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
