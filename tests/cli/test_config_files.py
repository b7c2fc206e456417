"""Task files, by themselves: what `apply` reads from YAML or JSON, and what `export` writes."""

import json

import pytest

from app.cli.config_files import FileProblem, export_document, exported_task, read_tasks
from app.cli.plan import Action, plan
from tests.cli.test_plan import on_server


def write(tmp_path, text: str, name: str = "tasks.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_yaml_tasks_get_their_defaults_and_keep_yaml_dates_as_text(tmp_path):
    path = write(
        tmp_path,
        "tasks:\n"
        "  - name: Launch\n"
        "    run_at: 2030-01-15 10:00:00\n"
        "    timezone: America/New_York\n"
        "    webhook_url: ' https://hooks.example.com/launch '\n"
        "    payload: {when: 2030-01-15, n: 1.5}\n",
    )
    [task] = read_tasks(path)
    assert task["run_at"] == "2030-01-15T10:00:00"
    assert task["payload"] == {"when": "2030-01-15", "n": 1.5}
    assert task["webhook_url"] == "https://hooks.example.com/launch"
    assert task["max_retry"] == 3 and task["catchup"] == "latest" and task["schedule"] is None
    assert "status" not in task


def test_a_list_of_tasks_in_json_with_read_only_fields_is_read(tmp_path):
    shown = on_server("5b0f3c0e-8c1a-4a53-9a53-2f8e3c7d9b10", name="B", schedule="0 9 * * mon")
    path = write(tmp_path, json.dumps([shown]), "tasks.json")
    [task] = read_tasks(path)
    assert task["schedule"] == "0 9 * * MON"  # as the API writes it
    assert task["status"] == "active" and "id" not in task


def test_every_bad_task_and_field_is_named(tmp_path):
    path = write(
        tmp_path,
        "- {name: Good, schedule: '@daily', webhook_url: 'https://a.example.com'}\n"
        "- {name: Launch, schedule: '0 25 * * *', webhook_url: 'https://a.example.com',"
        " max_retry: 50}\n"
        "- {name: Typo, schedulle: '@daily', webhook_url: 'https://a.example.com'}\n"
        "- {schedule: '@daily'}\n"
        "- just text\n",
    )
    with pytest.raises(FileProblem) as bad:
        read_tasks(path)
    assert bad.value.problems == [
        f"{path}: task \"Launch\" (#2): schedule: invalid cron expression '0 25 * * *': "
        "hour must be 0-23",
        f'{path}: task "Launch" (#2): max_retry: Input should be less than or equal to 20',
        f'{path}: task "Typo" (#3): schedulle: not a task field',
        f"{path}: task #4: name: Field required",
        f"{path}: task #4: webhook_url: Field required",
        f"{path}: task #5: Input should be a valid dictionary or instance of TaskCreate",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tasks: {name: A}\n", 'expected a list of tasks, or "tasks:" with a list'),
        ("tasks: [\n", "not YAML or JSON"),
        ("other: []\n", 'expected a list of tasks, or "tasks:" with a list'),
    ],
)
def test_a_file_that_is_not_a_list_of_tasks_is_refused(tmp_path, text, problem):
    path = write(tmp_path, text)
    with pytest.raises(FileProblem) as bad:
        read_tasks(path)
    assert problem in bad.value.problems[0]


def test_an_empty_file_has_no_tasks(tmp_path):
    assert read_tasks(write(tmp_path, "")) == []
    assert read_tasks(write(tmp_path, "tasks:\n")) == []


def test_export_leaves_out_defaults_and_writes_run_at_in_the_tasks_timezone():
    one_time = on_server(
        "1", schedule=None, run_at="2030-01-15T15:00:00Z", timezone="America/New_York"
    )
    assert exported_task(one_time) == {
        "name": "A",
        "run_at": "2030-01-15T10:00:00-05:00",
        "timezone": "America/New_York",
        "webhook_url": "https://hooks.example.com/a",
    }
    paused = exported_task(on_server("2", status="inactive", max_retry=0))
    assert (paused["status"], paused["max_retry"]) == ("inactive", 0)
    # Inactive until the service tries it again by itself: the service manages its status.
    resuming = on_server("3", status="inactive", resume_at="2026-12-01T00:00:00Z")
    assert "status" not in exported_task(resuming)


def test_export_writes_one_form_of_webhooks_and_no_empty_tags():
    single = on_server("4", webhook_urls=["https://hooks.example.com/a"], tags=[])
    exported = exported_task(single)
    assert "webhook_urls" not in exported and "tags" not in exported
    urls = ["https://hooks.example.com/a", "https://hooks.example.com/b"]
    fan_out = exported_task(on_server("5", webhook_urls=urls, tags=["ops"]))
    assert "webhook_url" not in fan_out
    assert (fan_out["webhook_urls"], fan_out["tags"]) == (urls, ["ops"])


TRICKY = [
    {"content": "yes"},
    {"content": "@daily", "n": "0123", "on": True, "off": None, "f": 1.5, "i": 7},
    {"content": "two\nlines  \n", "emoji": "\u2728 caf\u00e9", "quote": 'it\'s "quoted"'},
    {"embeds": [{"title": "#1: a [list]", "fields": [{"name": "- dash", "value": "*"}]}]},
]


def test_what_export_writes_reads_back_as_the_same_tasks(tmp_path):
    server = [
        on_server(str(n), name=f"T{n}", payload=payload, template=n % 2 == 0)
        for n, payload in enumerate(TRICKY)
    ]
    server.append(on_server("9", name="yes", schedule=None, run_at="2030-01-01T00:00:00Z"))
    text = export_document(server)
    assert text.startswith("# ")
    read_back = read_tasks(write(tmp_path, text))
    assert [change.action for change in plan(read_back, server)] == [Action.UNCHANGED] * 5
