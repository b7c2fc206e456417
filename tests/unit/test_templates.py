"""Payload templates: names, filters, JSON safety, save-time messages, sandbox and limits."""

import copy
import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from app import templates
from app.templates import (
    DISCORD_STYLES,
    MAX_RENDERED_CHARS,
    MAX_TEMPLATE_CHARS,
    NAMES,
    SAMPLE_CONTEXT,
    TemplateContext,
    TemplateError,
    check_payload_template,
    render_payload,
)

TASK_ID = uuid.UUID("3f2b8c1e-4d5a-4e6f-8a7b-9c0d1e2f3a4b")
OCCURRENCE_ID = uuid.UUID("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d")
SCHEDULED_FOR = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SCHEDULED_UNIX = 1796112000  # 2026-12-01T08:00:00Z
CONTEXT = TemplateContext(
    task_id=TASK_ID,
    task_name="Daily stand-up",
    timezone="Europe/Paris",
    scheduled_for=SCHEDULED_FOR,
    occurrence_id=OCCURRENCE_ID,
    attempt=2,
    run_number=17,
    next_run_at=SCHEDULED_FOR + timedelta(days=1),
)
# Seconds a refused template may take at most: without the limits, each would run for minutes
# or exhaust memory.
FAST_SECONDS = 2.0


def render(template: str, **changes: object) -> str:
    """One template string rendered for CONTEXT with `changes` applied."""
    context = dataclasses.replace(CONTEXT, **changes)
    return render_payload({"v": template}, context)["v"]


def refusal(template: str) -> str | None:
    """What the save-time check says about one template string (at path `v`)."""
    return check_payload_template({"v": template})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ task.id }}", str(TASK_ID)),
        ("{{ task.name }}", "Daily stand-up"),
        ("{{ task.timezone }}", "Europe/Paris"),
        ("{{ task['name'] }}", "Daily stand-up"),
        ("{{ scheduled_for }}", "2026-12-01 08:00:00+00:00"),
        ("{{ occurrence_id }}", str(OCCURRENCE_ID)),
        ("{{ attempt }}", "2"),
        ("{{ run_number }}", "17"),
        ("{{ next_run_at }}", "2026-12-02 08:00:00+00:00"),
        ("{{ scheduled_for.year }}-{{ scheduled_for.month }}", "2026-12"),
        ("#{{ run_number }} of {{ task.name|upper }}", "#17 of DAILY STAND-UP"),
        ("{% if attempt > 1 %}retry {{ attempt - 1 }}{% else %}first{% endif %}", "retry 1"),
        ("{{ 'a' ~ run_number ~ 'b' }}", "a17b"),
        ("{{ '-' * 3 }}{{ run_number * 2 }}{{ run_number % 5 }}{{ 2 ** 10 }}", "---3421024"),
        ("{{ task.name|truncate(9, true, '', 0) }}|{{ task.name|length }}", "Daily sta|14"),
        ("{{ 'yes' if next_run_at else 'no' }}", "yes"),
        ("{{ run_number is odd }} {{ task.name[:5] }}", "True Daily"),
        ("{{ none }}{{ true }}", "True"),
        ("{{ task.name|urlencode }}", "Daily%20stand-up"),
    ],
)
def test_names_and_expressions(template: str, expected: str) -> None:
    assert render(template) == expected


def test_every_discord_style() -> None:
    for style in DISCORD_STYLES:
        assert (
            render(f"{{{{ scheduled_for|discord('{style}') }}}}") == f"<t:{SCHEDULED_UNIX}:{style}>"
        )
    assert DISCORD_STYLES == ("t", "T", "d", "D", "f", "F", "R")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ scheduled_for|discord }}", f"<t:{SCHEDULED_UNIX}:f>"),
        ('{{ next_run_at|discord("R") }}', f"<t:{SCHEDULED_UNIX + 86400}:R>"),
        ("{{ scheduled_for|iso }}", "2026-12-01T08:00:00Z"),
        ("{{ next_run_at|iso }}", "2026-12-02T08:00:00Z"),
        ("{{ scheduled_for|local }}", "2026-12-01 09:00"),
        ('{{ scheduled_for|local("%A %H:%M") }}', "Tuesday 09:00"),
        ('{{ scheduled_for|local(format="%d/%m %Z") }}', "01/12 CET"),
    ],
)
def test_filters(template: str, expected: str) -> None:
    assert render(template) == expected


def test_iso_shows_microseconds_only_when_present_and_is_always_utc() -> None:
    moment = SCHEDULED_FOR.replace(microsecond=120)
    assert render("{{ scheduled_for|iso }}", scheduled_for=moment) == "2026-12-01T08:00:00.000120Z"
    in_tokyo = SCHEDULED_FOR.astimezone(timezone(timedelta(hours=9)))
    assert render("{{ scheduled_for|iso }}", scheduled_for=in_tokyo) == "2026-12-01T08:00:00Z"
    assert render("{{ scheduled_for }}", scheduled_for=in_tokyo) == "2026-12-01 08:00:00+00:00"
    assert render("{{ scheduled_for|discord }}", scheduled_for=in_tokyo) == (
        f"<t:{SCHEDULED_UNIX}:f>"
    )


@pytest.mark.parametrize(
    ("zone", "instant", "expected"),
    [
        # Europe/Paris springs forward at 01:00Z on 2026-03-29 (02:00 CET -> 03:00 CEST)...
        ("Europe/Paris", datetime(2026, 3, 29, 0, 30, tzinfo=UTC), "2026-03-29 01:30 CET"),
        ("Europe/Paris", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "2026-03-29 03:30 CEST"),
        # ...and falls back at 01:00Z on 2026-10-25: 02:30 happens twice.
        ("Europe/Paris", datetime(2026, 10, 25, 0, 30, tzinfo=UTC), "2026-10-25 02:30 CEST"),
        ("Europe/Paris", datetime(2026, 10, 25, 1, 30, tzinfo=UTC), "2026-10-25 02:30 CET"),
        # America/New_York springs forward at 07:00Z on 2026-03-08 (02:00 EST -> 03:00 EDT).
        ("America/New_York", datetime(2026, 3, 8, 6, 30, tzinfo=UTC), "2026-03-08 01:30 EST"),
        ("America/New_York", datetime(2026, 3, 8, 7, 30, tzinfo=UTC), "2026-03-08 03:30 EDT"),
        ("America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "2026-11-01 01:30 EDT"),
        ("America/New_York", datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "2026-11-01 01:30 EST"),
        ("Asia/Kolkata", datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "2026-03-29 07:00 IST"),
    ],
)
def test_local_follows_the_task_zone_across_dst(
    zone: str, instant: datetime, expected: str
) -> None:
    template = '{{ scheduled_for|local("%Y-%m-%d %H:%M %Z") }}'
    assert render(template, timezone=zone, scheduled_for=instant) == expected
    # The instant itself does not move with the zone.
    unix = int(instant.timestamp())
    assert render("{{ scheduled_for|discord('R') }}", timezone=zone, scheduled_for=instant) == (
        f"<t:{unix}:R>"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ next_run_at }}", ""),
        ("{{ next_run_at|discord }}", ""),
        ('{{ next_run_at|discord("R") }}', ""),
        ("{{ next_run_at|iso }}", ""),
        ("{{ next_run_at|local }}", ""),
        ('{{ next_run_at|local("%H:%M") }}', ""),
        ("Next: {% if next_run_at %}{{ next_run_at|iso }}{% else %}none{% endif %}", "Next: none"),
        ("{{ next_run_at is none }}", "True"),
    ],
)
def test_none_renders_as_empty_string(template: str, expected: str) -> None:
    assert render(template, next_run_at=None) == expected


def test_a_bad_style_is_an_error_even_for_none() -> None:
    with pytest.raises(TemplateError, match="unknown style"):
        render("{{ next_run_at|discord('x') }}", next_run_at=None)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        (
            "{{ scheduled_for|discord('x') }}",
            "discord: unknown style 'x' (use one of t, T, d, D, f, F, R)",
        ),
        (
            "{{ scheduled_for|discord('') }}",
            "discord: unknown style '' (use one of t, T, d, D, f, F, R)",
        ),
        (
            "{{ scheduled_for|discord('RR') }}",
            "discord: unknown style 'RR' (use one of t, T, d, D, f, F, R)",
        ),
        (
            "{{ scheduled_for|discord(1) }}",
            "discord: unknown style 1 (use one of t, T, d, D, f, F, R)",
        ),
        ("{{ task.name|discord }}", "discord: expected an aware datetime, got str"),
        ("{{ attempt|iso }}", "iso: expected an aware datetime, got int"),
        ("{{ occurrence_id|local }}", "local: expected an aware datetime, got UUID"),
        ("{{ scheduled_for.min|iso }}", "iso: expected an aware datetime, got a naive datetime"),
        ("{{ scheduled_for|local(1) }}", "local: the format must be a string, got int"),
        ("{{ scheduled_for.nope|iso }}", "'datetime.datetime object' has no attribute 'nope'"),
        ("{{ 1 // (attempt - 1) }}", "ZeroDivisionError: integer division or modulo by zero"),
    ],
)
def test_filter_and_runtime_errors(template: str, reason: str) -> None:
    assert refusal(template) == f"v: {reason}"
    with pytest.raises(TemplateError) as caught:
        render(template, attempt=1)
    assert str(caught.value) == f"v: {reason}"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "name",
    [
        'say "hi"',
        "back\\slash \\n \\u0000",
        "line\nbreak\r\nand\ttab",
        "</script><script>alert(1)</script>",
        "{{ task.id }} {% if %} {# x #}",
        '"}, "x": 1, "y": "',
        "', 'x': 1",
        "ünïcödé 中文 🎉 \u2028\u2029",
    ],
)
def test_values_become_exact_json_strings(name: str) -> None:
    payload = {"content": "Hi {{ task.name }}!", "embeds": [{"title": "{{ task.name }}"}]}
    result = render_payload(payload, dataclasses.replace(CONTEXT, task_name=name))
    expected = {"content": f"Hi {name}!", "embeds": [{"title": name}]}
    assert result == expected
    assert json.loads(json.dumps(result)) == expected
    assert list(result) == ["content", "embeds"]
    assert list(result["embeds"][0]) == ["title"]


def test_structure_keys_and_other_values_are_kept() -> None:
    payload = {
        "{{ task.name }}": "key untouched",
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "number_text": "{{ run_number }}",
        "deep": [[{"a": [{"b": "{{ attempt }}", "{% if %}": ["x", 1, {"c": "{{ task.id }}"}]}]}]],
        "plain": "line\r\nbreak\n{ not } a template %}",
        "empty": "",
        "list": [],
    }
    original = copy.deepcopy(payload)
    result = render_payload(payload, CONTEXT)
    assert result == {
        "{{ task.name }}": "key untouched",
        "count": 3,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "number_text": "17",
        "deep": [[{"a": [{"b": "2", "{% if %}": ["x", 1, {"c": str(TASK_ID)}]}]}]],
        "plain": "line\r\nbreak\n{ not } a template %}",
        "empty": "",
        "list": [],
    }
    assert payload == original  # the input is not changed
    assert isinstance(result["number_text"], str)
    assert type(result["flag"]) is bool and type(result["count"]) is int


def test_a_template_keeps_its_trailing_newline() -> None:
    assert render("{{ attempt }}\n") == "2\n"
    assert render("{% raw %}{{ attempt }}{% endraw %} {# note #}") == "{{ attempt }} "


def test_rendering_is_deterministic_and_retries_differ_only_in_attempt() -> None:
    payload = {
        "a": "attempt {{ attempt }}",
        "b": "{{ task.id }} {{ occurrence_id }} {{ run_number }} {{ scheduled_for|iso }}",
        "c": "{{ scheduled_for|discord('R') }} {{ next_run_at|local }} {{ task }}",
    }
    first = render_payload(payload, dataclasses.replace(CONTEXT, attempt=1))
    assert render_payload(payload, dataclasses.replace(CONTEXT, attempt=1)) == first
    retry = render_payload(payload, dataclasses.replace(CONTEXT, attempt=3))
    assert (first["a"], retry["a"]) == ("attempt 1", "attempt 3")
    assert (first["b"], first["c"]) == (retry["b"], retry["c"])


def test_each_template_string_compiles_once() -> None:
    templates._compile.cache_clear()
    payload = {"a": "{{ attempt }}", "b": ["{{ attempt }}", "plain"], "c": {"d": "{{ attempt }}"}}
    render_payload(payload, CONTEXT)
    render_payload(payload, dataclasses.replace(CONTEXT, attempt=5))
    info = templates._compile.cache_info()
    assert (info.misses, info.hits) == (1, 5)  # "plain" is not a template: never compiled


def test_context_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(CONTEXT, scheduled_for=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(CONTEXT, next_run_at=datetime(2026, 1, 1))


def test_the_sample_context_accepts_every_name_and_filter() -> None:
    every = " ".join(
        [
            *(f"{{{{ {name} }}}}" for name in NAMES),
            "{{ task.id }} {{ task.name }} {{ task.timezone }}",
            *(f"{{{{ next_run_at|discord('{style}') }}}}" for style in DISCORD_STYLES),
            "{{ scheduled_for|discord }} {{ scheduled_for|iso }} {{ next_run_at|iso }}",
            '{{ scheduled_for|local }} {{ next_run_at|local("%A %H:%M") }}',
        ]
    )
    assert (
        check_payload_template({"content": every, "embeds": [{"title": "{{ attempt }}"}]}) is None
    )
    rendered = render_payload({"v": every}, SAMPLE_CONTEXT)["v"]
    assert str(SAMPLE_CONTEXT.task_id) in rendered and "<t:" in rendered


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"embeds": [{"title": "{{ foo }}"}]}, "embeds[0].title: unknown name 'foo'"),
        ({"content": "{{ task.foo }}"}, "content: unknown name 'task.foo'"),
        ({"content": "{{ task['foo'] }}"}, "content: unknown name 'task.foo'"),
        # Unknown names are found in branches the sample does not take, too.
        (
            {"content": "{% if attempt > 5 %}{{ later }}{% endif %}"},
            "content: unknown name 'later'",
        ),
        (
            {"content": "{{ x"},
            "content: syntax error: unexpected end of template, expected 'end of print statement'.",
        ),
        (
            {"a": {"b c": ["fine", "{% if %}"]}},
            """a["b c"][1]: syntax error: Expected an expression, got 'end of statement block'""",
        ),
        (
            {"content": "line 1\n{{ }}"},
            "content: syntax error: Expected an expression, got 'end of print statement' (line 2)",
        ),
        ({"content": "{# open comment"}, "content: syntax error: Missing end of comment tag"),
        ({"content": "{{ task.name|shout }}"}, "content: unknown filter 'shout'"),
        ({"content": "{{ attempt is big }}"}, "content: unknown test 'big'"),
        ({"content": "{{ attempt|round }}"}, "content: unknown filter 'round'"),
        ({"a": "{{ one }}", "b": "{{ two }}"}, "a: unknown name 'one'"),  # the first problem
    ],
)
def test_save_time_messages_name_the_path(payload: dict, message: str) -> None:
    assert check_payload_template(payload) == message
    with pytest.raises(TemplateError) as caught:
        render_payload(payload, CONTEXT)
    assert str(caught.value) == message


def test_valid_payloads_pass_the_save_time_check() -> None:
    assert check_payload_template({}) is None
    assert check_payload_template({"content": "no template here {x}", "n": 1}) is None
    assert check_payload_template({"content": "Run {{ run_number }} of {{ task.name }}"}) is None


CALL = "calling a function or method (filters take arguments: value|filter(arg))"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ ''.__class__ }}", "not allowed: private attribute '__class__'"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", f"not allowed: {CALL}"),
        ("{{ ''.__class__.__mro__[1] }}", "not allowed: private attribute '__mro__'"),
        ("{{ cycler.__init__.__globals__ }}", "not allowed: private attribute '__globals__'"),
        ("{{ cycler }}", "unknown name 'cycler'"),
        ("{{ self }}", "unknown name 'self'"),
        (
            "{{ self._TemplateReference__context }}",
            "not allowed: private attribute '_TemplateReference__context'",
        ),
        ("{{ task['__class__'] }}", "not allowed: private attribute '__class__'"),
        (
            "{{ task.__dataclass_fields__ }}",
            "not allowed: private attribute '__dataclass_fields__'",
        ),
        (
            "{{ ''['__cla' ~ 'ss__'] }}",
            "not allowed: access to attribute '__class__' of 'str' object is unsafe.",
        ),
        (
            "{{ task.name.upper }}",
            "not allowed: access to attribute 'upper' of 'str' object is unsafe.",
        ),
        (
            "{{ 'x'.format }}",
            "not allowed: access to attribute 'format' of 'str' object is unsafe.",
        ),
        (
            "{{ scheduled_for.astimezone|iso }}",
            "not allowed: access to attribute 'astimezone' of 'datetime' object is unsafe.",
        ),
        ("{{ task.name.upper() }}", f"not allowed: {CALL}"),
        ("{{ '{0.__class__}'.format(task) }}", f"not allowed: {CALL}"),
        ("{{ range(3) }}", f"not allowed: {CALL}"),
        ("{{ range }}", "unknown name 'range'"),
        ("{{ lipsum }}", "unknown name 'lipsum'"),
        ("{{ namespace }}", "unknown name 'namespace'"),
        ("{{ joiner }}", "unknown name 'joiner'"),
        ("{{ dict }}", "unknown name 'dict'"),
        ("{% for c in task.name %}{{ c }}{% endfor %}", "not allowed: {% for %}"),
        ("{% set a = 1 %}", "not allowed: {% set %}"),
        ("{% set a %}x{% endset %}", "not allowed: {% set %}"),
        ("{% macro f() %}{% endmacro %}", "not allowed: {% macro %}"),
        ("{% include 'x' %}", "not allowed: {% include %}"),
        ("{% extends 'x' %}", "not allowed: {% extends %}"),
        ("{% import 'x' as y %}", "not allowed: {% import %}"),
        ("{% from 'x' import y %}", "not allowed: {% from %}"),
        ("{% with a = 1 %}{% endwith %}", "not allowed: {% with %}"),
        ("{% block b %}{% endblock %}", "not allowed: {% block %}"),
        ("{% filter upper %}x{% endfilter %}", "not allowed: {% filter %}"),
        ("{% autoescape false %}x{% endautoescape %}", "not allowed: {% autoescape %}"),
        ("{{ {'a': 1} }}", "not allowed: Dict expression"),
        ("{{ '%s' % task.name }}", "not allowed: formatting a string with '%' (use filters)"),
        ("{{ [task.name] * 2 }}", "not allowed: repeating a list with '*'"),
    ],
)
def test_sandbox_refusals(template: str, reason: str) -> None:
    assert refusal(template) == f"v: {reason}"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        # 10**10 loop iterations.
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "not allowed: {% for %}",
        ),
        # 10 GB strings.
        ("{{ 'x' * 10**10 }}", "'*' would make 10000000000 characters (at most 16384)"),
        ("{{ 10**10 * 'x' }}", "'*' would make 10000000000 characters (at most 16384)"),
        (
            "{{ occurrence_id.bytes * 10**9 }}",
            "'*' would make 16000000000 characters (at most 16384)",
        ),
        ("{{ '%0999999999d' % 1 }}", "not allowed: formatting a string with '%' (use filters)"),
        ("{{ '{:>9999999999}'.format(1) }}", f"not allowed: {CALL}"),
        ("{{ 'x'.ljust(10**10) }}", f"not allowed: {CALL}"),
        ("{{ 'x'|center(10**10) }}", "unknown filter 'center'"),
        ("{{ 'x'|indent(10**10) }}", "unknown filter 'indent'"),
        ("{{ 12345|round(-10**9) }}", "unknown filter 'round'"),
        # Doubling a string 40 times (a terabyte), and exponential recursion.
        (
            "{% set a = 'x' * 16000 %}" + "{% set a = a ~ a %}" * 40 + "{{ a }}",
            "not allowed: {% set %}",
        ),
        (
            "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
            "not allowed: {% macro %}",
        ),
        # Integers of hundreds of millions of bits.
        ("{{ 9 ** (9 ** 9) }}", "'**' would make an integer over 4096 bits"),
        ("{{ 2 ** (2 ** 4000) }}", "'**' would make an integer over 4096 bits"),
        ("{{ (2 ** 4000) * (2 ** 4000) }}", "'*' would make an integer over 4096 bits"),
        # Output: 900 strings of 16000 characters (14 MB) stop at the limit.
        ("{{ 'x' * 16000 }}" * 900, "renders to more than 16384 characters"),
        # Source and nesting.
        ("{{ attempt }}" + "x" * MAX_TEMPLATE_CHARS, "template longer than 16384 characters"),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nested too deeply"),
        ("{{ " + "-" * 10000 + "1 }}", "nested too deeply"),
        ("{{ attempt" + "|string" * 1000 + " }}", "nested too deeply"),
    ],
)
def test_resource_limits_refuse_fast(template: str, reason: str) -> None:
    started = time.perf_counter()
    message = refusal(template)
    elapsed = time.perf_counter() - started
    assert message == f"v: {reason}"
    assert elapsed < FAST_SECONDS


def test_a_growing_filter_chain_stops_at_the_limit() -> None:
    # Each urlencode of a string of "%" signs grows it; 40 passes would make megabytes.
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=r"^v: filter 'urlencode' made \d+ characters"):
        render("{{ task.name" + "|urlencode" * 40 + " }}", task_name="é" * 200)
    assert time.perf_counter() - started < FAST_SECONDS


def test_limits_are_exact_at_the_boundary() -> None:
    assert render(f"{{{{ 'x' * {MAX_RENDERED_CHARS} }}}}") == "x" * MAX_RENDERED_CHARS
    assert refusal(f"{{{{ 'x' * {MAX_RENDERED_CHARS + 1} }}}}") == (
        "v: '*' would make 16385 characters (at most 16384)"
    )
    assert refusal("{{ 'x' * 16384 }}{{ 'y' }}") == "v: renders to more than 16384 characters"
    assert len(render("{{ 2 ** 4000 }}")) == 1205
    # A plain string is not a template, so the limits do not apply to it.
    long_plain = "x" * (MAX_TEMPLATE_CHARS + MAX_RENDERED_CHARS)
    assert render(long_plain) == long_plain


def test_long_reasons_are_cut() -> None:
    message = refusal("{{ scheduled_for|discord('" + "x" * 1000 + "') }}")
    assert message is not None
    assert message.startswith("v: discord: unknown style 'xxx")
    assert len(message) == len("v: ") + templates.MAX_REASON_CHARS
    assert message.endswith("…")
