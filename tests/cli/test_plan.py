"""The plan of `apply`, by itself: file tasks and server tasks in, changes out."""

import pytest

from app.cli.config_files import desired_task
from app.cli.plan import Action, Change, FieldChange, PlanError, plan

URL = "https://hooks.example.com/a"


def wanted(**fields) -> dict:
    """A file's task as `apply` reads it (defaults filled in)."""
    return desired_task({"name": "A", "schedule": "@daily", "webhook_url": URL} | fields)


def on_server(task_id: str, **fields) -> dict:
    """A server's task as GET /tasks shows it, with the API's defaults."""
    task = {
        "id": task_id,
        "name": "A",
        "schedule": "@daily",
        "run_at": None,
        "timezone": "UTC",
        "catchup": "latest",
        "webhook_url": URL,
        "payload": {},
        "max_retry": 3,
        "status": "active",
        "status_reason": None,
        "auto_resume": True,
        "resume_at": None,
        "template": False,
        "discord_mode": "post",
        "delete_after_seconds": None,
        "next_run_at": "2026-12-01T00:00:00Z",
        "created_at": "2026-11-01T00:00:00Z",
    }
    return task | fields


def test_new_names_are_created_with_every_field():
    [change] = plan([wanted(max_retry=5)], [])
    assert change.action == Action.CREATE
    assert change.task_id is None
    assert change.body["max_retry"] == 5
    assert change.body["catchup"] == "latest"  # defaults are sent too
    assert "status" not in change.body  # not given: the API's default


def test_the_same_task_is_unchanged():
    assert plan([wanted()], [on_server("1")]) == [Change(Action.UNCHANGED, "A", "1")]


def test_an_update_carries_only_the_changed_fields_with_their_old_values():
    server = on_server("1", payload={"content": "old"}, max_retry=5)
    [change] = plan([wanted(payload={"content": "new"})], [server])
    assert change.action == Action.UPDATE
    assert change.task_id == "1"
    assert change.body == {"payload": {"content": "new"}, "max_retry": 3}
    assert change.fields == (
        FieldChange("payload", {"content": "old"}, {"content": "new"}),
        FieldChange("max_retry", 5, 3),  # left out of the file: back to its default
    )


def test_status_is_compared_only_when_the_file_gives_it():
    deactivated = on_server("1", status="inactive", status_reason="deactivated after 4 failures")
    assert plan([wanted()], [deactivated])[0].action == Action.UNCHANGED
    [change] = plan([wanted(status="active")], [deactivated])
    assert change.body == {"status": "active"}
    assert plan([wanted(status="inactive")], [deactivated])[0].action == Action.UNCHANGED


def test_run_at_without_offset_is_read_in_the_tasks_timezone():
    file_task = wanted(schedule=None, run_at="2030-01-15T10:00:00", timezone="America/New_York")
    server = on_server(
        "1", schedule=None, run_at="2030-01-15T15:00:00Z", timezone="America/New_York"
    )
    assert plan([file_task], [server])[0].action == Action.UNCHANGED
    later = on_server(
        "1", schedule=None, run_at="2030-01-15T16:00:00Z", timezone="America/New_York"
    )
    [change] = plan([file_task], [later])
    assert change.body == {"run_at": "2030-01-15T10:00:00"}


def test_switching_a_recurring_task_to_one_time_sends_both_fields():
    [change] = plan([wanted(schedule=None, run_at="2030-01-01T00:00:00Z")], [on_server("1")])
    assert change.body == {"schedule": None, "run_at": "2030-01-01T00:00:00Z"}


def test_payloads_compare_as_json():
    server = on_server("1", payload={"b": 1, "a": [1.5, None]})
    assert plan([wanted(payload={"a": [1.5, None], "b": 1})], [server])[0].action == "unchanged"
    assert plan([wanted(payload={"a": [1.5, None], "b": True})], [server])[0].action == "update"


def test_tasks_not_in_the_file_are_kept_unless_pruned():
    server = [on_server("1"), on_server("2", name="B"), on_server("3", name="C")]
    assert [c.action for c in plan([wanted()], server)] == [Action.UNCHANGED]
    changes = plan([wanted()], server, prune=True)
    assert changes[1:] == [Change(Action.DELETE, "B", "2"), Change(Action.DELETE, "C", "3")]


def test_the_files_order_is_kept_and_deletions_come_last():
    server = [on_server("1", name="Old"), on_server("2", name="B", max_retry=7)]
    changes = plan([wanted(name="B"), wanted(name="A")], server, prune=True)
    assert [(c.action, c.name) for c in changes] == [
        (Action.UPDATE, "B"),
        (Action.CREATE, "A"),
        (Action.DELETE, "Old"),
    ]


def test_a_file_repeating_a_name_is_refused():
    with pytest.raises(PlanError) as refused:
        plan([wanted(), wanted(max_retry=1), wanted(name="B")], [])
    assert refused.value.problems == ['the file has 2 tasks named "A": names must be unique']


def test_a_name_several_server_tasks_share_is_refused_with_their_ids():
    server = [on_server("1"), on_server("2"), on_server("3", name="B"), on_server("4", name="B")]
    with pytest.raises(PlanError) as refused:
        plan([wanted()], server)
    [problem] = refused.value.problems
    assert problem.startswith('the server has 2 tasks named "A" (1, 2)')
    # Shared by tasks the file does not name: nothing to tell apart, pruning deletes them all.
    changes = plan([wanted(name="C")], server[2:], prune=True)
    assert [(c.action, c.task_id) for c in changes] == [
        (Action.CREATE, None),
        (Action.DELETE, "3"),
        (Action.DELETE, "4"),
    ]
