"""The hub's edge: plain ASGI middleware between the server and the app.

Each layer wraps `receive` and `send` and nothing else. Starlette's `BaseHTTPMiddleware` is
never used: its `call_next` runs the app on the original `receive`, so a layer that read or
limited the body could not hand that body on (a chunked JSON body reached the handler empty),
and it buffers the app in a task of its own.

From the outside in (`install` adds them in this order):

- `Observe`: metrics, the request log line, and event delivery after a successful write;
- `SecurityHeaders`: CSP, frame, referrer and permissions policies, HSTS and `Secure` cookies
  on an https hub, and `Location` headers that never name a host the client made up;
- `Language`: the reader's language for the request, its cookie, and the CSRF cookie;
- `SameOrigin`: form posts from pages of another origin are refused;
- `BodyLimit`: bodies counted as they arrive and cut at the limit;
- `PlainAddress`: paths and query strings holding NUL are refused (text in bodies is checked
  where it would reach the database, `db._refuse_nul`).
"""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from concord import events
from concord.config import Settings
from concord.errors import N_, ConcordError, Forbidden, NulCharacter, TooLarge
from concord.http import UPLOAD_PREFIXES
from concord.i18n import LANGUAGES, current_language, negotiate
from concord.metrics import LATENCY, REQUESTS

log = logging.getLogger("concord")
LANG_COOKIE = "concord_lang"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Pages load scripts, styles and images from this hub only, never inline, and no one may frame
# them (clickjacking). `data:` images: small icons in stylesheets.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=()"
)
HSTS = "max-age=31536000"


class BodyIncomplete(ConcordError):
    code = "request.incomplete"
    status = 400
    message = N_("The request body does not have the {declared} bytes it announced.")


class ForeignOrigin(Forbidden):
    code = "request.foreign_origin"
    message = N_(
        "This form was sent from a page of another site; open the page on this hub and retry."
    )


def install(app: FastAPI, settings: Settings) -> None:
    """Puts the edge around `app`; the last added is the outermost."""
    app.add_middleware(PlainAddress)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(SameOrigin, settings=settings)
    app.add_middleware(Language, settings=settings)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(Observe, hub=app, settings=settings)
    # File bytes (commons downloads, federation parameters) go out as they are: model weights
    # hardly compress, gzip at ~25 MB/s would be the bottleneck, and a compressed body has
    # neither the announced Content-Length nor the offsets a resumed download relies on.
    app.add_middleware(
        GZipMiddleware,
        minimum_size=1024,
        exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream"),
    )


def is_https(settings: Settings) -> bool:
    return urlsplit(settings.public_url).scheme == "https"


def origin_of(url: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin`: lower case, no default port."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:
        return ""
    if port is None or port == {"http": 80, "https": 443}.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def public_origin(settings: Settings) -> str:
    """The origin of the configured public URL."""
    return origin_of(settings.public_url)


def cookie_header(
    name: str, value: str, *, secure: bool, samesite: str, httponly: bool, max_age: int | None
) -> str:
    """One `Set-Cookie` value, as Starlette's `set_cookie` writes it (path `/`)."""
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["samesite"] = samesite
    if max_age is not None:
        morsel["max-age"] = max_age
    if httponly:
        morsel["httponly"] = True
    if secure:
        morsel["secure"] = True
    return morsel.OutputString()


def _wants_html(scope: Scope) -> bool:
    accept = Headers(scope=scope).get("accept", "")
    return not scope["path"].startswith("/api") and "text/html" in accept


async def refuse(scope: Scope, receive: Receive, send: Send, exc: ConcordError) -> None:
    """Answers with a coded error from outside the app: a page for browsers, else JSON."""
    response: Response
    if _wants_html(scope) and "app" in scope:
        from concord.web.render import error_page

        response = error_page(Request(scope, receive), exc)
    else:
        response = JSONResponse(exc.to_json(), status_code=exc.status)
    await response(scope, receive, send)


class Observe:
    """Counts and logs every request, and delivers events after a successful write."""

    def __init__(self, app: ASGIApp, hub: FastAPI, settings: Settings) -> None:
        self.app, self.hub, self.settings = app, hub, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        write = scope["method"] in WRITES

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif write and status < 400 and _last_body(message):
                # A write may have announced an event (a project adopted): deliver it beside
                # the request, not inside it — on SQLite the request's session may still hold
                # the write lock until it closes, and waiting for it here would deadlock.
                # Started before the last byte goes out, so a client that has its answer can
                # wait for the delivery (`events.wait_for_deliveries`).
                events.deliver_in_background(self.hub.state.sessions, self.settings)
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 1),
                },
            )


def _last_body(message: Message) -> bool:
    return message["type"] == "http.response.body" and not message.get("more_body", False)


class SecurityHeaders:
    """Headers every response carries; a route may set its own CSP (the API docs do)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = is_https(self.settings)
        asked_host = Headers(scope=scope).get("host", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Frame-Options", "DENY")  # browsers without CSP 2
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Permissions-Policy", PERMISSIONS)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                    _secure_cookies(headers)
                location = headers.get("location")
                if location is not None:
                    headers["location"] = self._trusted(location, asked_host)
            await send(message)

        await self.app(scope, receive, with_headers)

    def _trusted(self, location: str, asked_host: str) -> str:
        """A redirect built from the request (Starlette's slash redirect, `url_for`) names
        the `Host` the client sent, which anyone can forge (cache poisoning, phishing links):
        such a target is moved onto the configured public URL."""
        parts = urlsplit(location)
        if not parts.netloc or parts.netloc.lower() != asked_host.lower():
            return location
        public = urlsplit(self.settings.public_url)
        return parts._replace(scheme=public.scheme, netloc=public.netloc).geturl()


def _secure_cookies(headers: MutableHeaders) -> None:
    cookies = headers.getlist("set-cookie")
    if not cookies or all("secure" in _attributes(c) for c in cookies):
        return
    del headers["set-cookie"]
    for cookie in cookies:
        headers.append(
            "set-cookie", cookie if "secure" in _attributes(cookie) else f"{cookie}; Secure"
        )


def _attributes(cookie: str) -> set[str]:
    return {part.split("=", 1)[0].strip().lower() for part in cookie.split(";")[1:]}


class Language:
    """Sets the reader's language for the request; remembers a chosen one and the CSRF token
    (made while rendering a page) in cookies."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        chosen = request.query_params.get("lang")
        wanted = chosen or request.cookies.get(LANG_COOKIE)
        if wanted not in LANGUAGES:
            wanted = negotiate(
                request.headers.get("accept-language"), self.settings.default_language
            )
        # `request.state` lives in this dict: the CSRF token a page made is found here.
        state = scope.setdefault("state", {})
        secure = self.settings.secure_cookies or is_https(self.settings)

        async def with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if chosen in LANGUAGES:
                    headers.append(
                        "set-cookie",
                        cookie_header(
                            LANG_COOKIE,
                            wanted,
                            secure=secure,
                            samesite="lax",
                            httponly=False,
                            max_age=365 * 86400,
                        ),
                    )
                new_csrf = state.get("new_csrf")
                if new_csrf:
                    from concord.members.auth import CSRF_COOKIE

                    headers.append(
                        "set-cookie",
                        cookie_header(
                            CSRF_COOKIE,
                            new_csrf,
                            secure=secure,
                            samesite="strict",
                            httponly=True,
                            max_age=None,
                        ),
                    )
                headers.setdefault("Content-Language", wanted)
            await send(message)

        token = current_language.set(wanted)
        try:
            await self.app(scope, receive, with_cookies)
        finally:
            current_language.reset(token)


class SameOrigin:
    """Refuses a state-changing page request sent from another origin.

    Browsers name the page a form came from in `Origin` (or at least `Referer`); a request
    naming another origin than the hub's public URL is a cross-site forgery, even before the
    CSRF token is checked. API calls are left alone: they authenticate with bearer tokens,
    which a foreign page cannot make a browser send. Clients that send neither header (scripts,
    tests) are not browsers and pass; the CSRF token still guards the forms."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITES and self._foreign(scope):
            await refuse(scope, receive, send, ForeignOrigin())
            return
        await self.app(scope, receive, send)

    def _foreign(self, scope: Scope) -> bool:
        headers = Headers(scope=scope)
        if scope["path"].startswith("/api/") or headers.get("authorization"):
            return False
        sent = headers.get("origin") or headers.get("referer")
        if sent is None:
            return False
        return origin_of(sent) != public_origin(self.settings)


class PlainAddress:
    """Refuses a path or query string holding NUL (raw or `%00`) before any route reads it: no
    slug, id or search holds one, and PostgreSQL could not even compare it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _holds_nul(scope):
            await refuse(scope, receive, send, NulCharacter())
            return
        await self.app(scope, receive, send)


def _holds_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"\x00" in query or b"%00" in query


class BodyLimit:
    """Counts the body as it streams in and cuts it at the limit.

    A declared Content-Length over the limit is refused before a byte is read. A chunked body
    is counted chunk by chunk: past the limit, reading fails, whatever the app was going to
    answer is dropped and a 413 goes out instead. A body that ends shorter (or runs longer)
    than its Content-Length is refused with 400. Upload routes (`UPLOAD_PREFIXES`) may carry
    `max_upload_bytes`, everything else `max_body_bytes`."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    def limit(self, path: str) -> int:
        if any(path.startswith(prefix) for prefix in UPLOAD_PREFIXES):
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope["path"])
        text = Headers(scope=scope).get("content-length")
        declared = int(text) if text is not None and text.isdigit() else None
        if declared is not None and declared > limit:
            await refuse(scope, receive, send, TooLarge(limit=limit))
            return
        guard = _Guard(receive, send, limit, declared)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            if guard.problem is None or guard.started:
                raise
        if guard.problem is not None and not guard.started:
            await refuse(scope, receive, send, guard.problem)


class _Guard:
    """One request's counted `receive`, and a `send` that stays quiet once the body failed."""

    def __init__(self, receive: Receive, send: Send, limit: int, declared: int | None) -> None:
        self._receive, self._send = receive, send
        self.limit, self.declared = limit, declared
        self.seen = 0
        self.problem: ConcordError | None = None
        self.started = False

    async def receive(self) -> Message:
        if self.problem is not None:
            raise self.problem
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            self.problem = self._check(more=bool(message.get("more_body", False)))
            if self.problem is not None:
                raise self.problem
        return message

    def _check(self, more: bool) -> ConcordError | None:
        if self.seen > self.limit:
            return TooLarge(limit=self.limit)
        if self.declared is not None and (
            self.seen > self.declared or (not more and self.seen < self.declared)
        ):
            return BodyIncomplete(declared=self.declared)
        return None

    async def send(self, message: Message) -> None:
        if self.problem is not None and not self.started:
            return  # the app answered a body it never got whole; the refusal replaces it
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)
