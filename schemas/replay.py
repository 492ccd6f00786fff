"""What `handoff replay-check` found: per handoff, how many recorded runs replayed on the current code, and which did
not, with the first line of why. `--json` prints a `ReplayCheck`."""

from __future__ import annotations

from pydantic import BaseModel, Field, computed_field


class ReplayFailure(BaseModel):
    """One run whose history the current code does not reproduce: deploying it would break this run."""

    workflow_id: str = Field(description="The run's workflow id; for a saved history, the file's name without .json.")
    run_id: str = Field(default="", description="The run's id, from the history's start event.")
    error_type: str = Field(description="The replay's exception, e.g. NondeterminismError.")
    error: str = Field(description="The first line of the replay's error.")
    detail: str = Field(default="", description="The replay's whole error message.")


class HandoffReplay(BaseModel):
    """One handoff (workflow type): how many histories were replayed, and the ones that failed."""

    handoff: str
    replayed: int = Field(default=0, ge=0, description="Histories replayed, the failed ones included.")
    failures: list[ReplayFailure] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return len(self.failures)


class ReplayCheck(BaseModel):
    """The whole check: where the histories came from, and each handoff's result, the app's handoffs first."""

    source: str = Field(description="Where the histories came from: a Temporal namespace or a folder.")
    handoffs: list[HandoffReplay] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def replayed(self) -> int:
        return sum(handoff.replayed for handoff in self.handoffs)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def failed(self) -> int:
        return sum(handoff.failed for handoff in self.handoffs)
