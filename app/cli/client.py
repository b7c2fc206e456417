"""A small HTTP client for the service's API, used by every client command.

The API answers errors as `{"detail": ...}`: a string, or for bad input a list of
`{"type", "loc", "msg"}` whose `loc` ends with the field's name. `ApiError` carries that answer
as one line naming the field (`schedule: invalid cron expression ... (HTTP 422)`); the command
line prints it and exits non-zero.
"""

import os
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "INSIGNIA_URL"
TOKEN_VARIABLE = "INSIGNIA_TOKEN"  # noqa: S105 (the variable's name)
TIMEOUT_SECONDS = 30.0
PAGE_LIMIT = 1000  # the API's largest page
HINTS = {
    401: f"check {TOKEN_VARIABLE}",
    403: f"use a token with that scope ({TOKEN_VARIABLE})",
}


class ApiError(Exception):
    """The API refused a request (or could not be reached); `str()` is one line for people."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def error_line(detail: Any) -> str:
    """The API's `detail` as one line: each wrong field by name, then its message."""
    if isinstance(detail, list):
        return "; ".join(_field_error(item) for item in detail)
    return str(detail)


def _field_error(item: Any) -> str:
    """`field: message` for one item of a 422 `detail` list."""
    if not isinstance(item, dict):
        return str(item)
    loc = [str(part) for part in item.get("loc", [])]
    field = ".".join(loc[1:]) or ".".join(loc)
    message = str(item.get("msg", "invalid"))
    return f"{field}: {message}" if field else message


def describe_answer(response: httpx.Response) -> str:
    """An error answer as one line, with its status and, where useful, what to check."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text.strip()[:200] or response.reason_phrase
    hint = HINTS.get(response.status_code)
    suffix = f"; {hint}" if hint else ""
    return f"{error_line(detail)} (HTTP {response.status_code}{suffix})"


class Api:
    """Requests to the API at `url` with a bearer token, read only when first needed."""

    def __init__(self, url: str, token: Callable[[], str]) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._client: httpx.Client | None = None

    def _session(self) -> httpx.Client:
        """The HTTP client, made on first use (so that `--help` needs no token)."""
        if self._client is None:
            headers = {"Authorization": f"Bearer {self._token()}"}
            self._client = httpx.Client(base_url=self.url, headers=headers, timeout=TIMEOUT_SECONDS)
        return self._client

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a request; ApiError for an error answer or no answer at all."""
        try:
            response = self._session().request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                f"cannot reach the API at {self.url}: {exc or type(exc).__name__} "
                f"(is the service running? {URL_VARIABLE} says where)"
            ) from None
        if response.is_error:
            raise ApiError(describe_answer(response), status=response.status_code)
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters; those that are None are left out."""
        query = {key: value for key, value in params.items() if value is not None}
        return self.request("GET", path, params=query)

    def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body (or none)."""
        return self.request("POST", path, json=body)

    def patch(self, path: str, body: Any) -> Any:
        """PATCH a JSON body."""
        return self.request("PATCH", path, json=body)

    def delete(self, path: str) -> Any:
        """DELETE."""
        return self.request("DELETE", path)

    def rows(self, path: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every row of a list, page after page (`next_cursor`), newest first."""
        params.setdefault("limit", PAGE_LIMIT)
        cursor = None
        while True:
            page = self.get(path, cursor=cursor, **params)
            yield from page[key]
            cursor = page.get("next_cursor")
            if not cursor:
                return


def segment(value: str) -> str:
    """An id as one path segment: `/`, `?` or `#` in it cannot reach another route."""
    return quote(value, safe="")


def api_url() -> str:
    """Where the client commands send their requests."""
    return os.environ.get(URL_VARIABLE, "").strip() or DEFAULT_URL
