"""One small status type shared by metrics and plots."""

from __future__ import annotations

import dataclasses
from typing import Any

STATUSES = ("success", "disabled", "skipped", "failed")


@dataclasses.dataclass(frozen=True)
class Status:
    """Outcome of one metric or plot: success, disabled (off by config), skipped (preconditions unmet) or failed."""

    status: str
    value: Any = None
    reason: str | None = None

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @classmethod
    def success(cls, value: Any = None) -> "Status":
        return cls("success", value)

    @classmethod
    def disabled(cls, reason: str) -> "Status":
        return cls("disabled", None, reason)

    @classmethod
    def skipped(cls, reason: str) -> "Status":
        return cls("skipped", None, reason)

    @classmethod
    def failed(cls, reason: str) -> "Status":
        return cls("failed", None, reason)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def to_dict(self) -> dict:
        return {"value": self.value, "status": self.status, "reason": self.reason}
