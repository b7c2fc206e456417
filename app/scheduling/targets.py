"""Fan-out: a task's several webhooks, each with a state of its own (pure, no I/O).

A task with `webhook_urls` sends each occurrence to every one of them (at most
`MAX_TARGETS`); each target is its own delivery, with its own retries, log rows, health ladder
and Discord message. Retries spent on one target switch off that target only; the task stays
active while any target is, and becomes inactive ("every webhook is switched off") when none
is. The states live in the task's `targets` column, one JSON object per webhook, in the order
of `webhook_urls`. A one-webhook task has no `targets`: its own status and ladder are the
target's (target 0), as they always were.
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from app.domain import TaskStatus
from app.scheduling.ladder import HEALTHY, Ladder

MAX_TARGETS = 10


@dataclass(frozen=True, kw_only=True)
class TargetState:
    """One webhook of a fan-out task: on or off (and why, since when), its health ladder, and
    the Discord message it posted or edited last."""

    status: TaskStatus = TaskStatus.ACTIVE
    status_reason: str | None = None
    status_changed_at: datetime | None = None
    ladder: Ladder = HEALTHY
    discord_message_id: str | None = None

    @property
    def active(self) -> bool:
        return self.status is TaskStatus.ACTIVE

    def to_json(self) -> dict[str, Any]:
        """The stored form (datetimes as ISO 8601 strings)."""
        ladder = asdict(self.ladder)
        return {
            "status": self.status.value,
            "status_reason": self.status_reason,
            "status_changed_at": _iso(self.status_changed_at),
            "failures": ladder["failures"],
            "failing_since": _iso(ladder["failing_since"]),
            "resume_at": _iso(ladder["resume_at"]),
            "discord_message_id": self.discord_message_id,
        }

    @classmethod
    def from_json(cls, stored: Any) -> "TargetState":
        """The state from its stored form; anything missing or malformed reads as a default."""
        data = stored if isinstance(stored, dict) else {}
        ladder = Ladder(
            failures=int(data.get("failures") or 0),
            failing_since=_parse(data.get("failing_since")),
            resume_at=_parse(data.get("resume_at")),
        )
        status = TaskStatus.INACTIVE if data.get("status") == "inactive" else TaskStatus.ACTIVE
        return cls(
            status=status,
            status_reason=data.get("status_reason"),
            status_changed_at=_parse(data.get("status_changed_at")),
            ladder=ladder,
            discord_message_id=data.get("discord_message_id"),
        )


def fresh_targets(urls: list[str]) -> list[dict[str, Any]]:
    """The stored states of newly given webhooks: all on, healthy."""
    return [TargetState().to_json() for _ in urls]


def read_targets(stored: Any) -> list[TargetState]:
    """The stored states (an empty list for a one-webhook task)."""
    return [TargetState.from_json(item) for item in stored] if isinstance(stored, list) else []


def target_url(webhook_url: str, webhook_urls: list[str] | None, target: int) -> str:
    """The URL of the task's `target`-th webhook (0 is `webhook_url` for one-webhook tasks)."""
    if webhook_urls and 0 <= target < len(webhook_urls):
        return webhook_urls[target]
    return webhook_url


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
