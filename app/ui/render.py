"""Pages: the Jinja2 templates with the dashboard's filters, the headers every page carries,
and the route class that turns refusals, unknown ids and sign-in redirects into pages."""

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app import __version__
from app.errors import NotFound
from app.models import utc_now
from app.ui import words
from app.ui.errors import Refused, SignInRequired

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
# Pages hold tasks and webhook URLs: not cached, not framed, nothing loaded from elsewhere.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
SEE_OTHER = 303


def _environment() -> Environment:
    """The templates' environment: autoescaped, strict about undefined names."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        local=_local,
        relative=_relative,
        duration=words.duration_text,
        discord_message=words.discord_message_id,
        schedule_words=_schedule_words,
        reason=words.reason_in_words,
        pretty_json=lambda value: json.dumps(value, indent=2, ensure_ascii=False),
        iso=lambda at: at.isoformat() if at else "",
        input_time=input_time,
    )
    env.globals.update(static=static_url, query=query_string, quiet_words=words.QUIET_WORDS)
    return env


def _local(at: datetime | None, timezone: str = "UTC") -> str:
    """Filter `local`: an instant on the zone's wall clock ("" for none)."""
    return words.local_time(at, timezone) if at is not None else ""


def _relative(at: datetime | None, now: datetime | None = None) -> str:
    """Filter `relative`: "in 3 h", "5 min ago" ("" for none)."""
    return words.relative_time(at, now=now or utc_now()) if at is not None else ""


def _schedule_words(task: Any) -> str:
    """Filter `schedule_words`: a task's timing (its schedule, each of several, or its one
    run) as a sentence."""
    return words.timing_in_words(
        words.task_schedules(task), run_at=task.run_at, timezone=task.timezone
    )


def input_time(at: datetime | None) -> str:
    """A `datetime-local` input's value for an instant, in UTC."""
    if at is None:
        return ""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S" if at.second else "%Y-%m-%dT%H:%M")


def static_url(name: str) -> str:
    """The URL of a dashboard asset, with the version so a new release is not served stale."""
    return f"/ui/static/{name}?v={quote(__version__)}"


def query_string(**params: Any) -> str:
    """`?a=1&b=2` of the parameters that have a value ("" when none has)."""
    kept = {name: value for name, value in params.items() if value not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


ENV = _environment()


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """The page `name` rendered with `context` (plus `request` and `now`)."""
    html = ENV.get_template(name).render(
        {"request": request, "now": utc_now(), "flash": None, "section": ""} | context
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def redirect(url: str) -> Response:
    """303 See Other to `url`: after a form post, the browser GETs the next page."""
    return RedirectResponse(url, status_code=SEE_OTHER, headers={"Cache-Control": "no-store"})


def safe_next(path: str | None) -> str:
    """Where to go after signing in: a path of the dashboard, never another site."""
    if not path or not path.startswith("/ui") or path.startswith("//") or "\\" in path:
        return "/ui"
    return path


def error_page(request: Request, status: int, message: str) -> Response:
    """A page that says what went wrong, with a way back."""
    return render(request, "error.html", {"status": status, "message": message}, status=status)


class UiRoute(APIRoute):
    """A dashboard route: SignInRequired redirects to the sign-in page, Refused and NotFound
    become pages with their status, instead of the API's JSON answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped."""
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            """The route's answer, or the page standing for its refusal."""
            try:
                return await handler(request)
            except SignInRequired as exc:
                return redirect("/ui/login" + query_string(next=safe_next(exc.next_path)))
            except Refused as exc:
                return error_page(request, exc.status, exc.message)
            except NotFound as exc:
                return error_page(request, 404, f"{exc}. It may have been deleted.")

        return handle
