"""Fan-out target states: stored as JSON, read back whatever the column holds."""

from datetime import UTC, datetime

import pytest

from app.domain import TaskStatus
from app.scheduling.ladder import Ladder
from app.scheduling.targets import TargetState, fresh_targets, read_targets, target_url

AT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_a_state_survives_its_stored_form():
    state = TargetState(
        status=TaskStatus.INACTIVE,
        status_reason="deactivated after 2 failed attempts: HTTP 500",
        status_changed_at=AT,
        ladder=Ladder(failures=2, failing_since=AT, resume_at=AT),
        discord_message_id="1300000000000000001",
    )
    assert TargetState.from_json(state.to_json()) == state


def test_new_webhooks_start_on_and_healthy():
    assert read_targets(fresh_targets(["https://a", "https://b"])) == [TargetState()] * 2


@pytest.mark.parametrize(
    "stored",
    [None, "garbage", [None], [{"status": 7, "failures": None, "resume_at": "not a date"}]],
)
def test_malformed_stored_states_read_as_defaults(stored):
    states = read_targets(stored)
    assert all(state == TargetState() for state in states)


def test_the_url_of_a_target():
    assert target_url("https://one", None, 0) == "https://one"
    assert target_url("https://a", ["https://a", "https://b"], 1) == "https://b"
    assert target_url("https://a", ["https://a"], 5) == "https://a"
