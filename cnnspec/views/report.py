"""The report of a checked network as a pydantic model: the boundary of `check --json` and its schema.

The data comes from cnnspec.views.rows (plain records, which the text summary
reads directly); this module adds the model, its validation and its JSON schema.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, computed_field

from cnnspec.analysis import Analysis
from cnnspec.diagnostics import Diagnostic
from cnnspec.ir import Graph
from cnnspec.views.rows import (
    ACTIVATION_CONVENTION,
    MAC_CONVENTION,
    AuxRow,
    FoldRow,
    GroupRow,
    InitRow,
    LayerRow,
    ReportData,
    StageRow,
    TableRow,
)
from cnnspec.views.summary import format_report


class Report(BaseModel):
    """What `cnnspec check` knows about a network without running it.

    The totals are fields; the rows (layers, groups, folds, stages, aux
    outputs, the table) are computed fields built from the checked graph on
    first use and kept: every figure in them comes from the passes (each
    run when first read), and a caller that wants only the totals does not
    pay for 500 row objects. They serialise in this order,
    after the fields, like any field.
    """

    # The schema (report_schema) requires every field, since the dump always has them all, defaults included.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    network: str
    params: dict[str, object]
    input_shape: list[int]
    output_shape: list[int]
    total_params: int
    trainable_params: int
    buffers: int
    param_bytes_fp32: int
    param_bytes_bf16: int
    macs: int
    flops: int
    mac_convention: str = MAC_CONVENTION
    batch: int = 1
    activation_bytes: int = 0
    activation_convention: str = ACTIVATION_CONVENTION
    _data: ReportData = PrivateAttr()

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def layers(self) -> list[LayerRow]:
        """One row per layer and join, in topological order."""
        return self._data.layers

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def groups(self) -> list[GroupRow]:
        """Block instances and named groups, with the totals of the layers inside."""
        return self._data.groups

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def folds(self) -> list[FoldRow]:
        """Runs of identical (or channels-only different) block instances shown as one."""
        return self._data.folds

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def stages(self) -> list[StageRow]:
        """Runs of consecutive layers at one spatial resolution."""
        return self._data.stages

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def aux_outputs(self) -> list[AuxRow]:
        """Auxiliary outputs in declaration order; their heads' parameters and MACs are in the totals."""
        return self._data.aux_outputs

    @computed_field  # type: ignore[prop-decorator]
    @property
    def aux_params(self) -> int:
        """The part of total_params that lies in aux heads (used in training only)."""
        return self._data.aux_params

    @computed_field  # type: ignore[prop-decorator]
    @property
    def aux_macs(self) -> int:
        """The part of macs that lies in aux heads."""
        return self._data.aux_macs

    @computed_field  # type: ignore[prop-decorator]
    @property
    def depth(self) -> int | None:
        """How many levels of groups the table opens (None: all)."""
        return self._data.depth

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expanded(self) -> bool:
        """Whether the table shows every instance of a fold."""
        return self._data.expanded

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def table(self) -> list[TableRow]:
        """The summary table's rows as shown at `depth`."""
        return self._data.table

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def init_rules(self) -> list[InitRow]:
        """The network's `init` rules in the order applied, with the layers each selects."""
        return self._data.init_rules

    @computed_field  # type: ignore[prop-decorator]
    @property
    def warnings(self) -> list[dict[str, object]]:
        """The checker's warnings, as --diagnostics json gives them."""
        return self._data.warnings

    def __eq__(self, other: object) -> bool:
        """Reports are equal when their data is (pydantic's own __eq__ would also compare the
        private source of the rows, which two checks of one spec do not share)."""
        if not isinstance(other, Report):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  # mutable, like any pydantic model

    @property
    def summary(self) -> str:
        """The human-readable table."""
        return format_report(self._data)


def report_schema() -> dict[str, Any]:
    """The JSON schema of `cnnspec check --json`: the Report as it serialises, rows included."""
    return Report.model_json_schema(mode="serialization")


def build_report(
    graph: Graph,
    analysis: Analysis,
    warnings: list[Diagnostic] | None = None,
    *,
    depth: int | None = -1,
    expand: bool = False,
    batch: int = 1,
) -> Report:
    """Assemble the report from the graph and the pass results (see ReportData for the arguments)."""
    data = ReportData(graph, analysis, warnings, depth=depth, expand=expand, batch=batch)
    report = Report.model_validate(data, from_attributes=True)
    report._data = data
    return report
