"""Pipeline stages: a compiled network cut into consecutive GraphModules over its original module paths.

The whole network is compiled once (so initial weights equal a one-process
run's with the same seed); each stage is then a GraphModule holding only
that stage's fx nodes and the submodules they call, under the same paths, so
a stage's state_dict is a subset of the whole model's with the same keys.
`torch.fx.passes.split_module` would rename the modules (``layer3_conv1``) and
``SplitPoint`` on a container name silently gives one stage, so neither is used.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnnspec.train.errors import TrainError

if TYPE_CHECKING:
    import torch
    import torch.fx

    from cnnspec.api import Checked
    from cnnspec.ir import Graph
    from cnnspec.train.config import TrainConfig

#: The pipeline schedules `--pipeline-schedule` (or `--schedule` with --pipeline) accepts.
SCHEDULES = ("gpipe", "1f1b", "interleaved")


class StageError(TrainError):
    """Cut points that do not split the network into stages (not legal cuts, or in the wrong order)."""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its module, and the shape (batch excluded) of what it reads and returns."""

    index: int
    module: torch.fx.GraphModule
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def aux_refusal(graph: Graph) -> str:
    """Why a network with auxiliary outputs cannot be cut into a pipeline (the launcher's and split's message)."""
    return (
        f"{graph.network} has auxiliary outputs ({', '.join(a.name for a in graph.aux)}); "
        "a pipeline cannot train them yet: train it without --pipeline"
    )


def check_cuts(graph: Graph, cuts: Sequence[int]) -> None:
    """Raise StageError unless cuts are increasing legal cut points that leave every stage a layer."""
    legal = set(graph.cut_points())
    last = len(graph.nodes) - 1
    previous = 0
    for c in cuts:
        if c not in legal:
            crossing = sorted({u for u in range(c + 1) for w in graph.g.successors(u) if w > c})
            raise StageError(
                f"cannot cut {graph.network} after node {c} ({graph.nodes[c].path if 0 <= c <= last else '?'}): "
                f"{len(crossing)} tensors cross there; legal cuts: {sorted(legal - {0, last})}"
            )
        if c <= previous or c >= graph.output:
            raise StageError(f"the cuts {list(cuts)} leave a stage of {graph.network} without layers")
        previous = c


def _ir_ids(gm: torch.fx.GraphModule, graph: Graph) -> dict[torch.fx.Node, int]:
    """The IR node id each fx node computes (part of): the input 0, a join's partial sums their join's."""
    by_path = {n.path: n.id for n in graph.nodes}
    ids: dict[torch.fx.Node, int] = {}
    following = len(graph.nodes)  # the output node belongs to the last stage
    # The partial sums of `add { a; b; c }` carry no path and come just before their join: walk backwards.
    for node in reversed(list(gm.graph.nodes)):
        if node.op == "placeholder":
            ids[node] = 0
            continue
        path = node.meta.get("cnnspec_path")
        if path is not None:
            following = by_path[path]
        ids[node] = following
    return ids


def split(gm: torch.fx.GraphModule, graph: Graph, cuts: Sequence[int], float_boundaries: bool = False) -> list[Stage]:
    """The stages of gm (compiled from graph) cut after each IR node id in cuts.

    Each stage's GraphModule shares its submodules (and so its parameters)
    with gm, under the same module paths. float_boundaries: every stage but
    the last returns float32, whatever autocast computed it in, so that what
    it sends has the dtype the next stage's receive buffer was made with.
    """
    import torch.fx

    if graph.aux:
        raise StageError(aux_refusal(graph))
    check_cuts(graph, cuts)
    ids = _ir_ids(gm, graph)
    value_of = {ids[n]: n for n in gm.graph.nodes if n.op != "output" and n.meta.get("cnnspec_path") is not None}
    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    value_of[0] = placeholder
    for c in cuts:  # a node that lowers to no fx node (a cut marker) hands on its input
        at = c
        while at not in value_of:
            at = graph.nodes[at].inputs[0]
        value_of[c] = value_of[at]
    output = next(n for n in gm.graph.nodes if n.op == "output")
    bounds = [0, *cuts, len(graph.nodes)]
    stages: list[Stage] = []
    for s in range(len(bounds) - 1):
        lo, hi = bounds[s], bounds[s + 1]
        g = torch.fx.Graph()
        entry = value_of[lo]
        env: dict[torch.fx.Node, torch.fx.Node] = {entry: g.placeholder("x" if s == 0 else f"{entry.name}_in")}
        for node in gm.graph.nodes:
            if node.op in ("placeholder", "output") or not lo < ids[node] <= hi:
                continue
            try:
                env[node] = g.node_copy(node, env.__getitem__)
            except KeyError:  # check_cuts makes this unreachable: every input is this stage's or the entry
                raise StageError(f"node {node.name} of {graph.network} reads a tensor of an earlier stage") from None
        if hi < len(graph.nodes):
            result = env[value_of[hi]]
            if float_boundaries:
                result = g.call_method("float", (result,))
        else:
            result = torch.fx.map_arg(output.args[0], env.__getitem__)
        g.output(result)
        if s > 0:
            _not_in_place(g, env[entry], gm)
        g.lint()
        module = torch.fx.GraphModule(gm, g, class_name=f"{type(gm).__name__}Stage{s}")
        module.train(gm.training)
        stages.append(
            Stage(
                index=s,
                module=module,
                in_shape=tuple(graph.nodes[lo].out_shape),
                out_shape=tuple(graph.nodes[min(hi, graph.output)].out_shape),
            )
        )
    return stages


#: In-place joins and their out-of-place forms (the layer table's inplace_function values).
_OUT_OF_PLACE = {operator.iadd: operator.add, operator.imul: operator.mul}


def _not_in_place(g: torch.fx.Graph, received: torch.fx.Node, gm: torch.fx.GraphModule) -> None:
    """Make the nodes that read a later stage's input leave it unchanged.

    The whole network may run a ReLU or a residual sum in place on a tensor
    nothing else needs, but a stage's input is an autograd leaf that requires
    grad (the pipeline sends its gradient back), which must not be overwritten.
    """
    for user in list(received.users):
        if user.op == "call_module" and user.args and user.args[0] is received:
            module = gm.get_submodule(str(user.target))
            if getattr(module, "inplace", False):
                module.inplace = False  # the module belongs to this stage alone; no tensor state changes
        elif user.op == "call_function" and user.args and user.args[0] is received and user.target in _OUT_OF_PLACE:
            user.target = _OUT_OF_PLACE[user.target]


def example_input(stage: Stage, batch: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The tensor a PipelineStage is built from: a later stage's input must require grad.

    PipelineStage takes requires_grad of its received activations from this
    example; without it the stage computes no gradient for its input and the
    earlier stages train on zero gradients, with no error.
    """
    import torch

    x = torch.empty((batch, *stage.in_shape), dtype=dtype, device=device)
    return x.requires_grad_(stage.index > 0)


def example_output(stage: Stage, batch: int, dtype: torch.dtype, device: torch.device, last: bool) -> torch.Tensor:
    """The example of what stage returns (it carries gradient back unless it is the last)."""
    import torch

    y = torch.empty((batch, *stage.out_shape), dtype=dtype, device=device)
    return y.requires_grad_(not last)


def check_stage_inputs(pipe_stage: object) -> None:
    """Raise TrainError if a PipelineStage after the first would not send its input's gradient back."""
    index = getattr(pipe_stage, "stage_index", 0)
    meta = getattr(getattr(pipe_stage, "_user_meta", None), "inputs", None)
    if index > 0 and meta is not None and not all(getattr(m, "requires_grad", True) for m in meta):
        raise TrainError(
            f"pipeline stage {index}'s input does not require grad: the earlier stages would train on zero "
            "gradients (an internal error in cnnspec's pipeline)"
        )


def owner(stage: int, pp: int) -> int:
    """The pipeline rank that runs stage: stage i on rank i % pp (one stage a rank, or looped: interleaved)."""
    return stage % pp


@dataclass(frozen=True)
class Layout:
    """How a pipeline run spreads over the world: stages, pipeline ranks, data-parallel replicas."""

    stages: int
    stages_per_rank: int
    pp: int  # pipeline ranks (stages / stages_per_rank)
    dp: int  # data-parallel replicas (world / pp)
    microbatches: int = 1  # micro-batches each pipeline's batch is split into (--shard: 1)

    def describe(self) -> str:
        """One line for the run's log."""
        if self.stages == 1:
            return f"sharded data parallel over {self.dp} workers (fully_shard)"
        per = f", {self.stages_per_rank} stages per rank" if self.stages_per_rank > 1 else ""
        return f"pipeline {self.stages} stages on {self.pp} ranks{per} x data parallel {self.dp}"


#: The options only a pipeline reads, with the values a run without --pipeline has (a saved config of
#: an older version holds microbatches 1).
_PIPELINE_ONLY = {
    "microbatches": (None, 1),
    "stages_per_rank": (None,),
    "balance": ("macs",),
    "pipeline_schedule": ("1f1b",),
}


def check_pipeline_only(config: TrainConfig) -> None:
    """Raise UsageError if config sets an option only a pipeline reads, without --pipeline (it would be ignored)."""
    from cnnspec.train.errors import UsageError

    if config.pipeline is not None:
        return
    given = [name for name, unset in _PIPELINE_ONLY.items() if getattr(config, name) not in unset]
    if given:
        flags = ", ".join(f"--{name.replace('_', '-')} {getattr(config, name)}" for name in given)
        hint = "; with --shard use --accum-steps" if config.shard and "microbatches" in given else ""
        these, they, them = ("these", "they", "them") if len(given) > 1 else ("this", "it", "it")
        raise UsageError(f"{flags}: only a pipeline reads {these}, and without --pipeline {they} would be ignored; "
                         f"give --pipeline N or leave {them} out{hint}")  # fmt: skip


def layout(config: TrainConfig, world: int) -> Layout:
    """The layout config asks for on world workers, or UsageError saying which option does not fit.

    Checked before any worker starts (the launcher) and again by every
    worker, so a bad combination never gets as far as a process group.
    """
    from cnnspec.train.errors import UsageError

    if config.shard:
        if config.pipeline is not None:
            raise UsageError("--shard and --pipeline do not combine: a pipeline already shards each stage over "
                             "its data-parallel replicas; leave out --shard")  # fmt: skip
        check_pipeline_only(config)
        if world < 2:
            raise UsageError(f"--shard shards over the workers and needs 2 or more, got {world}; start them "
                             "with --nproc-per-node (or torchrun)")  # fmt: skip
        return Layout(stages=1, stages_per_rank=1, pp=1, dp=world)
    stages = config.pipeline
    assert stages is not None
    schedule = config.pipeline_schedule
    per = config.stages_per_rank
    if per is None:
        per = 2 if schedule == "interleaved" else 1
    if schedule == "interleaved" and per < 2:
        raise UsageError(
            f"--schedule interleaved runs several stages on each pipeline rank, but --stages-per-rank is {per}; "
            "give 2 or more (or use --schedule 1f1b or gpipe for one stage a rank)"
        )
    if schedule != "interleaved" and per != 1:
        raise UsageError(
            f"--schedule {schedule} runs one stage on each rank; --stages-per-rank {per} needs --schedule interleaved"
        )
    if stages < 2:
        raise UsageError(f"--pipeline {stages}: a pipeline needs at least 2 stages")
    if stages % per:
        raise UsageError(f"--pipeline {stages} stages do not divide into {per} stages per rank")
    pp = stages // per
    if pp < 2:
        raise UsageError(
            f"--pipeline {stages} with {per} stages per rank puts every stage on one rank; "
            f"give --pipeline {2 * per} or more"
        )
    if world < pp:
        raise UsageError(
            f"--pipeline {stages} needs {pp} workers or more, got {world}; start them with "
            f"--nproc-per-node {pp} (or torchrun)"
        )
    if world % pp:
        raise UsageError(
            f"{world} workers do not divide into pipelines of {pp} ranks (--pipeline {stages}"
            f"{f' / --stages-per-rank {per}' if per > 1 else ''}); use a world size that is a multiple of {pp}"
        )
    micro = _microbatches(config, schedule, stages, pp)
    return Layout(stages=stages, stages_per_rank=per, pp=pp, dp=world // pp, microbatches=micro)


def least_microbatches(schedule: str, pp: int) -> int:
    """The fewest micro-batches a step of schedule over pp pipeline ranks accepts.

    torch's Schedule1F1B refuses fewer micro-batches than stages (one a rank);
    interleaved is held to multiples of the ranks (torch accepts a few more
    counts, whose rounds it fills unevenly); GPipe takes any number.
    """
    return pp if schedule in ("1f1b", "interleaved") else 1


def _microbatches(config: TrainConfig, schedule: str, stages: int, pp: int) -> int:
    """The micro-batches a pipeline step is split into: --microbatches checked, or the default chosen.

    Not given, it is one a pipeline rank (so the ranks overlap, and the
    fewest 1F1B accepts), raised to the next count that divides --batch-size.
    """
    from cnnspec.train.errors import UsageError

    batch = config.batch_size
    least = least_microbatches(schedule, pp)
    micro = config.microbatches
    if micro is None:
        # A multiple of pp dividing the batch suits every schedule (interleaved needs the multiple).
        fits = [m for m in range(pp, batch + 1) if batch % m == 0 and (schedule != "interleaved" or m % pp == 0)]
        if not fits:
            raise UsageError(
                f"--pipeline {stages} splits --batch-size into {pp} micro-batches or more (one a pipeline rank), "
                f"which --batch-size {batch} cannot be; use a batch size that is a multiple of {pp}"
            )
        return fits[0]
    if micro < least:
        raise UsageError(
            f"--schedule {schedule} over {pp} pipeline ranks needs --microbatches {least} or more, got {micro}"
        )
    if batch % micro:
        raise UsageError(
            f"--microbatches {micro} does not divide --batch-size {batch} (the images each pipeline takes "
            f"per step); use a batch size that is a multiple of {micro}"
        )
    if schedule == "interleaved" and micro % pp:
        raise UsageError(
            f"--schedule interleaved needs --microbatches a multiple of the {pp} pipeline ranks, got {micro}"
        )
    return micro


def plan_cuts(checked: Checked, config: TrainConfig) -> tuple[int, ...]:
    """The planner's cuts for config's --pipeline and --balance; UsageError with the planner's message
    (rendered over the spec, with a caret, where a cut marker is at fault)."""
    from cnnspec.analysis.pipeline import PipelineError, plan_pipeline
    from cnnspec.train.errors import UsageError

    stages = config.pipeline
    assert stages is not None
    try:
        plan = plan_pipeline(checked.graph, stages, balance=config.balance, batch=1, analysis=checked.analysis)
    except PipelineError as exc:
        if exc.span is not None:
            raise UsageError(exc.spec_error(checked.program.sources).render().rstrip()) from None
        hint = f"; {exc.help}" if exc.help else ""
        raise UsageError(f"--pipeline {stages}: {exc.message}{hint}") from None
    return tuple(plan.cuts)
