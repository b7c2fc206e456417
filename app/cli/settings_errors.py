"""Wrong settings as one line each: the setting's name, the shape of its value, and what it
should be, e.g. `PORT: 'abc' is not an integer (expected an integer from 1 to 65535)`.

Secret values (the token, the signing secret) and URLs (which may carry a password) are never
echoed: their shape is their length.
"""

from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

from app.config import Settings

MAX_SHOWN_CHARS = 60
PROBLEMS = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "bool_parsing": "is not a boolean",
    "literal_error": "is not one of the choices",
    "greater_than": "is out of range",
    "greater_than_equal": "is out of range",
    "less_than": "is out of range",
    "less_than_equal": "is out of range",
}


def settings_error_lines(exc: ValidationError) -> list[str]:
    """One line per wrong setting, in the order pydantic found them."""
    return [_line(error) for error in exc.errors()]


def _line(error: Any) -> str:
    """One wrong setting (or, without a field, the check across several) as a line."""
    loc = error.get("loc") or ()
    message = _message(error)
    if not loc:
        return message
    name = str(loc[0])
    field = Settings.model_fields.get(name)
    shown = _shape(name, field, error.get("input"))
    problem = PROBLEMS.get(error.get("type", ""))
    if problem is None:
        rest = message.removeprefix(f"{name.upper()}:").removeprefix(name.upper()).strip()
        if shown in rest:
            return f"{name.upper()}: {rest}"
        return f"{name.upper()}: {shown} is refused: {rest}"
    return f"{name.upper()}: {shown} {problem} (expected {_expected(field, error)})"


def _message(error: Any) -> str:
    """pydantic's message without its "Value error, " prefix."""
    return str(error.get("msg", "invalid")).removeprefix("Value error, ")


def _shape(name: str, field: FieldInfo | None, value: Any) -> str:
    """The value as it may be shown: quoted, or only its length for secrets and URLs."""
    text = value if isinstance(value, str) else repr(value)
    secret = field is not None and "SecretStr" in repr(field.annotation)
    if secret or name.endswith("_url") or isinstance(value, SecretStr):
        return f"a value of {len(text)} characters (not shown)"
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + "..."
    return repr(text)


def _expected(field: FieldInfo | None, error: Any) -> str:
    """What the setting accepts, from its type and bounds."""
    if error.get("type") == "literal_error":
        return "one of " + str(error.get("ctx", {}).get("expected", "the listed values"))
    annotation = field.annotation if field is not None else None
    if annotation is bool:
        return "true or false"
    kind = "an integer" if annotation is int else "a number"
    bounds = _bounds(field)
    return f"{kind} {bounds}" if bounds else kind


def _number(value: float) -> str:
    """A bound as written in the README: 1024, 0.5."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _bounds(field: FieldInfo | None) -> str:
    """The field's bounds in words: `from 1 to 65535`, `greater than 0`, `0 or more`."""
    metadata = field.metadata if field is not None else []
    limits = {
        key: _number(value)
        for item in metadata
        for key in ("ge", "gt", "le", "lt")
        if (value := getattr(item, key, None)) is not None
    }
    if "ge" in limits and "le" in limits:
        return f"from {limits['ge']} to {limits['le']}"
    words = {"ge": "{} or more", "gt": "greater than {}", "le": "at most {}", "lt": "less than {}"}
    return " and ".join(words[key].format(value) for key, value in limits.items())
