"""The error catalogue.

Every failure a person can cause is a `ConcordError` subclass with a stable `code`, an HTTP
`status`, and a message template that goes through the translation catalogue. The API maps it
once to JSON, the pages to an error page, the CLI to an exit code and one line.
"""

from __future__ import annotations

from typing import Any

from concord.i18n import gettext


class ConcordError(Exception):
    """Base of every expected error. Subclasses set `code`, `status` and `message`."""

    code: str = "error"
    status: int = 400
    message: str = "The request could not be carried out."
    # The Hugging Face Hub's name for this failure (`X-Error-Code`), which its client maps to
    # an exception class (RepoNotFound → RepositoryNotFoundError…); empty: no Hub equivalent.
    hub_code: str = ""
    # The Hub's exact wording where its client branches on the message itself.
    hub_message: str = ""

    def __init__(self, message: str | None = None, /, **params: Any) -> None:
        self.template = message or self.message
        self.params = params
        super().__init__(self.render("en"))

    def render(self, language: str | None = None) -> str:
        """The message in `language` (default: the current request's language)."""
        module = type(self).__module__.split(".")
        domain = module[1] if len(module) > 2 and module[0] == "concord" else None
        text = gettext(self.template, language, domain)
        # Parameters that are themselves catalogue messages (a reason, an action) translate too;
        # names, handles and numbers are not in the catalogue and pass through unchanged.
        params = {
            k: gettext(v, language, domain) if isinstance(v, str) else v
            for k, v in self.params.items()
        }
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        """The body of an API error response."""
        details = {k: v for k, v in self.params.items() if _jsonable(v)}
        return {"error": {"code": self.code, "message": self.render(language), "details": details}}

    def hub_headers(self) -> dict[str, str]:
        """`X-Error-Code` and `X-Error-Message`, as the Hub sends them (HTTP headers are
        Latin-1: the English message, with anything else replaced)."""
        text = self.hub_message or self.render("en").translate(_PLAIN)
        return {
            "X-Error-Code": self.hub_code or self.code,
            "X-Error-Message": text.encode("latin-1", "replace").decode("latin-1")[:500],
        }

    @property
    def exit_code(self) -> int:
        """The CLI exit code: grouped by kind so scripts can branch on it."""
        return EXIT_CODES.get(self.status, 1)


_PLAIN = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'", "…": "...", "\n": " "})
EXIT_CODES = {400: 2, 422: 2, 413: 2, 401: 3, 403: 3, 404: 4, 409: 5, 410: 5, 502: 6, 503: 6}


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict) or value is None


def N_(message: str) -> str:
    """Marks a string for the catalogue without translating it now."""
    return message


class Invalid(ConcordError):
    code = "invalid"
    status = 422
    message = N_("The request is not valid: {reason}")


class NulCharacter(ConcordError):
    code = "request.nul_character"
    status = 400
    message = N_("Text may not contain the NUL character (U+0000); remove it and send again.")


class NotFound(ConcordError):
    code = "not_found"
    status = 404
    message = N_("Not found.")


class Conflict(ConcordError):
    code = "conflict"
    status = 409
    message = N_("The request conflicts with the current state.")


class Unauthenticated(ConcordError):
    code = "auth.required"
    status = 401
    # Without these words, the Hub client reads a 401 on a repository as "not found".
    hub_message = "Invalid credentials in Authorization header"
    message = N_("Sign in first: send a valid API token or browser session.")


class Forbidden(ConcordError):
    code = "auth.forbidden"
    status = 403
    message = N_("You are not allowed to do this.")


class TooLarge(ConcordError):
    code = "request.too_large"
    status = 413
    message = N_("The request body is larger than the {limit} bytes allowed.")


class Unavailable(ConcordError):
    code = "unavailable"
    status = 503
    message = N_("The service is not available: {reason}")


class HubUnreachable(ConcordError):
    code = "client.hub_unreachable"
    status = 502
    message = N_("Cannot reach the hub at {url}: {reason}")


class RemoteError(ConcordError):
    """A coded error that a hub answered with, carried to the CLI unchanged."""

    def __init__(self, code: str, status: int, text: str) -> None:
        self.code = code
        self.status = status
        super().__init__("{text}", text=text)
