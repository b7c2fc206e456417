"""Schedules people actually have (SPEC §15) over the API, on SQLite and PostgreSQL: start and
end, max_runs, several schedules, exclusions, quiet hours, fan-out webhooks, tags, clone."""

import json
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.models import Task, TaskLog
from app.scheduling.targets import fresh_targets

PLAIN_URL = "https://hooks.example.com/notify"
OTHER_URL = "https://hooks.example.com/other"
THIRD_URL = "https://hooks.example.com/third"
DISCORD_SECRET = "secret-token-value-0123456789"
DISCORD_URL = f"https://discord.com/api/webhooks/123456789/{DISCORD_SECRET}"
SLACK_URL = "https://hooks.slack.com/services/T0001/B0002/slacksecretvalue"
FUTURE_RUN = "2031-06-01T12:00:00Z"
START = "2030-01-01T00:00:00Z"
BASE = {"name": "Nightly", "schedule": "@daily", "webhook_url": PLAIN_URL, "payload": {"a": 1}}
# The fields a task had before §15, and what a task that uses none of §15 shows for the new ones.
NEW_FIELDS_UNUSED = {
    "schedules": None,
    "start_at": None,
    "end_at": None,
    "max_runs": None,
    "runs": 0,
    "exclude": None,
    "quiet_hours": None,
    "tags": [],
}
COPIED = (
    "schedule",
    "schedules",
    "run_at",
    "timezone",
    "catchup",
    "start_at",
    "end_at",
    "max_runs",
    "exclude",
    "quiet_hours",
    "webhook_url",
    "webhook_urls",
    "payload",
    "max_retry",
    "auto_resume",
    "template",
    "discord_mode",
    "delete_after_seconds",
    "tags",
)
DROP = "<drop this field>"


def body(**overrides) -> dict:
    """BASE with `overrides`; a value of DROP leaves the field out."""
    merged = BASE | overrides
    return {key: value for key, value in merged.items() if value != DROP}


def post(client: TestClient, path: str, document: object):
    """POST JSON text with every non-ASCII character escaped (lone surrogates included)."""
    return client.post(
        path, content=json.dumps(document), headers={"Content-Type": "application/json"}
    )


def create(client: TestClient, **overrides) -> dict:
    response = post(client, "/tasks", body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


def refused_field(response) -> str:
    """The one field a 422 names."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == 1, detail
    where, field = detail[0]["loc"]
    assert where in ("body", "query")
    return field


def next_runs(client: TestClient, task_id: str, count: int) -> list[tuple]:
    response = client.get(f"/tasks/{task_id}/next-runs", params={"count": count})
    assert response.status_code == 200, response.text
    return [(run["utc"], run["kind"], run["deferred_from"]) for run in response.json()["next_runs"]]


def set_columns(db: sessionmaker[Session], task_id: str, **columns) -> None:
    with db() as session, session.begin():
        task = session.get(Task, uuid.UUID(task_id))
        for name, value in columns.items():
            setattr(task, name, value)


def stored(db: sessionmaker[Session], task_id: str, name: str):
    with db() as session:
        return getattr(session.get(Task, uuid.UUID(task_id)), name)


# --- round trips ------------------------------------------------------------------------------


EVERY_FIELD = {
    "schedule": DROP,
    "webhook_url": DROP,
    "schedules": ["0 9 * * mon", "0 17 * * FRI"],
    "timezone": "Europe/Paris",
    "start_at": "2030-01-01T00:00:00",  # no offset: read in Europe/Paris
    "end_at": "2031-01-01T00:00:00+00:00",
    "max_runs": 50,
    "exclude": ["2030-12-25", "--01-01"],
    "quiet_hours": {"from": "22:00", "to": "07:00", "mode": "defer"},
    "webhook_urls": [PLAIN_URL, OTHER_URL],
    "tags": [" team ", "ops", "team"],
}
EVERY_FIELD_READ = {
    "schedule": None,
    "schedules": ["0 9 * * MON", "0 17 * * FRI"],
    "start_at": "2029-12-31T23:00:00Z",
    "end_at": "2031-01-01T00:00:00Z",
    "max_runs": 50,
    "runs": 0,
    "exclude": ["2030-12-25", "--01-01"],
    "quiet_hours": {"from": "22:00", "to": "07:00", "mode": "defer"},
    "webhook_url": PLAIN_URL,
    "webhook_urls": [PLAIN_URL, OTHER_URL],
    "targets": [
        {
            "index": index,
            "url": url,
            "status": "active",
            "status_reason": None,
            "status_changed_at": None,
            "resume_at": None,
        }
        for index, url in enumerate([PLAIN_URL, OTHER_URL])
    ],
    "tags": ["team", "ops"],
    "next_run_at": "2030-01-04T16:00:00Z",  # Friday 17:00 in Paris
}


def test_every_field_round_trips(client: TestClient):
    task = create(client, **EVERY_FIELD)
    assert {key: task[key] for key in EVERY_FIELD_READ} == EVERY_FIELD_READ
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_an_old_insignia_body_behaves_as_before(client: TestClient, db):
    task = create(client)
    assert {key: task[key] for key in NEW_FIELDS_UNUSED} == NEW_FIELDS_UNUSED
    assert (task["schedule"], task["webhook_url"]) == ("@daily", PLAIN_URL)
    assert task["webhook_urls"] == [PLAIN_URL]
    assert task["targets"] == [
        {
            "index": 0,
            "url": PLAIN_URL,
            "status": "active",
            "status_reason": None,
            "status_changed_at": task["status_changed_at"],
            "resume_at": None,
        }
    ]
    # Nothing of §15 is stored for it: it stays a one-webhook, one-schedule task.
    assert stored(db, task["id"], "webhook_urls") is None
    assert stored(db, task["id"], "targets") is None
    assert stored(db, task["id"], "tags") is None
    # The Insignia frontend PUTs its whole form; a generic client PUTs back what it read.
    form = {key: task[key] for key in ("name", "schedule", "webhook_url", "payload", "status")}
    assert client.put(f"/tasks/{task['id']}", json=form).json() == task
    assert client.put(f"/tasks/{task['id']}", json=task).json() == task
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_a_fan_out_task_put_back_keeps_its_targets_states(client: TestClient, db):
    task = create(client, webhook_url=DROP, webhook_urls=[PLAIN_URL, OTHER_URL])
    states = fresh_targets([PLAIN_URL, OTHER_URL])
    states[1] |= {"status": "inactive", "status_reason": "HTTP 404"}
    set_columns(db, task["id"], targets=states)
    read = client.get(f"/tasks/{task['id']}").json()
    assert client.put(f"/tasks/{task['id']}", json=read).json() == read
    form = {key: read[key] for key in ("name", "schedule", "webhook_url", "payload")}
    assert client.put(f"/tasks/{task['id']}", json=form).json() == read  # the first URL: same
    assert [target["status"] for target in read["targets"]] == ["active", "inactive"]


def test_a_get_posted_back_creates_the_same_kind_of_task(client: TestClient, db):
    one = create(client)
    fan_out = create(client, name="Fan", webhook_url=DROP, webhook_urls=[PLAIN_URL, OTHER_URL])
    for task in (one, fan_out):
        copied = client.post("/tasks", json=task | {"name": "Again"})
        assert copied.status_code == 201, copied.text
        for key in ("webhook_url", "webhook_urls", "tags", "schedules"):
            assert copied.json()[key] == task[key], key
        targets = stored(db, copied.json()["id"], "targets")
        assert targets == stored(db, task["id"], "targets")
    assert stored(db, one["id"], "targets") is None


# --- validation -------------------------------------------------------------------------------

URLS_11 = [f"https://hooks.example.com/{n}" for n in range(11)]
QUIET = {"from": "22:00", "to": "07:00", "mode": "skip"}

REFUSED = [
    ("tag-nul", {"tags": ["a\x00b"]}, "tags"),
    ("tag-control", {"tags": ["a\tb"]}, "tags"),
    ("tag-blank", {"tags": ["   "]}, "tags"),
    ("tags-11", {"tags": [f"t{n}" for n in range(11)]}, "tags"),
    ("tag-51", {"tags": ["x" * 51]}, "tags"),
    ("tag-surrogate", {"tags": ["\ud800"]}, "tags"),
    ("tags-not-a-list", {"tags": "team"}, "tags"),
    ("schedules-11", {"schedule": DROP, "schedules": ["@daily"] * 11}, "schedules"),
    ("schedules-empty", {"schedule": DROP, "schedules": []}, "schedules"),
    ("schedules-bad-cron", {"schedule": DROP, "schedules": ["@daily", "61 * * * *"]}, "schedules"),
    ("schedule-and-schedules", {"schedules": ["@hourly"]}, "schedules"),
    ("run_at-and-schedules",
     {"schedule": DROP, "schedules": ["@hourly"], "run_at": FUTURE_RUN}, "run_at"),
    ("exclude-feb-30", {"exclude": ["2026-02-30"]}, "exclude"),
    ("exclude-month-13", {"exclude": ["--13-01"]}, "exclude"),
    ("exclude-short-date", {"exclude": ["2026-1-1"]}, "exclude"),
    ("exclude-101", {"exclude": [f"--01-{n % 28 + 1:02d}" for n in range(101)]}, "exclude"),
    ("exclude-surrogate", {"exclude": ["\ud800"]}, "exclude"),
    ("exclude-nul", {"exclude": ["2026-12-25\x00"]}, "exclude"),
    ("exclude-a-number", {"exclude": [20261225]}, "exclude"),
    ("quiet-from-only", {"quiet_hours": {"from": "25:00"}}, "quiet_hours"),
    ("quiet-from-25", {"quiet_hours": QUIET | {"from": "25:00"}}, "quiet_hours"),
    ("quiet-mode-loud", {"quiet_hours": QUIET | {"mode": "loud"}}, "quiet_hours"),
    ("quiet-from-is-to", {"quiet_hours": QUIET | {"to": "22:00"}}, "quiet_hours"),
    ("quiet-unknown-key", {"quiet_hours": QUIET | {"colour": "red"}}, "quiet_hours"),
    ("quiet-text", {"quiet_hours": "22:00-07:00"}, "quiet_hours"),
    ("quiet-nul", {"quiet_hours": QUIET | {"to": "07:00\x00"}}, "quiet_hours"),
    ("end-before-start", {"start_at": "2031-01-01T00:00:00Z", "end_at": START}, "end_at"),
    ("end-in-the-past", {"end_at": "2020-01-01T00:00:00Z"}, "end_at"),
    ("start-year-1", {"start_at": "0001-01-01T00:00:00+14:00"}, "start_at"),
    ("start-year-1-naive", {"start_at": "0001-01-01T00:00:00"}, "start_at"),
    ("end-year-9999", {"end_at": "9999-12-31T23:59:59-14:00"}, "end_at"),
    ("start-not-a-date", {"start_at": "soon"}, "start_at"),
    ("max_runs-0", {"max_runs": 0}, "max_runs"),
    ("max_runs-huge", {"max_runs": 1_000_001}, "max_runs"),
    ("max_runs-10e30", {"max_runs": 10**30}, "max_runs"),
    ("urls-empty", {"webhook_url": DROP, "webhook_urls": []}, "webhook_urls"),
    ("urls-11", {"webhook_url": DROP, "webhook_urls": URLS_11}, "webhook_urls"),
    ("urls-duplicate", {"webhook_url": DROP, "webhook_urls": [PLAIN_URL, OTHER_URL, PLAIN_URL]},
     "webhook_urls"),
    ("urls-private", {"webhook_url": DROP, "webhook_urls": [PLAIN_URL, "http://127.0.0.1:9/h"]},
     "webhook_urls"),
    ("urls-metadata",
     {"webhook_url": DROP, "webhook_urls": [PLAIN_URL, "http://169.254.169.254/latest"]},
     "webhook_urls"),
    ("urls-ftp", {"webhook_url": DROP, "webhook_urls": ["ftp://example.com/hook"]},
     "webhook_urls"),
    ("urls-nul", {"webhook_url": DROP, "webhook_urls": [PLAIN_URL + "\x00"]}, "webhook_urls"),
    ("url-and-urls", {"webhook_urls": [OTHER_URL, PLAIN_URL]}, "webhook_urls"),
    ("no-webhook", {"webhook_url": DROP}, "webhook_url"),
    ("urls-discord-payload", {"webhook_url": DROP, "webhook_urls": [PLAIN_URL, DISCORD_URL],
                              "payload": {"content": "x" * 2001}}, "payload"),
    ("urls-discord-mode-without-discord",
     {"webhook_url": DROP, "webhook_urls": [PLAIN_URL, OTHER_URL], "discord_mode": "edit"},
     "discord_mode"),
    ("one-time-exclude", {"schedule": DROP, "run_at": FUTURE_RUN, "exclude": ["--12-25"]},
     "exclude"),
    ("one-time-quiet", {"schedule": DROP, "run_at": FUTURE_RUN, "quiet_hours": QUIET},
     "quiet_hours"),
    ("one-time-start", {"schedule": DROP, "run_at": FUTURE_RUN, "start_at": START}, "start_at"),
    ("one-time-end", {"schedule": DROP, "run_at": FUTURE_RUN, "end_at": FUTURE_RUN}, "end_at"),
    ("one-time-max_runs", {"schedule": DROP, "run_at": FUTURE_RUN, "max_runs": 1}, "max_runs"),
    ("never-fires", {"schedule": "0 0 25 12 *", "exclude": ["--12-25"]}, "schedule"),
    ("never-fires-quiet", {"schedules": ["@daily"], "schedule": DROP, "quiet_hours": QUIET},
     "schedules"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "field"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_bad_input_is_422_naming_the_field(client: TestClient, overrides: dict, field: str):
    response = post(client, "/tasks", body(**overrides))
    assert refused_field(response) == field
    assert "input" not in response.json()["detail"][0]
    assert client.get("/tasks").json()["total"] == 0


def test_errors_say_where_inside_the_field(client: TestClient):
    def message(**overrides) -> str:
        return post(client, "/tasks", body(**overrides)).json()["detail"][0]["msg"]

    assert message(exclude=["2026-12-25", "2026-02-30"]) == "exclude[1]: 2026-02-30 is not a date"
    assert message(quiet_hours=QUIET | {"from": "25:00"}) == (
        "quiet_hours.from: expected HH:MM (00:00 to 23:59), got '25:00'"
    )
    assert message(end_at="2020-01-01T00:00:00Z") == (
        "no run left before end_at (2020-01-01T00:00:00+00:00)"
    )
    assert message(webhook_url=DROP, webhook_urls=[PLAIN_URL, PLAIN_URL]) == (
        "webhook_urls[1] repeats webhook_urls[0]"
    )
    private = message(webhook_url=DROP, webhook_urls=[PLAIN_URL, "http://127.0.0.1:9/h"])
    assert private.startswith("webhook_urls[1]: ")
    assert "ALLOW_PRIVATE_WEBHOOK_TARGETS" in private
    assert message(schedule=DROP, run_at=FUTURE_RUN, max_runs=1) == (
        "only for recurring tasks (with a schedule)"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_at": "2020-01-01T00:00:00Z"}, "end_at"),
        ({"start_at": "2031-01-01T00:00:00Z", "end_at": START}, "end_at"),
        ({"schedules": ["@hourly"], "schedule": "@daily"}, "schedules"),
        ({"run_at": FUTURE_RUN}, "quiet_hours"),  # one-time, but quiet hours are still set
        ({"webhook_url": OTHER_URL, "webhook_urls": [PLAIN_URL]}, "webhook_urls"),
        ({"webhook_urls": [PLAIN_URL, "http://10.0.0.1/hook"]}, "webhook_urls"),
        ({"quiet_hours": QUIET | {"mode": "loud"}}, "quiet_hours"),
        ({"exclude": ["--02-30"]}, "exclude"),
        ({"tags": ["ok", "x" * 51]}, "tags"),
        ({"max_runs": 0}, "max_runs"),
    ],
)
def test_bad_updates_are_422_and_change_nothing(client: TestClient, change: dict, field: str):
    task = create(client, schedule="0 12 * * *", quiet_hours=QUIET)
    assert refused_field(client.patch(f"/tasks/{task['id']}", json=change)) == field
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_a_bad_tag_query_is_422(client: TestClient):
    for tag in ("x" * 51, "a\x00b"):
        assert refused_field(client.get("/tasks", params={"tag": tag})) == "tag"


# --- timing forms on update -------------------------------------------------------------------


def test_giving_one_form_of_timing_clears_the_others(client: TestClient):
    task = create(client)
    url = f"/tasks/{task['id']}"
    several = client.patch(url, json={"schedules": ["@hourly", "30 * * * *"]}).json()
    assert (several["schedule"], several["schedules"]) == (None, ["@hourly", "30 * * * *"])
    one_time = client.patch(url, json={"run_at": FUTURE_RUN}).json()
    assert (one_time["schedule"], one_time["schedules"]) == (None, None)
    assert one_time["run_at"] == FUTURE_RUN
    again = client.patch(url, json={"schedule": "@weekly", "max_runs": 3}).json()
    assert (again["schedule"], again["schedules"], again["run_at"]) == ("@weekly", None, None)
    assert again["max_runs"] == 3
    cleared = client.patch(url, json={"max_runs": None, "tags": ["x"]}).json()
    assert (cleared["max_runs"], cleared["tags"]) == (None, ["x"])
    assert client.patch(url, json={"tags": None}).json()["tags"] == []


def test_one_schedule_in_schedules_is_kept_as_sent(client: TestClient):
    task = create(client, schedule=DROP, schedules=["@hourly"])
    assert (task["schedule"], task["schedules"]) == (None, ["@hourly"])


# --- next runs --------------------------------------------------------------------------------


def test_next_runs_with_silent_quiet_hours(client: TestClient):
    quiet = {"from": "02:00", "to": "04:00", "mode": "silent"}
    task = create(client, schedule="0 * * * *", start_at=START, quiet_hours=quiet)
    assert next_runs(client, task["id"], 6) == [
        ("2030-01-01T00:00:00Z", "normal", None),
        ("2030-01-01T01:00:00Z", "normal", None),
        ("2030-01-01T02:00:00Z", "silent", None),
        ("2030-01-01T03:00:00Z", "silent", None),
        ("2030-01-01T04:00:00Z", "normal", None),
        ("2030-01-01T05:00:00Z", "normal", None),
    ]


def test_next_runs_with_deferring_quiet_hours(client: TestClient):
    quiet = {"from": "02:00", "to": "03:30", "mode": "defer"}
    task = create(client, schedule="0 * * * *", start_at=START, quiet_hours=quiet)
    assert next_runs(client, task["id"], 5) == [
        ("2030-01-01T00:00:00Z", "normal", None),
        ("2030-01-01T01:00:00Z", "normal", None),
        ("2030-01-01T03:30:00Z", "deferred", "2030-01-01T02:00:00Z"),
        ("2030-01-01T04:00:00Z", "normal", None),
        ("2030-01-01T05:00:00Z", "normal", None),
    ]
    local = client.get(f"/tasks/{task['id']}/next-runs", params={"count": 1}).json()
    assert local["next_runs"][0]["local"] == "2030-01-01T00:00:00Z"


def test_next_runs_stop_at_max_runs(client: TestClient, db):
    task = create(client, schedule="0 * * * *", start_at=START, max_runs=2)
    assert next_runs(client, task["id"], 5) == [
        ("2030-01-01T00:00:00Z", "normal", None),
        ("2030-01-01T01:00:00Z", "normal", None),
    ]
    set_columns(db, task["id"], runs=1)
    assert client.get(f"/tasks/{task['id']}").json()["runs"] == 1
    assert next_runs(client, task["id"], 5) == [("2030-01-01T00:00:00Z", "normal", None)]
    assert len(next_runs(client, task["id"], 5)) == 1
    client.patch(f"/tasks/{task['id']}", json={"max_runs": 3})
    assert len(next_runs(client, task["id"], 5)) == 2


def test_a_task_whose_runs_are_spent_is_not_made_active(client: TestClient, db):
    task = create(client, schedule="0 * * * *", start_at=START, max_runs=2)
    set_columns(db, task["id"], runs=2)
    url = f"/tasks/{task['id']}"
    assert client.post(f"{url}/pause").json()["status"] == "inactive"
    assert refused_field(client.patch(url, json={"status": "active"})) == "max_runs"
    resumed = client.post(f"{url}/resume")
    assert resumed.status_code == 409
    assert "completed 2 runs" in resumed.json()["detail"]
    more = client.patch(url, json={"max_runs": 3, "status": "active"})
    assert more.status_code == 200, more.text
    assert more.json()["next_run_at"] == "2030-01-01T00:00:00Z"
    assert next_runs(client, task["id"], 5) == [("2030-01-01T00:00:00Z", "normal", None)]


def test_an_ended_task_can_still_be_renamed(client: TestClient, db):
    task = create(client, end_at="2031-01-01T00:00:00Z")
    set_columns(db, task["id"], end_at=datetime(2020, 1, 1, tzinfo=UTC), status="inactive")
    renamed = client.patch(f"/tasks/{task['id']}", json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    assert refused_field(client.patch(f"/tasks/{task['id']}", json={"status": "active"})) == (
        "end_at"
    )


# --- fan-out ----------------------------------------------------------------------------------


def test_fan_out_forms_on_update(client: TestClient, db):
    task = create(client, webhook_url=DROP, webhook_urls=[PLAIN_URL, OTHER_URL])
    url = f"/tasks/{task['id']}"
    same_first = client.patch(url, json={"webhook_url": PLAIN_URL}).json()
    assert same_first["webhook_urls"] == [PLAIN_URL, OTHER_URL]
    one = client.patch(url, json={"webhook_url": THIRD_URL}).json()
    assert (one["webhook_url"], one["webhook_urls"]) == (THIRD_URL, [THIRD_URL])
    assert stored(db, task["id"], "targets") is None
    assert one["targets"][0]["status_changed_at"] == one["status_changed_at"]
    fan = client.patch(url, json={"webhook_urls": [OTHER_URL, THIRD_URL]}).json()
    assert (fan["webhook_url"], fan["webhook_urls"]) == (OTHER_URL, [OTHER_URL, THIRD_URL])
    assert stored(db, task["id"], "targets") == fresh_targets([OTHER_URL, THIRD_URL])
    back = client.patch(url, json={"webhook_urls": None}).json()
    assert (back["webhook_url"], back["webhook_urls"]) == (OTHER_URL, [OTHER_URL])
    assert stored(db, task["id"], "webhook_urls") is None
    of_one = client.patch(url, json={"webhook_urls": [PLAIN_URL]}).json()
    assert (of_one["webhook_url"], of_one["webhook_urls"]) == (PLAIN_URL, [PLAIN_URL])
    assert stored(db, task["id"], "targets") == fresh_targets([PLAIN_URL])


def test_a_new_webhook_list_starts_every_target_afresh(client: TestClient, db):
    task = create(client, webhook_url=DROP, webhook_urls=[PLAIN_URL, OTHER_URL])
    states = fresh_targets([PLAIN_URL, OTHER_URL])
    states[0] |= {"status": "inactive", "status_reason": "HTTP 500", "failures": 3}
    set_columns(db, task["id"], targets=states)
    client.patch(f"/tasks/{task['id']}", json={"webhook_urls": [PLAIN_URL, THIRD_URL]})
    assert stored(db, task["id"], "targets") == fresh_targets([PLAIN_URL, THIRD_URL])


def test_resume_switches_every_target_on(client: TestClient, db):
    task = create(client, webhook_url=DROP, webhook_urls=[PLAIN_URL, OTHER_URL])
    states = fresh_targets([PLAIN_URL, OTHER_URL])
    states[1] |= {
        "status": "inactive",
        "status_reason": "deactivated after 4 failed attempts: HTTP 500",
        "failures": 2,
        "resume_at": "2030-01-01T00:00:00+00:00",
        "discord_message_id": "42",
    }
    set_columns(db, task["id"], targets=states)
    shown = client.get(f"/tasks/{task['id']}").json()["targets"][1]
    assert (shown["status"], shown["resume_at"]) == ("inactive", "2030-01-01T00:00:00Z")
    resumed = client.post(f"/tasks/{task['id']}/resume").json()
    assert [t["status"] for t in resumed["targets"]] == ["active", "active"]
    assert [t["resume_at"] for t in resumed["targets"]] == [None, None]
    revived = stored(db, task["id"], "targets")[1]
    assert (revived["failures"], revived["discord_message_id"]) == (0, "42")
    client.post(f"/tasks/{task['id']}/pause")
    again = client.post(f"/tasks/{task['id']}/resume").json()
    assert (again["status"], [t["status"] for t in again["targets"]]) == (
        "active",
        ["active", "active"],
    )


# --- tags -------------------------------------------------------------------------------------


def test_tag_filter(client: TestClient):
    both = create(client, name="both", tags=["team", "ops"])
    create(client, name="none")
    team = create(client, name="team", tags=["team"])
    create(client, name="prefix", tags=["teams", "te%"])
    ops = create(client, name="ops", tags=["ops", 'q"uote'])
    found = client.get("/tasks", params={"tag": "team"}).json()
    assert ([t["name"] for t in found["tasks"]], found["total"]) == (["team", "both"], 2)
    found = client.get("/tasks", params={"tag": "ops"}).json()
    assert [t["id"] for t in found["tasks"]] == [ops["id"], both["id"]]
    assert client.get("/tasks", params={"tag": " team "}).json()["total"] == 2
    assert client.get("/tasks", params={"tag": "te%"}).json()["total"] == 1
    assert client.get("/tasks", params={"tag": 'q"uote'}).json()["total"] == 1
    assert client.get("/tasks", params={"tag": "tea"}).json()["total"] == 0
    assert client.get("/tasks", params={"tag": ""}).json()["total"] == 5
    assert client.get("/tasks", params={"tag": "missing"}).json() == {
        "tasks": [],
        "total": 0,
        "skip": 0,
        "limit": 100,
        "total_is_estimate": False,
        "next_cursor": None,
    }
    client.post(f"/tasks/{team['id']}/pause")
    active = client.get("/tasks", params={"tag": "team", "status": "active"}).json()
    assert [t["name"] for t in active["tasks"]] == ["both"]


def test_tag_filter_pages_with_the_right_total(client: TestClient):
    tagged = [create(client, name=f"t{n}", tags=["x", f"n{n}"])["id"] for n in range(5)]
    for n in range(3):
        create(client, name=f"u{n}", tags=["y"])
    first = client.get("/tasks", params={"tag": "x", "limit": 2}).json()
    assert ([t["id"] for t in first["tasks"]], first["total"]) == (tagged[:2:-1], 5)
    second = client.get("/tasks", params={"tag": "x", "limit": 2, "skip": 2}).json()
    assert ([t["id"] for t in second["tasks"]], second["total"]) == ([tagged[2], tagged[1]], 5)
    walked = client.get(
        "/tasks", params={"tag": "x", "limit": 2, "cursor": second["next_cursor"]}
    ).json()
    assert [t["id"] for t in walked["tasks"]] == [tagged[0]]
    assert walked["next_cursor"] is None


# --- clone ------------------------------------------------------------------------------------


CLONE_SOURCE = {
    "name": "Board",
    "schedule": DROP,
    "webhook_url": DROP,
    "schedules": ["0 9 * * MON", "@every 2h"],
    "timezone": "Europe/Paris",
    "catchup": "all",
    "start_at": START,
    "end_at": "2032-01-01T00:00:00Z",
    "max_runs": 10,
    "exclude": ["--12-25"],
    "quiet_hours": QUIET | {"mode": "silent"},
    "webhook_urls": [PLAIN_URL, DISCORD_URL],
    "payload": {"content": "{{ task.name }} at {{ scheduled_for|iso }}"},
    "template": True,
    "max_retry": 5,
    "auto_resume": False,
    "discord_mode": "edit",
    "delete_after_seconds": 3600,
    "tags": ["team"],
}
FRESH_CLONE = {
    "name": "Board (copy)",
    "status": "inactive",
    "status_reason": "paused through the API",
    "next_run_at": None,
    "runs": 0,
    "signed": False,
    "discord_message_id": None,
    "last_run_at": None,
    "last_status": None,
    "resume_at": None,
}


def test_clone_copies_the_settings_and_none_of_the_history(client: TestClient, db):
    original = create(client, **CLONE_SOURCE)
    rotated = client.post(f"/tasks/{original['id']}/signing-secret")
    assert rotated.status_code == 200, rotated.text
    states = fresh_targets([PLAIN_URL, DISCORD_URL])
    states[1] |= {"status": "inactive", "status_reason": "HTTP 404", "discord_message_id": "7"}
    history = {"runs": 4, "discord_message_id": "6", "last_status": "failed"}
    last_run = datetime(2026, 1, 1, tzinfo=UTC)
    set_columns(db, original["id"], targets=states, last_run_at=last_run, **history)
    original = client.get(f"/tasks/{original['id']}").json()
    assert (original["signed"], original["runs"]) == (True, 4)
    response = client.post(f"/tasks/{original['id']}/clone")
    assert response.status_code == 201, response.text
    clone = response.json()
    assert {key: clone[key] for key in COPIED} == {key: original[key] for key in COPIED}
    assert {key: clone[key] for key in FRESH_CLONE} == FRESH_CLONE
    assert clone["id"] != original["id"]
    assert [(t["url"], t["status"]) for t in clone["targets"]] == [
        (PLAIN_URL, "active"),
        (DISCORD_URL, "active"),
    ]
    assert stored(db, clone["id"], "targets") == fresh_targets([PLAIN_URL, DISCORD_URL])
    assert stored(db, clone["id"], "signing_secret") is None
    assert client.get(f"/tasks/{clone['id']}").json() == clone
    assert client.get("/tasks").json()["total"] == 2


def test_clone_of_a_one_webhook_task_and_of_a_long_name(client: TestClient, db):
    task = create(client, name="n" * 200)
    clone = client.post(f"/tasks/{task['id']}/clone").json()
    assert clone["name"] == "n" * 193 + " (copy)"
    assert len(clone["name"]) == 200
    assert (clone["webhook_urls"], stored(db, clone["id"], "targets")) == ([PLAIN_URL], None)
    spaced = create(client, name="x" * 192 + " tail")
    assert client.post(f"/tasks/{spaced['id']}/clone").json()["name"] == "x" * 192 + " (copy)"
    resumed = client.post(f"/tasks/{clone['id']}/resume").json()
    assert (resumed["status"], resumed["next_run_at"]) == ("active", task["next_run_at"])


@pytest.mark.parametrize("task_id", ["00000000-0000-0000-0000-000000000000", "not-an-id"])
def test_clone_of_an_unknown_task_is_404(client: TestClient, task_id: str):
    response = client.post(f"/tasks/{task_id}/clone")
    assert (response.status_code, response.json()) == (404, {"detail": "Task not found"})


# --- keys, logs, the API document -------------------------------------------------------------


def as_key(client: TestClient, *scopes: str) -> dict[str, str]:
    response = client.post("/api-keys", json={"name": "k", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def test_a_read_only_key_sees_every_webhook_url_redacted(client: TestClient):
    urls = [DISCORD_URL, SLACK_URL, PLAIN_URL]
    task = create(client, webhook_url=DROP, webhook_urls=urls, payload={"content": "hi"})
    reader = as_key(client, "tasks:read")
    hidden = [
        "https://discord.com/api/webhooks/123456789/***",
        "https://hooks.slack.com/services/***",
        PLAIN_URL,
    ]
    one = client.get(f"/tasks/{task['id']}", headers=reader).json()
    listed = client.get("/tasks", headers=reader).json()["tasks"][0]
    for seen in (one, listed):
        assert seen["webhook_url"] == hidden[0]
        assert seen["webhook_urls"] == hidden
        assert [target["url"] for target in seen["targets"]] == hidden
        assert DISCORD_SECRET not in json.dumps(seen)
        assert "slacksecretvalue" not in json.dumps(seen)
    writer = as_key(client, "tasks:read", "tasks:write")
    assert client.get(f"/tasks/{task['id']}", headers=writer).json() == task
    assert client.post(f"/tasks/{task['id']}/clone", headers=reader).status_code == 403
    assert client.post(f"/tasks/{task['id']}/clone", headers=writer).status_code == 201


def test_log_rows_show_their_target(client: TestClient, db):
    task = create(client, webhook_url=DROP, webhook_urls=[PLAIN_URL, OTHER_URL])
    by_hand = client.post("/task-logs", json={"task_id": task["id"], "status": "success"}).json()
    assert by_hand["target"] is None
    log_id = uuid.uuid4()
    with db() as session, session.begin():
        session.add(TaskLog(id=log_id, task_id=uuid.UUID(task["id"]), status="failed", target=1))
    log = client.get(f"/task-logs/{log_id}").json()
    assert log["target"] == 1
    assert client.put(f"/task-logs/{log_id}", json=log).json() == log
    listed = client.get(f"/task-logs/task/{task['id']}").json()["task_logs"]
    assert sorted(row["target"] is None for row in listed) == [False, True]


def test_every_new_field_is_described_in_the_api_document(client: TestClient):
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    writable = [
        "start_at",
        "end_at",
        "max_runs",
        "schedules",
        "exclude",
        "quiet_hours",
        "webhook_urls",
        "tags",
    ]
    expected = {
        "TaskCreate": writable,
        "TaskUpdate": writable,
        "TaskRead": [*writable, "runs", "targets"],
        "NextRun": ["kind", "deferred_from"],
        "TaskLogRead": ["target"],
    }
    for schema, fields in expected.items():
        properties = schemas[schema]["properties"]
        assert [field for field in fields if not properties[field].get("description")] == []
    parameters = document["paths"]["/tasks"]["get"]["parameters"]
    assert [p["description"] for p in parameters if p["name"] == "tag"] == [
        "only tasks with this tag (empty: all)"
    ]
    clone = document["paths"]["/tasks/{task_id}/clone"]["post"]
    assert clone["operationId"] == "clone_task"
    assert clone["security"] == [{"HTTPBearer": ["tasks:write"]}]
    assert "201" in clone["responses"]
