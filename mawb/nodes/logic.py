"""Logic node types: branching, looping, forking and joining paths."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mawb.nodes.base import Category, NodeType, Outputs, Params, shorten
from mawb.nodes.registry import register


class IfParams(Params):
    condition: str = Field("engagement_score > 0.5", min_length=1,
                           description="Condition over contact attributes and :params")


@register
class IfCondition(NodeType):
    type = "if_condition"
    category = Category.LOGIC
    label = "If / else"
    icon = "branch"
    help = "Send contacts down `true` when the condition holds, else down `false`."
    params_model = IfParams
    outputs = Outputs.BRANCHES
    fixed_branches = ("true", "false")
    condition_fields = ("condition",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, IfParams)
        return shorten(params.condition)


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="Branch name")
    condition: str = Field(min_length=1, description="Condition for this case")


class SwitchParams(Params):
    cases: list[Case] = Field(
        default_factory=lambda: [Case(name="case_1", condition="lifecycle = 'lead'")],
        min_length=1,
        description="Checked in order; the first match wins, else `default`",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> SwitchParams:
        names = [case.name for case in self.cases]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate case names {duplicates}")
        if "default" in names:
            raise ValueError("'default' is reserved for contacts matching no case")
        return self


@register
class SwitchCase(NodeType):
    type = "switch_case"
    category = Category.LOGIC
    label = "Switch"
    icon = "switch"
    help = "Route each contact down the first case whose condition matches, else `default`."
    params_model = SwitchParams
    outputs = Outputs.BRANCHES
    fixed_branches = ("default",)

    @classmethod
    def branches(cls, params: Params) -> tuple[str, ...]:
        assert isinstance(params, SwitchParams)
        return (*(case.name for case in params.cases), "default")

    @classmethod
    def conditions(cls, params: Params) -> dict[str, str]:
        assert isinstance(params, SwitchParams)
        return {f"cases.{i}.condition": case.condition for i, case in enumerate(params.cases)}

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, SwitchParams)
        return shorten(" | ".join(case.name for case in params.cases))


class LoopParams(Params):
    max_iterations: int = Field(3, ge=1, le=100, description="Body runs at most this many times")
    until: str | None = Field(None, description="Stop early once this condition holds")


@register
class LoopIterator(NodeType):
    type = "loop_iterator"
    category = Category.LOGIC
    label = "Loop"
    icon = "repeat"
    help = "Repeat the `body` path (which leads back here) up to N times or until a condition."
    params_model = LoopParams
    is_loop = True
    outputs = Outputs.BRANCHES
    fixed_branches = ("body", "done")
    condition_fields = ("until",)

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, LoopParams)
        until = f" until {params.until}" if params.until else ""
        return shorten(f"up to {params.max_iterations} times{until}")


class ParallelParams(Params):
    pass


@register
class ParallelExecution(NodeType):
    type = "parallel_execution"
    category = Category.LOGIC
    label = "Parallel"
    icon = "split"
    help = "Send each contact down every outgoing path at once."
    params_model = ParallelParams
    outputs = Outputs.FANOUT

    @classmethod
    def summary(cls, params: Params) -> str:
        return "all paths"


class MergeParams(Params):
    mode: Literal["all", "any"] = Field(
        "all", description="all: wait for every incoming path of the contact; any: first one"
    )


@register
class MergeBranches(NodeType):
    type = "merge_branches"
    category = Category.LOGIC
    label = "Merge"
    icon = "merge"
    help = "Join paths: continue when all (or any) of a contact's incoming paths arrived."
    params_model = MergeParams
    is_merge = True
    every_tick = True

    @classmethod
    def summary(cls, params: Params) -> str:
        assert isinstance(params, MergeParams)
        return f"wait for {params.mode}"
