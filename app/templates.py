"""Payload templates: each string of a task's payload rendered by a Jinja2 sandbox (SPEC §9).

Every string value of the payload, at any depth in dicts and lists, is rendered on its own into a
string; dict keys and non-string values are left alone, so a template can never change the
payload's structure (a string that renders to "123" stays a string). A string with no `{{`, `{%`
or `{#` is not a template and is kept exactly as it is; in a template, line breaks come out as
"\\n" (Jinja normalizes them) and a trailing newline is kept.

A template may use the names of `NAMES` (task.id, task.name, task.timezone, scheduled_for,
occurrence_id, attempt, run_number, next_run_at), `{% if %}`, literals, operators, tests, and
the filters `discord`, `local`, `iso` plus a few plain built-in ones (`FILTERS`). Refused before
anything runs: unknown names and filters, loops, macros, `set`, blocks, includes, private
attributes and any call, so the work a template does is bounded by its length. While it runs,
the sandbox refuses methods and other callables, `%` on strings, repeating a list, any string
over MAX_RENDERED_CHARS (a `*` repeat, a filter's result, the whole output) and any integer
over MAX_INTEGER_BITS (`*`, `**`).

None (`next_run_at` of a one-time task, or after a task's last run): `{{ next_run_at }}` and
every date filter given None render the empty string, so a template that suits a recurring task
still renders; write `{% if next_run_at %}...{% endif %}` to leave a sentence out.

Rendering is pure: the same payload and context give the same result (no clock, no
randomness); retries differ only in `attempt`. Every problem is a `TemplateError` whose message
starts with the path of the string in the payload, e.g. `embeds[0].title: unknown name 'foo'`.
"""

import calendar
import functools
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, Undefined, nodes, pass_context
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

MAX_TEMPLATE_CHARS = 16 * 1024  # the source of one templated string
MAX_RENDERED_CHARS = 16 * 1024  # one rendered string, and any string built on the way
MAX_INTEGER_BITS = 4096  # any integer built by `*` or `**`
COMPILED_CACHE_SIZE = 1024  # distinct template strings kept compiled
MAX_REASON_CHARS = 300  # of an error message, after its path

DISCORD_STYLES = ("t", "T", "d", "D", "f", "F", "R")
LOCAL_DEFAULT_FORMAT = "%Y-%m-%d %H:%M"
TASK_ATTRIBUTES = ("id", "name", "timezone")
NAMES = ("task", "scheduled_for", "occurrence_id", "attempt", "run_number", "next_run_at")
# Built-in filters whose result is at most a few times the size of their input.
BUILTIN_FILTERS = (
    "capitalize",
    "count",
    "d",
    "default",
    "first",
    "int",
    "last",
    "length",
    "lower",
    "string",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
)
FILTERS = (*BUILTIN_FILTERS, "discord", "iso", "local")
_DELIMITERS = ("{{", "{%", "{#")
_STATEMENT_TAGS = {
    "For": "for",
    "Macro": "macro",
    "CallBlock": "call",
    "FilterBlock": "filter",
    "With": "with",
    "Block": "block",
    "Extends": "extends",
    "Include": "include",
    "Import": "import",
    "FromImport": "from",
    "Assign": "set",
    "AssignBlock": "set",
    "Scope": "autoescape",
    "ScopedEvalContextModifier": "autoescape",
    "EvalContextModifier": "autoescape",
}
_ALLOWED_NODES = frozenset(
    {
        *(nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.CondExpr),
        *(nodes.Const, nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Tuple),
        *(nodes.List, nodes.Filter, nodes.Test, nodes.Keyword, nodes.Compare, nodes.Operand),
        *(nodes.And, nodes.Or, nodes.Not, nodes.Neg, nodes.Pos, nodes.Concat, nodes.Add),
        *(nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod, nodes.Pow),
    }
)


class TemplateError(ValueError):
    """A payload template that cannot be rendered; the message is `path: reason`."""


@dataclass(frozen=True)
class TemplateContext:
    """The values a template can name for one attempt of one occurrence (datetimes aware)."""

    task_id: uuid.UUID
    task_name: str
    timezone: str
    scheduled_for: datetime
    occurrence_id: uuid.UUID
    attempt: int
    run_number: int
    next_run_at: datetime | None

    def __post_init__(self) -> None:
        """Refuse naive datetimes: a template shows instants, which need a zone."""
        for value in (self.scheduled_for, self.next_run_at):
            if value is not None and value.utcoffset() is None:
                raise ValueError("TemplateContext datetimes must be timezone-aware")


@dataclass(frozen=True)
class _Task:
    """What `task` shows a template."""

    id: uuid.UUID
    name: str
    timezone: str


# Placeholders for the save-time check: every name has a value of the type it has at send time.
SAMPLE_CONTEXT = TemplateContext(
    task_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
    task_name="Sample task",
    timezone="UTC",
    scheduled_for=datetime(2026, 1, 1, 9, 0, tzinfo=UTC),
    occurrence_id=uuid.UUID("00000000-0000-4000-8000-000000000002"),
    attempt=1,
    run_number=1,
    next_run_at=datetime(2026, 1, 2, 9, 0, tzinfo=UTC),
)


def render_payload(payload: dict[str, Any], context: TemplateContext) -> dict[str, Any]:
    """`payload` with every string value rendered for `context`; TemplateError on any problem."""
    variables = _variables(context)

    def render(path: str, source: str) -> str:
        try:
            return _render_string(source, variables)
        except Exception as exc:
            reason = _reason(exc)
            if len(reason) > MAX_REASON_CHARS:  # a reason may quote the template
                reason = reason[: MAX_REASON_CHARS - 1] + "…"
            raise TemplateError(f"{path}: {reason}") from exc

    return _map_strings(payload, "", render)


def check_payload_template(payload: dict[str, Any]) -> str | None:
    """None when every string of `payload` renders against SAMPLE_CONTEXT, else `path: reason`."""
    try:
        render_payload(payload, SAMPLE_CONTEXT)
    except TemplateError as exc:
        return str(exc)
    return None


def _variables(context: TemplateContext) -> dict[str, Any]:
    """The names a template sees, with datetimes in UTC."""
    next_run_at = context.next_run_at
    return {
        "task": _Task(id=context.task_id, name=context.task_name, timezone=context.timezone),
        "scheduled_for": context.scheduled_for.astimezone(UTC),
        "occurrence_id": context.occurrence_id,
        "attempt": context.attempt,
        "run_number": context.run_number,
        "next_run_at": None if next_run_at is None else next_run_at.astimezone(UTC),
    }


def _map_strings(value: Any, path: str, transform: Callable[[str, str], str]) -> Any:
    """A copy of `value` with each string replaced by `transform(path, string)`; keys kept."""
    if isinstance(value, str):
        return transform(path, value)
    if isinstance(value, dict):
        return {
            key: _map_strings(item, _key_path(path, key), transform) for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _map_strings(item, f"{path}[{index}]", transform) for index, item in enumerate(value)
        ]
    return value


def _key_path(path: str, key: str) -> str:
    """`path.key`, or `path["key"]` for a key that is not an identifier."""
    if not key.isidentifier():
        return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
    return f"{path}.{key}" if path else key


def _render_string(source: str, variables: dict[str, Any]) -> str:
    """`source` rendered (streamed, so an oversized output stops early), or itself if plain."""
    if not any(delimiter in source for delimiter in _DELIMITERS):
        return source
    parts: list[str] = []
    size = 0
    for part in _compile(source).generate(variables):
        size += len(part)
        if size > MAX_RENDERED_CHARS:
            raise TemplateError(f"renders to more than {MAX_RENDERED_CHARS} characters")
        parts.append(part)
    return "".join(parts)


def _reason(exc: Exception) -> str:
    """What went wrong, in words for the person who wrote the template."""
    match exc:
        case TemplateError():
            return str(exc)
        case TemplateSyntaxError(lineno=lineno):
            where = f" (line {lineno})" if lineno > 1 else ""
            return f"syntax error: {exc.message}{where}"
        case SecurityError():
            return f"not allowed: {exc}"
        case UndefinedError():
            return str(exc)
        case RecursionError():
            return "nested too deeply"
        case _:
            return f"{type(exc).__name__}: {exc}"


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compile(source: str) -> Template:
    """`source` compiled once, after checking that it uses only what templates may use."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template longer than {MAX_TEMPLATE_CHARS} characters")
    environment = _environment()
    tree = environment.parse(source)
    for node in tree.find_all(nodes.Node):
        refusal = _refusal(node, environment)
        if refusal is not None:
            raise TemplateError(refusal)
    return environment.from_string(tree)


def _refusal(node: nodes.Node, environment: SandboxedEnvironment) -> str | None:
    """Why a template may not contain `node`, or None when it may."""
    if type(node) not in _ALLOWED_NODES:
        return f"not allowed: {_describe(node)}"
    if isinstance(node, nodes.Filter) and node.name not in environment.filters:
        return f"unknown filter {node.name!r}"
    if isinstance(node, nodes.Test) and node.name not in environment.tests:
        return f"unknown test {node.name!r}"
    return _unknown_name(node)


def _unknown_name(node: nodes.Node) -> str | None:
    """Why `node` names something a template cannot see (checked in every branch), or None."""
    if isinstance(node, nodes.Name) and node.name not in NAMES:
        return f"unknown name {node.name!r}"
    read = _attribute_read(node)
    if read is None:
        return None
    target, attribute = read
    if attribute.startswith("_"):
        return f"not allowed: private attribute {attribute!r}"
    is_task = isinstance(target, nodes.Name) and target.name == "task"
    if is_task and attribute not in TASK_ATTRIBUTES:
        return f"unknown name 'task.{attribute}'"
    return None


def _attribute_read(node: nodes.Node) -> tuple[nodes.Node, str] | None:
    """(object, attribute) for `x.attribute` or `x["attribute"]` written in the template."""
    if isinstance(node, nodes.Getattr):
        return node.node, node.attr
    is_literal = isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const)
    if is_literal and isinstance(node.arg.value, str):
        return node.node, node.arg.value
    return None


def _describe(node: nodes.Node) -> str:
    """A refused node as the template wrote it."""
    kind = type(node).__name__
    if kind in _STATEMENT_TAGS:
        return f"{{% {_STATEMENT_TAGS[kind]} %}}"
    if kind == "Call":
        return "calling a function or method (filters take arguments: value|filter(arg))"
    return f"{kind} expression"


class _PayloadSandbox(SandboxedEnvironment):
    """Jinja's sandbox that also refuses callables and operators that build huge values."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """The sandbox's rule, and never a callable: templates call nothing."""
        return not callable(value) and super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        """No `str.format` wrapper: that method is refused like any other."""
        return None

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """The operator's result, once it is known not to be huge."""
        if operator == "%" and isinstance(left, str | bytes):
            raise SecurityError("formatting a string with '%' (use filters)")
        if operator == "*":
            _check_product(left, right)
        if operator == "**":
            _check_power(left, right)
        return super().call_binop(context, operator, left, right)


def _check_product(left: Any, right: Any) -> None:
    """Refuse a `*` that repeats a list or builds a string or integer over the limits."""
    if isinstance(left, list | tuple) or isinstance(right, list | tuple):
        raise SecurityError("repeating a list with '*'")
    for text, count in ((left, right), (right, left)):
        size = len(text) * count if isinstance(text, str | bytes) and isinstance(count, int) else 0
        if size > MAX_RENDERED_CHARS:
            raise TemplateError(f"'*' would make {size} characters (at most {MAX_RENDERED_CHARS})")
    if isinstance(left, int) and isinstance(right, int):
        _check_bits(left.bit_length() + right.bit_length(), "*")


def _check_power(base: Any, exponent: Any) -> None:
    """Refuse an integer `**` whose result would be over MAX_INTEGER_BITS (|base| > 1 grows)."""
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0:
        # A bit per step at least: an exponent over the limit is refused before any float math.
        bits = (
            exponent if exponent > MAX_INTEGER_BITS else math.ceil(exponent * math.log2(abs(base)))
        )
        _check_bits(bits, "**")


def _check_bits(bits: int, operator: str) -> None:
    """TemplateError when an integer of `bits` bits is over the limit."""
    if bits > MAX_INTEGER_BITS:
        raise TemplateError(f"'{operator}' would make an integer over {MAX_INTEGER_BITS} bits")


def _aware_or_none(value: Any, filter_name: str) -> datetime | None:
    """`value` when it is an aware datetime, None for None; TemplateError for anything else."""
    if isinstance(value, Undefined):
        str(value)  # raises the UndefinedError or SecurityError it stands for
    if value is None:
        return None
    if not isinstance(value, datetime) or value.utcoffset() is None:
        kind = "a naive datetime" if isinstance(value, datetime) else type(value).__name__
        raise TemplateError(f"{filter_name}: expected an aware datetime, got {kind}")
    return value


def _discord(value: Any, style: Any = "f") -> str:
    """Discord's timestamp markup `<t:UNIX:STYLE>` for an aware datetime ("" for None)."""
    if not isinstance(style, str) or style not in DISCORD_STYLES:
        allowed = ", ".join(DISCORD_STYLES)
        raise TemplateError(f"discord: unknown style {style!r} (use one of {allowed})")
    moment = _aware_or_none(value, "discord")
    if moment is None:
        return ""
    return f"<t:{calendar.timegm(moment.utctimetuple())}:{style}>"


@pass_context
def _local(context: Context, value: Any, format: Any = LOCAL_DEFAULT_FORMAT) -> str:
    """strftime(`format`) of an aware datetime in the task's timezone ("" for None)."""
    if not isinstance(format, str):
        raise TemplateError(f"local: the format must be a string, got {type(format).__name__}")
    moment = _aware_or_none(value, "local")
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(context["task"].timezone)).strftime(format)


def _iso(value: Any) -> str:
    """ISO 8601 in UTC with `Z`, microseconds only when non-zero ("" for None)."""
    moment = _aware_or_none(value, "iso")
    if moment is None:
        return ""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _bounded(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """`function` (a filter) refusing to return a string over MAX_RENDERED_CHARS."""

    @functools.wraps(function)  # keeps Jinja's pass_context/pass_environment marks
    def bounded(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if isinstance(result, str) and len(result) > MAX_RENDERED_CHARS:
            raise TemplateError(
                f"filter {name!r} made {len(result)} characters (at most {MAX_RENDERED_CHARS})"
            )
        return result

    return bounded


def _finalize(value: Any) -> Any:
    """What `{{ value }}` prints: None prints as the empty string."""
    return "" if value is None else value


@functools.cache
def _environment() -> _PayloadSandbox:
    """The one sandbox every template is compiled in (built on first use)."""
    environment = _PayloadSandbox(
        undefined=StrictUndefined,
        autoescape=False,  # the output goes into JSON strings, not HTML
        keep_trailing_newline=True,
        finalize=_finalize,
        cache_size=0,
    )
    filters: dict[str, Callable[..., Any]] = {
        name: environment.filters[name] for name in BUILTIN_FILTERS
    }
    filters |= {"discord": _discord, "local": _local, "iso": _iso}
    environment.filters = {name: _bounded(name, function) for name, function in filters.items()}
    environment.globals.clear()  # no range, lipsum, cycler, joiner, namespace, dict
    return environment
