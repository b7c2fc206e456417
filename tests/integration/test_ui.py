"""The dashboard at /ui over ASGI, on SQLite and PostgreSQL: sign-in and its cookie, CSRF
refusals, the scopes of API keys, field errors next to their fields, filters and pages."""

import re
import uuid
from datetime import UTC, datetime, timedelta
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.models import ServiceSecret, Task
from app.ui.session import COOKIE_NAME
from tests.conftest import TEST_TOKEN
from tests.integration.conftest import start_client

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = "w3bh00k-s3cr3t-t0k3n-value"
DISCORD_URL = f"https://discord.com/api/webhooks/123456789/{SECRET}"
FORM = {
    "name": "Stand-up",
    "kind": "schedule",
    "schedule": "0 9 * * MON-FRI",
    "run_at": "",
    "timezone": "Europe/Paris",
    "catchup": "latest",
    "webhook_url": "https://hooks.example.com/standup",
    "payload": '{"content": "Stand-up in 5 minutes!"}',
    "max_retry": "3",
    "auto_resume": "on",
    "status": "active",
    "discord_mode": "post",
    "delete_after_seconds": "",
    "action": "save",
}


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(client: TestClient, credential: str = TEST_TOKEN) -> str:
    """Sign in through the form; the session's CSRF token."""
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"csrf_token": csrf_of(page.text), "token": credential, "next": "/ui"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/ui").text)


def new_key(client: TestClient, *scopes: str) -> str:
    response = client.post("/api-keys", json={"name": "dashboard", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def api_task(client: TestClient, **fields) -> dict:
    body = {
        "name": "Nightly",
        "schedule": "@daily",
        "webhook_url": DISCORD_URL,
        "payload": {"content": "hi"},
    }
    response = client.post("/tasks", json=body | fields)
    assert response.status_code == 201, response.text
    return response.json()


def field_block(html: str, name: str) -> str:
    """The `<div class="field">` holding the input called `name`."""
    for block in re.findall(r'<div class="field[^"]*">(.*?)</div>', html, re.DOTALL):
        if f'id="{name}"' in block:
            return block
    raise AssertionError(f"no field {name} on the page")


def test_pages_need_a_session_not_a_bearer_header(client: TestClient):
    # The client sends the API token as a bearer header: the dashboard wants its cookie.
    for path in ("/ui", "/ui/tasks", "/ui/logs", "/ui/tasks/new"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/ui/login?next=%2Fui")


def test_sign_in_sets_a_strict_http_only_cookie_without_the_token(client: TestClient):
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login",
        data={"csrf_token": csrf_of(page.text), "token": TEST_TOKEN, "next": "/ui/tasks"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/tasks"
    header = response.headers["set-cookie"]
    cookie = SimpleCookie(header)[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/ui"
    assert TEST_TOKEN not in header
    overview = client.get("/ui")
    assert overview.status_code == 200
    assert "API token (admin)" in overview.text


def test_a_wrong_token_opens_no_session(client: TestClient):
    page = client.get("/ui/login")
    response = client.post(
        "/ui/login", data={"csrf_token": csrf_of(page.text), "token": "wrong-token-0123456789"}
    )
    assert response.status_code == 401
    assert "not a valid API token or API key" in field_block(response.text, "token")
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_the_signing_secret_is_stored_once_and_shared(client: TestClient, settings, db):
    sign_in(client)
    with db() as session:
        rows = session.scalars(
            select(ServiceSecret).where(ServiceSecret.name == "ui_session_key")
        ).all()
    assert len(rows) == 1
    # Another process on the same database (a replica, a restart) accepts the cookie.
    with start_client(settings) as other:
        other.cookies.set(COOKIE_NAME, client.cookies[COOKIE_NAME], path="/ui")
        assert other.get("/ui", follow_redirects=False).status_code == 200


def test_a_tampered_cookie_is_no_session(client: TestClient):
    sign_in(client)
    value = client.cookies[COOKIE_NAME]
    client.cookies.clear()
    client.cookies.set(COOKIE_NAME, value[:-3] + "xyz", path="/ui")
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(client: TestClient):
    csrf = sign_in(client)
    task = api_task(client)
    posts = [
        ("/ui/tasks/new", FORM),
        (f"/ui/tasks/{task['id']}/pause", {}),
        (f"/ui/tasks/{task['id']}/run", {}),
        (f"/ui/tasks/{task['id']}/delete", {}),
        (f"/ui/tasks/{task['id']}/edit", FORM),
        ("/ui/logout", {}),
    ]
    for path, form in posts:
        for token in (None, "", "forged-" + csrf[7:]):
            data = form if token is None else form | {"csrf_token": token}
            response = client.post(path, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, token)
            assert "CSRF token" in response.text
        as_json = client.post(path, json=form | {"csrf_token": csrf}, follow_redirects=False)
        assert as_json.status_code == 403, path
    assert client.get("/tasks").json()["total"] == 1
    assert client.get(f"/tasks/{task['id']}").json()["status"] == "active"
    assert client.get("/ui", follow_redirects=False).status_code == 200  # still signed in


def test_the_sign_in_form_needs_its_csrf_token(client: TestClient):
    response = client.post("/ui/login", data={"token": TEST_TOKEN}, follow_redirects=False)
    assert response.status_code == 403
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")


def test_a_token_from_an_earlier_session_is_refused(client: TestClient):
    old = sign_in(client)
    new = sign_in(client)
    assert old != new
    task = api_task(client)
    response = client.post(f"/ui/tasks/{task['id']}/pause", data={"csrf_token": old})
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"schedule": "every monday at 9"}, "schedule", "expected 5 fields"),
        ({"schedule": ""}, "schedule", "give a schedule"),
        ({"payload": '{"content": "hi",}'}, "payload", "not valid JSON"),
        ({"timezone": "Europe/Pariss"}, "timezone", "unknown timezone"),
        ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_url", "non-public address"),
        ({"discord_mode": "edit"}, "discord_mode", "only for Discord webhook URLs"),
        ({"max_retry": "50"}, "max_retry", "less than or equal to 20"),
        ({"kind": "once", "run_at": ""}, "schedule", "give a schedule"),
    ],
)
def test_field_errors_are_shown_next_to_their_field(client, changes, field, words):
    csrf = sign_in(client)
    response = client.post("/ui/tasks/new", data=FORM | changes | {"csrf_token": csrf})
    assert response.status_code == 422
    block = field_block(response.text, field)
    assert f'id="{field}-error"' in block
    assert words in block.replace("&#39;", "'")
    assert 'aria-invalid="true"' in block
    assert 'value="Stand-up"' in field_block(response.text, "name")  # what was typed stays
    assert client.get("/tasks").json()["total"] == 0


def test_a_task_created_through_the_form_is_the_api_task(client: TestClient):
    csrf = sign_in(client)
    response = client.post(
        "/ui/tasks/new", data=FORM | {"csrf_token": csrf}, follow_redirects=False
    )
    assert response.status_code == 303
    task_id = response.headers["location"].split("/")[3].split("?")[0]
    task = client.get(f"/tasks/{task_id}").json()
    assert task["name"] == "Stand-up"
    assert task["schedule"] == "0 9 * * MON-FRI"
    assert task["timezone"] == "Europe/Paris"
    assert task["payload"] == {"content": "Stand-up in 5 minutes!"}
    page = client.get(response.headers["location"])
    assert "Task created." in page.text
    assert "every weekday at 09:00 Europe/Paris" in page.text
    assert "No attempts yet." in page.text


def test_a_one_time_task_is_read_in_its_timezone(client: TestClient):
    csrf = sign_in(client)
    form = FORM | {"kind": "once", "run_at": "2030-01-15T10:00", "timezone": "America/New_York"}
    response = client.post("/ui/tasks/new", data=form | {"csrf_token": csrf})
    assert response.status_code == 200  # the task page, after the redirect
    task = client.get("/tasks").json()["tasks"][0]
    assert task["schedule"] is None
    assert task["run_at"] == "2030-01-15T15:00:00Z"


def test_the_preview_shows_next_runs_and_the_rendered_template(client: TestClient):
    csrf = sign_in(client)
    form = FORM | {
        "action": "preview",
        "template": "on",
        "payload": '{"content": "{{ task.name }} at {{ scheduled_for|local(\\"%H:%M\\") }}"}',
    }
    response = client.post("/ui/tasks/new", data=form | {"csrf_token": csrf})
    assert response.status_code == 200
    assert response.text.count("<time datetime=") == 5
    assert "09:00 CET" in response.text or "09:00 CEST" in response.text
    assert "&#34;Stand-up at 09:00&#34;" in response.text
    assert client.get("/tasks").json()["total"] == 0  # a preview saves nothing


def test_edit_saves_and_shows_errors(client: TestClient):
    csrf = sign_in(client)
    task = api_task(client, webhook_url="https://hooks.example.com/x")
    page = client.get(f"/ui/tasks/{task['id']}/edit")
    assert 'value="Nightly"' in field_block(page.text, "name")
    wrong = client.post(
        f"/ui/tasks/{task['id']}/edit",
        data=FORM | {"timezone": "Nowhere/City", "csrf_token": csrf},
    )
    assert wrong.status_code == 422
    assert "unknown timezone" in field_block(wrong.text, "timezone").replace("&#39;", "'")
    saved = client.post(
        f"/ui/tasks/{task['id']}/edit",
        data=FORM | {"name": "Renamed", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    after = client.get(f"/tasks/{task['id']}").json()
    assert after["name"] == "Renamed" and after["schedule"] == "0 9 * * MON-FRI"
    assert after["status"] == "active"


def textarea_value(html: str, name: str) -> str:
    found = re.search(rf'<textarea id="{name}"[^>]*>(.*?)</textarea>', html, re.DOTALL)
    assert found, f"no textarea {name} on the page"
    return found.group(1)


FAN_OUT = ["https://hooks.example.com/a", "https://hooks.example.com/b"]
TWICE = ["0 9 * * MON-FRI", "30 17 * * FRI"]


def test_a_fan_out_task_with_several_schedules_is_edited_without_losing_any(client: TestClient):
    csrf = sign_in(client)
    task = api_task(client, schedule=None, schedules=TWICE, webhook_url=None, webhook_urls=FAN_OUT)
    page = client.get(f"/ui/tasks/{task['id']}/edit")
    # Each schedule and each webhook on a line of its own; the task repeats.
    assert textarea_value(page.text, "schedule") == "\n".join(TWICE)
    assert textarea_value(page.text, "webhook_url") == "\n".join(FAN_OUT)
    assert 'value="schedule" checked' in page.text
    form = FORM | {"schedule": "\n".join(TWICE), "webhook_url": "\n".join(FAN_OUT)}
    saved = client.post(
        f"/ui/tasks/{task['id']}/edit",
        data=form | {"name": "Renamed", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    after = client.get(f"/tasks/{task['id']}").json()
    assert after["name"] == "Renamed"
    assert after["schedules"] == TWICE and after["schedule"] is None
    assert after["webhook_urls"] == FAN_OUT and [t["index"] for t in after["targets"]] == [0, 1]


def test_one_line_left_makes_the_one_entry_forms(client: TestClient):
    csrf = sign_in(client)
    task = api_task(client, schedule=None, schedules=TWICE, webhook_url=None, webhook_urls=FAN_OUT)
    form = FORM | {"schedule": f"\n  {TWICE[1]}  \n\n", "webhook_url": f"{FAN_OUT[1]}\n"}
    saved = client.post(
        f"/ui/tasks/{task['id']}/edit", data=form | {"csrf_token": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    after = client.get(f"/tasks/{task['id']}").json()
    assert after["schedule"] == TWICE[1] and after["schedules"] is None
    assert after["webhook_url"] == FAN_OUT[1] and after["webhook_urls"] == [FAN_OUT[1]]


def test_a_new_task_from_lines_fans_out_and_a_bad_line_is_named_on_its_input(
    client: TestClient,
):
    csrf = sign_in(client)
    lines = {"schedule": "\n".join(TWICE), "webhook_url": "\n".join(FAN_OUT)}
    created = client.post(
        "/ui/tasks/new", data=FORM | lines | {"csrf_token": csrf}, follow_redirects=False
    )
    assert created.status_code == 303, created.text
    (task,) = client.get("/tasks").json()["tasks"]
    assert task["schedules"] == TWICE and task["webhook_urls"] == FAN_OUT
    for name, bad in (
        ("schedule", f"{TWICE[0]}\nnot a cron"),
        ("webhook_url", f"{FAN_OUT[0]}\nftp://x"),
    ):
        wrong = client.post("/ui/tasks/new", data=FORM | lines | {name: bad, "csrf_token": csrf})
        assert wrong.status_code == 422
        assert "field-error" in field_block(wrong.text, name), name
        # What was typed stays in the form, every line of it.
        assert textarea_value(wrong.text, name) == bad
    assert client.get("/tasks").json()["total"] == 1


def test_the_preview_of_several_schedules_shows_the_runs_of_each(client: TestClient):
    csrf = sign_in(client)
    lines = {"schedule": "0 9 * * *\n0 21 * * *", "timezone": "UTC", "action": "preview"}
    response = client.post("/ui/tasks/new", data=FORM | lines | {"csrf_token": csrf})
    assert response.status_code == 200
    times = re.findall(r'<time datetime="[^"]*T(\d\d:\d\d)', response.text)
    assert len(times) == 5 and set(times) == {"09:00", "21:00"}


def input_value(html: str, name: str) -> str:
    found = re.search(rf'<input id="{name}"[^>]*value="([^"]*)"', html)
    assert found, f"no input {name} on the page"
    return found.group(1)


RULES = {
    "start_at": "2030-01-01T08:00",
    "end_at": "2031-06-30T20:00",
    "max_runs": "40",
    "exclude": "2030-12-24, --12-25",
    "quiet_from": "22:00",
    "quiet_to": "07:00",
    "quiet_mode": "defer",
    "tags": "team, weekly",
}


def test_limits_exclusions_quiet_hours_and_tags_are_set_shown_and_cleared(client: TestClient):
    csrf = sign_in(client)
    form = FORM | {"timezone": "Europe/Paris"} | RULES
    created = client.post("/ui/tasks/new", data=form | {"csrf_token": csrf}, follow_redirects=False)
    assert created.status_code == 303, created.text
    (task,) = client.get("/tasks").json()["tasks"]
    assert task["start_at"] == "2030-01-01T07:00:00Z"  # 08:00 in Paris
    assert task["end_at"] == "2031-06-30T18:00:00Z"
    assert task["max_runs"] == 40 and task["exclude"] == ["2030-12-24", "--12-25"]
    assert task["quiet_hours"] == {"from": "22:00", "to": "07:00", "mode": "defer"}
    assert task["tags"] == ["team", "weekly"]
    page = client.get(f"/ui/tasks/{task['id']}/edit").text
    for name in ("start_at", "end_at", "max_runs", "exclude", "tags"):
        assert input_value(page, name) == RULES[name], name
    assert input_value(page, "quiet_hours") == "22:00" and input_value(page, "quiet_to") == "07:00"
    assert '<option value="defer" selected>' in page
    # Emptied inputs clear what they held.
    empty = dict.fromkeys(RULES, "") | {"quiet_mode": "skip"}
    saved = client.post(
        f"/ui/tasks/{task['id']}/edit",
        data=form | empty | {"csrf_token": csrf},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    after = client.get(f"/tasks/{task['id']}").json()
    assert [after[name] for name in ("start_at", "end_at", "max_runs", "exclude")] == [None] * 4
    assert after["quiet_hours"] is None and after["tags"] == []


def test_a_repeating_task_with_rules_can_become_a_one_time_task(client: TestClient):
    csrf = sign_in(client)
    task = api_task(client, exclude=["--12-25"], max_runs=3, tags=["kept"])
    once = FORM | RULES | {"kind": "once", "run_at": "2030-01-15T10:00", "tags": "kept"}
    saved = client.post(
        f"/ui/tasks/{task['id']}/edit", data=once | {"csrf_token": csrf}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    after = client.get(f"/tasks/{task['id']}").json()
    assert after["run_at"] and after["schedule"] is None
    assert after["exclude"] is None and after["max_runs"] is None and after["tags"] == ["kept"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"exclude": "2030-02-30"}, "exclude"),
        ({"exclude": "next christmas"}, "exclude"),
        ({"quiet_from": "22:00", "quiet_to": ""}, "quiet_hours"),
        ({"quiet_from": "25:00", "quiet_to": "07:00"}, "quiet_hours"),
        ({"max_runs": "0"}, "max_runs"),
        ({"start_at": "2031-01-01T00:00", "end_at": "2030-01-01T00:00"}, "end_at"),
        ({"tags": ", ".join(f"t{n}" for n in range(11))}, "tags"),
    ],
)
def test_a_wrong_rule_is_named_on_its_input_and_the_preview_says_so(
    client: TestClient, changes: dict, field: str
):
    csrf = sign_in(client)
    form = FORM | changes | {"csrf_token": csrf}
    wrong = client.post("/ui/tasks/new", data=form)
    assert wrong.status_code == 422, wrong.text
    assert "field-error" in field_block(wrong.text, field)
    assert client.get("/tasks").json()["total"] == 0
    # The preview of the same form answers, with the error or without runs; never a 500.
    previewed = client.post("/ui/tasks/new", data=form | {"action": "preview"})
    assert previewed.status_code in (200, 422)


def test_the_preview_follows_the_dates_with_no_run(client: TestClient):
    csrf = sign_in(client)
    now = datetime.now(UTC)
    first = now.replace(hour=9, minute=0, second=0, microsecond=0)
    first += timedelta(days=1) if first <= now + timedelta(minutes=1) else timedelta(0)
    excluded = first.date().isoformat()
    task = api_task(client, schedule="0 9 * * *", timezone="UTC", exclude=[excluded])
    page = client.get(f"/ui/tasks/{task['id']}/edit").text
    assert input_value(page, "exclude") == excluded
    form = FORM | {"schedule": "0 9 * * *", "timezone": "UTC", "exclude": excluded}
    response = client.post(
        f"/ui/tasks/{task['id']}/edit", data=form | {"action": "preview", "csrf_token": csrf}
    )
    assert response.status_code == 200
    runs = re.findall(r'<time datetime="(\d{4}-\d\d-\d\d)T', response.text)
    assert runs[0] == (first + timedelta(days=1)).date().isoformat() and excluded not in runs
    next_runs = client.get(f"/tasks/{task['id']}/next-runs", params={"count": 5}).json()
    assert [run["utc"][:10] for run in next_runs["next_runs"]] == runs


def test_the_task_page_shows_every_schedule_webhook_and_rule(client: TestClient, db):
    sign_in(client)
    hooks = [DISCORD_URL, "https://discord.com/api/webhooks/987654321/other-secret-token-value"]
    task = api_task(
        client,
        schedule=None,
        schedules=["0 9 * * MON-FRI", "30 17 * * FRI"],
        timezone="Europe/Paris",
        webhook_url=None,
        webhook_urls=hooks,
        max_runs=12,
        exclude=["--12-25"],
        quiet_hours={"from": "22:00", "to": "07:00", "mode": "defer"},
        tags=["ops"],
    )
    # The second webhook switched off by its failures, as the scheduler records it.
    with db() as session, session.begin():
        row = session.get(Task, uuid.UUID(task["id"]))
        off = {"status": "inactive", "status_reason": "deactivated after 4 failed attempts: x"}
        row.targets = [row.targets[0], row.targets[1] | off]
    page = client.get(f"/ui/tasks/{task['id']}").text
    assert "every weekday at 09:00" in page and "every Friday at 17:30" in page
    assert "<code>0 9 * * MON-FRI</code>" in page and "<code>30 17 * * FRI</code>" in page
    assert page.count('<li class="url">') == 2 and page.count("badge off") == 1
    assert "deactivated after 4 failed attempts" in page
    assert "12 runs (0 so far)" in page and "<code>--12-25</code>" in page
    assert "22:00 to 07:00: a run inside them waits for their end" in page and ">ops<" in page
    listing = client.get("/ui/tasks").text
    assert "every weekday at 09:00" in listing and "no schedule" not in listing
    # A key without tasks:write sees no webhook's secret part.
    key = new_key(client, "tasks:read")
    client.headers.pop("Authorization")
    client.cookies.clear()
    sign_in(client, key)
    hidden = client.get(f"/ui/tasks/{task['id']}").text
    assert SECRET not in hidden and "other-secret-token-value" not in hidden
    assert "/api/webhooks/987654321/***" in hidden
    client.headers["Authorization"] = f"Bearer {TEST_TOKEN}"


def test_the_task_list_filters_by_tag(client: TestClient):
    sign_in(client)
    api_task(client, name="Tagged", tags=["ops", "weekly"])
    api_task(client, name="Plain")
    listing = client.get("/ui/tasks").text
    assert 'href="/ui/tasks?tag=ops"' in listing  # each tag links to its filter
    tagged = client.get("/ui/tasks", params={"tag": " ops "}).text
    assert "Tagged" in tagged and "Plain" not in tagged and "1 task matches" in tagged
    assert 'id="tag" name="tag" value=" ops "' in tagged
    for hostile in ("nobody", "x" * 500, "a\x00b", "\u00e9t\u00e9", '"]}', "%_\\"):
        for name in ("tag", "search"):
            response = client.get("/ui/tasks", params={name: hostile})
            assert response.status_code == 200, (name, hostile)
            assert "No tasks match these filters" in response.text, (name, hostile)


def test_pause_resume_and_delete_with_confirmation(client: TestClient):
    csrf = sign_in(client)
    task = api_task(client)
    path = f"/ui/tasks/{task['id']}"
    client.post(f"{path}/pause", data={"csrf_token": csrf})
    paused = client.get(f"/tasks/{task['id']}").json()
    assert paused["status"] == "inactive" and paused["next_run_at"] is None
    page = client.get(path)
    assert f'action="{path}/resume"' in page.text and f'action="{path}/pause"' not in page.text
    client.post(f"{path}/resume", data={"csrf_token": csrf})
    assert client.get(f"/tasks/{task['id']}").json()["status"] == "active"
    confirm = client.get(f"{path}/delete")
    assert "cannot be undone" in confirm.text
    assert client.get(f"/tasks/{task['id']}").status_code == 200  # asking deletes nothing
    gone = client.post(f"{path}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.headers["location"] == "/ui/tasks?done=deleted"
    assert client.get(f"/tasks/{task['id']}").status_code == 404
    assert client.get(path).status_code == 404


def test_an_already_delivered_one_time_task_cannot_be_resumed(client: TestClient, db):
    csrf = sign_in(client)
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    task = api_task(client, schedule=None, run_at=past, status="inactive")
    with db.begin() as session:
        session.execute(
            update(Task)
            .where(Task.name == "Nightly")
            .values(last_status="success", last_run_at=datetime.now(UTC))
        )
    response = client.post(f"/ui/tasks/{task['id']}/resume", data={"csrf_token": csrf})
    assert response.status_code == 409
    assert "already delivered" in response.text


def test_a_read_only_key_sees_no_write_buttons_and_cannot_post(client: TestClient):
    task = api_task(client)
    key = new_key(client, "tasks:read", "logs:read")
    client.headers.pop("Authorization")
    csrf = sign_in(client, key)
    listing = client.get("/ui/tasks")
    assert "Stand-up" not in listing.text and "Nightly" in listing.text
    assert "/ui/tasks/new" not in listing.text
    page = client.get(f"/ui/tasks/{task['id']}")
    assert page.status_code == 200
    assert 'method="post" action="/ui/tasks/' not in page.text
    assert "/edit" not in page.text and "/delete" not in page.text
    assert SECRET not in page.text and "/api/webhooks/123456789/***" in page.text
    for path in ("/ui/tasks/new", f"/ui/tasks/{task['id']}/edit", f"/ui/tasks/{task['id']}/delete"):
        assert client.get(path).status_code == 403, path
    for path, form in [
        ("/ui/tasks/new", FORM),
        (f"/ui/tasks/{task['id']}/pause", {}),
        (f"/ui/tasks/{task['id']}/run", {}),
        (f"/ui/tasks/{task['id']}/edit", FORM),
        (f"/ui/tasks/{task['id']}/delete", {}),
    ]:
        response = client.post(path, data=form | {"csrf_token": csrf})
        assert response.status_code == 403, path
        assert "lacks the scope tasks:write" in response.text
    client.headers["Authorization"] = f"Bearer {TEST_TOKEN}"
    after = client.get(f"/tasks/{task['id']}").json()
    assert after["status"] == "active" and client.get("/tasks").json()["total"] == 1


def test_a_key_sees_only_what_its_scopes_allow(client: TestClient):
    tasks_only = new_key(client, "tasks:read")
    logs_only = new_key(client, "logs:read")
    sign_in(client, tasks_only)
    overview = client.get("/ui")
    assert 'href="/ui/tasks"' in overview.text and 'href="/ui/logs"' not in overview.text
    assert client.get("/ui/logs").status_code == 403
    client.cookies.clear()
    sign_in(client, logs_only)
    assert client.get("/ui/tasks").status_code == 403
    assert client.get("/ui/logs").status_code == 200


def test_revoking_a_key_ends_its_sessions(client: TestClient):
    key = new_key(client, "tasks:read")
    sign_in(client, key)
    key_id = client.get("/api-keys").json()["api_keys"][0]["id"]
    assert client.delete(f"/api-keys/{key_id}").status_code == 200
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_sign_out_deletes_the_cookie(client: TestClient):
    csrf = sign_in(client)
    response = client.post("/ui/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?done=signed-out"
    assert 'insignia_session=""' in response.headers["set-cookie"]
    assert client.get("/ui", follow_redirects=False).status_code == 303


def add_log(client: TestClient, task_id: str, status: str, at: datetime, message: str) -> None:
    body = {
        "task_id": task_id,
        "status": status,
        "execution_time": at.isoformat(),
        "message": message,
        "http_status": 200 if status == "success" else 500,
        "duration_ms": 12,
    }
    assert client.post("/task-logs", json=body).status_code == 201


def test_logs_filter_like_the_api(client: TestClient):
    csrf = sign_in(client)
    assert csrf
    first, second = api_task(client, name="First"), api_task(client, name="Second")
    base = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    add_log(client, first["id"], "success", base, "first-ok")
    add_log(client, first["id"], "failed", base + timedelta(hours=1), "first-failed")
    add_log(client, second["id"], "failed", base + timedelta(hours=2), "second-failed")
    everything = client.get("/ui/logs").text
    assert everything.index("second-failed") < everything.index("first-failed")  # newest first
    failed = client.get("/ui/logs?status=failed").text
    assert "first-failed" in failed and "second-failed" in failed and "first-ok" not in failed
    one_task = client.get(f"/ui/logs?task_id={first['id']}").text
    assert "second-failed" not in one_task and "first-ok" in one_task
    window = client.get("/ui/logs?since=2026-11-01T09:30&until=2026-11-01T10:30").text
    assert "first-failed" in window and "first-ok" not in window and "second-failed" not in window
    assert 'value="2026-11-01T09:30"' in field_block(window, "since")
    wrong = client.get("/ui/logs?since=yesterday")
    assert wrong.status_code == 422
    assert "not a date and time" in field_block(wrong.text, "since")


def test_logs_and_tasks_page_by_cursor(client: TestClient):
    sign_in(client)
    task = api_task(client)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(53):
        add_log(client, task["id"], "success", base + timedelta(minutes=i), f"log-{i:02}-end")
    first = client.get("/ui/logs").text
    assert first.count("-end") == 50 and "log-52-end" in first and "log-02-end" not in first
    older = re.search(r'href="(/ui/logs\?cursor=[^"]+)" rel="next"', first).group(1)
    second = client.get(older.replace("&amp;", "&")).text
    assert second.count("-end") == 3 and "log-00-end" in second
    for i in range(26):
        api_task(client, name=f"bulk {i:02}")
    tasks = client.get("/ui/tasks?search=bulk").text
    assert "26 tasks match" in tasks
    assert tasks.count('<th scope="row"') == 25
    following = re.search(r'href="(/ui/tasks\?[^"]*cursor=[^"]+)" rel="next"', tasks).group(1)
    rest = client.get(following.replace("&amp;", "&")).text
    assert rest.count('<th scope="row"') == 1 and "bulk 00" in rest


def test_tasks_filter_by_status(client: TestClient):
    sign_in(client)
    api_task(client, name="Running")
    api_task(client, name="Stopped", status="inactive")
    active = client.get("/ui/tasks?status=active").text
    assert "Running" in active and "Stopped" not in active
    inactive = client.get("/ui/tasks?status=inactive").text
    assert "Stopped" in inactive and "paused through the API" in inactive


def test_the_overview_counts_tasks_and_recent_deliveries(client: TestClient, db):
    sign_in(client)
    failing = api_task(client, name="Failing")
    api_task(client, name="Fine")
    api_task(client, name="Off", status="inactive")
    resume_at = datetime.now(UTC) + timedelta(minutes=5)
    with db.begin() as session:
        session.execute(
            update(Task)
            .where(Task.name == "Failing")
            .values(
                status="inactive",
                last_status="failed",
                last_run_at=datetime.now(UTC),
                status_reason="deactivated after 4 failed attempts: HTTP 500; trying again at x",
                resume_at=resume_at,
            )
        )
    now = datetime.now(UTC)
    add_log(client, failing["id"], "failed", now - timedelta(minutes=5), "boom")
    add_log(client, failing["id"], "success", now - timedelta(hours=1), "fine")
    add_log(client, failing["id"], "failed", now - timedelta(hours=30), "old failure")
    page = client.get("/ui").text
    numbers = dict(
        (label.strip(), int(number))
        for number, label in re.findall(
            r'<span class="number">(\d+)</span> <span class="label">([^<]+)</span>', page
        )
    )
    assert numbers == {
        "active tasks": 1,
        "inactive tasks": 2,
        "failing tasks (last delivery failed)": 1,
        "deliveries in the last 24 h": 2,
        "failed deliveries in the last 24 h": 1,
    }
    assert "deactivated after 4 failed attempts: HTTP 500" in page
    assert "trying again at x" not in page and "Will be tried again" in page


def test_a_template_task_shows_what_its_next_run_sends(client: TestClient):
    sign_in(client)
    task = api_task(
        client,
        schedule="0 9 * * *",
        timezone="Europe/Paris",
        template=True,
        payload={"content": "{{ task.name }} at {{ scheduled_for|local('%H:%M') }}"},
    )
    page = client.get(f"/ui/tasks/{task['id']}").text
    assert "&#34;Nightly at 09:00&#34;" in page


def test_pages_load_nothing_from_elsewhere(client: TestClient):
    sign_in(client)
    page = client.get("/ui")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith(("/ui", "#")) for source in sources), sources
    css = client.get("/ui/static/ui.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/ui/static/../main.py").status_code == 404
    assert "/ui" not in client.get("/openapi.json").json()["paths"]


def test_an_unknown_task_is_a_404_page(client: TestClient):
    sign_in(client)
    for path in ("/ui/tasks/00000000-0000-0000-0000-000000000000", "/ui/tasks/not-an-id"):
        response = client.get(path)
        assert response.status_code == 404
        assert "Task not found" in response.text
