"""The task form and the log filters: inputs to the API's fields, errors by the API's field
names, previews; and where a sign-in may send the browser next."""

import uuid
from datetime import UTC, datetime

import pytest

from app.schemas import TaskCreate, TaskUpdate
from app.ui import forms
from app.ui.render import query_string, safe_next

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def values(**changes: str) -> dict[str, str]:
    base = forms.blank_values() | {"name": "Stand-up", "webhook_url": "https://hooks.example.com/x"}
    return base | changes


def test_a_recurring_form_is_a_task_with_a_schedule():
    data, errors = forms.parse(TaskCreate, values(timezone="Europe/Paris"), creating=True)
    assert errors == {}
    assert data.schedule == "0 9 * * MON-FRI" and data.run_at is None
    assert data.timezone == "Europe/Paris"
    assert data.payload == {"content": "Good morning!"}
    assert data.max_retry == 3 and data.auto_resume is True and data.template is False


def test_a_one_time_form_drops_the_schedule():
    data, errors = forms.parse(
        TaskCreate, values(kind="once", run_at="2027-01-15T10:00"), creating=True
    )
    assert errors == {}
    assert data.schedule is None and data.run_at == datetime(2027, 1, 15, 10, 0)


def test_unchecked_boxes_are_false():
    submitted = forms.submitted_values({"name": "x", "template": "on"})
    assert submitted["template"] == "on" and submitted["auto_resume"] == ""


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"schedule": "every day"}, "schedule", "expected 5 fields"),
        ({"name": ""}, "name", "at least 1 character"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown timezone"),
        ({"webhook_url": "ftp://x"}, "webhook_url", "only http and https"),
        ({"max_retry": "99"}, "max_retry", "less than or equal to 20"),
        ({"payload": "{not json"}, "payload", "not valid JSON"),
        ({"payload": "[1, 2]"}, "payload", "must be a JSON object"),
        ({"kind": "once", "run_at": "2027-13-01T10:00"}, "run_at", "month"),
    ],
)
def test_errors_carry_the_api_field_names(changes: dict, field: str, words: str):
    data, errors = forms.parse(TaskCreate, values(**changes), creating=True)
    assert data is None
    assert words in errors[field]


def test_every_wrong_field_is_reported_at_once():
    _, errors = forms.parse(
        TaskCreate, values(name="", schedule="nope", payload="{"), creating=True
    )
    assert set(errors) == {"name", "schedule", "payload"}


def test_an_edit_sends_every_field_but_the_status():
    data, errors = forms.parse(TaskUpdate, values(status="inactive"), creating=False)
    assert errors == {}
    assert "status" not in data.model_fields_set
    assert {"schedule", "run_at", "payload", "webhook_url"} <= data.model_fields_set


def test_the_preview_lists_the_next_five_runs_in_the_zone():
    data, _ = forms.parse(TaskCreate, values(timezone="Europe/Paris"), creating=True)
    preview = forms.preview(data, now=NOW)
    assert [run.isoformat() for run in preview.runs] == [
        "2026-12-01T08:00:00+00:00",
        "2026-12-02T08:00:00+00:00",
        "2026-12-03T08:00:00+00:00",
        "2026-12-04T08:00:00+00:00",
        "2026-12-07T08:00:00+00:00",
    ]
    assert preview.payload is None and preview.error is None


def test_the_preview_renders_a_template_for_the_first_run():
    payload = '{"content": "{{ task.name }} at {{ scheduled_for|local(\\"%H:%M\\") }}"}'
    data, errors = forms.parse(
        TaskCreate,
        values(timezone="Europe/Paris", template="on", payload=payload),
        creating=True,
    )
    assert errors == {}
    assert forms.preview(data, now=NOW).payload == {"content": "Stand-up at 09:00"}


def test_a_template_that_cannot_render_is_a_preview_error():
    data, _ = forms.parse(
        TaskCreate, values(template="on", payload='{"content": "{{ nope }}"}'), creating=True
    )
    assert "nope" in forms.preview(data, now=NOW).error


def test_a_one_time_run_in_the_past_previews_as_now():
    data, _ = forms.parse(TaskCreate, values(kind="once", run_at="2020-01-01T00:00"), creating=True)
    assert forms.preview(data, now=NOW).runs == [NOW]


def test_log_filters_read_the_api_filters():
    task_id = uuid.uuid4()
    filters, errors = forms.log_filters(
        {
            "task_id": str(task_id),
            "status": "failed",
            "since": "2026-11-30T09:00",
            "until": "2026-11-30T10:00:00+01:00",
        }
    )
    assert errors == {}
    assert filters.task_id == task_id and filters.status == "failed"
    assert filters.since == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert filters.until == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_wrong_log_filters_are_errors_by_field():
    filters, errors = forms.log_filters(
        {"task_id": "nope", "status": "maybe", "since": "yesterday", "until": ""}
    )
    assert set(errors) == {"task_id", "status", "since"}
    assert filters.task_id is None and filters.status is None and filters.since is None


def test_the_timezone_picker_offers_iana_names():
    names = forms.timezone_names()
    assert {"UTC", "Europe/Paris", "America/New_York"} <= set(names)
    assert "localtime" not in names and list(names) == sorted(names)


@pytest.mark.parametrize(
    ("given", "goes"),
    [
        ("/ui/tasks?status=active", "/ui/tasks?status=active"),
        (None, "/ui"),
        ("", "/ui"),
        ("https://evil.example/ui", "/ui"),
        ("//evil.example/ui", "/ui"),
        ("/ui\\..\\", "/ui"),
        ("/docs", "/ui"),
    ],
)
def test_after_sign_in_the_browser_stays_in_the_dashboard(given, goes):
    assert safe_next(given) == goes


def test_query_strings_keep_only_given_values():
    assert query_string(search="a b", status="", cursor=None) == "?search=a+b"
    assert query_string() == ""


def test_rules_are_read_from_their_inputs_and_empty_ones_are_none():
    filled = values(
        exclude=" 2030-12-24,--12-25\n 2031-01-01 ",
        quiet_from="22:00",
        quiet_to="07:00",
        quiet_mode="silent",
        max_runs="5",
        tags=" team , ,weekly ",
    )
    fields, errors = forms.api_fields(filled, creating=True)
    assert errors == {}
    assert fields["exclude"] == ["2030-12-24", "--12-25", "2031-01-01"]
    assert fields["quiet_hours"] == {"from": "22:00", "to": "07:00", "mode": "silent"}
    assert fields["max_runs"] == "5" and fields["tags"] == ["team", "weekly"]
    # A mode alone is no window; nothing typed is none (null clears it on an edit).
    blank, _ = forms.api_fields(values(quiet_mode="defer"), creating=False)
    assert [blank[name] for name in forms.RECURRING_ONLY_FIELDS] == [None] * 5
    assert blank["tags"] is None


def test_a_one_time_form_sends_none_of_the_repeating_rules():
    data, errors = forms.parse(
        TaskUpdate,
        values(kind="once", run_at="2027-01-15T10:00", exclude="--12-25", max_runs="3"),
        creating=False,
    )
    assert errors == {}
    sent = data.model_dump(exclude_unset=True)
    assert all(sent[name] is None for name in forms.RECURRING_ONLY_FIELDS)
