"""A small HTTP client for commands that act on a hub from a member's machine.

Errors the hub answers with keep their code, so `concord` exits the same way for a refusal
whether it happened locally or remotely.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from concord.errors import HubUnreachable, RemoteError


class HubClient:
    """Talks to one hub with one token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The hub's answer, or its coded error (or HubUnreachable)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HubUnreachable(url=self.url, reason=str(exc) or type(exc).__name__) from exc
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Sends a request and returns its JSON, or raises the hub's coded error."""
        response = self.send(method, path, **kwargs)
        if not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def get_range(self, path: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of a file; anything but exactly those bytes is an error."""
        response = self.send("GET", path, headers={"Range": f"bytes={start}-{end - 1}"})
        if response.status_code != 206 or len(response.content) != end - start:
            reason = f"asked for {end - start} bytes at {start}, got {len(response.content)}"
            raise HubUnreachable(url=self.url, reason=reason)
        return response.content

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def _error_of(response: httpx.Response) -> RemoteError:
    try:
        error = response.json()["error"]
        return RemoteError(str(error["code"]), response.status_code, str(error["message"]))
    except (ValueError, KeyError, TypeError):
        text = response.text[:200] or response.reason_phrase
        return RemoteError("http", response.status_code, f"HTTP {response.status_code}: {text}")


def from_environment(hub: str | None, token: str | None) -> HubClient:
    """A client for `--hub`/`--token`, falling back to `CONCORD_HUB` and `CONCORD_TOKEN`."""
    url = hub or os.environ.get("CONCORD_HUB") or "http://127.0.0.1:8000"
    return HubClient(url, token or os.environ.get("CONCORD_TOKEN"))
