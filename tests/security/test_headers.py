"""Security headers, same-origin forms, offline API docs and Host-proof redirects."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import ConsoleMessage

import concord
from concord.api import create_app
from concord.config import Settings
from concord.web.render import nav_items


def _directives(policy: str) -> dict[str, str]:
    found = {}
    for part in policy.split(";"):
        name, _sep, value = part.strip().partition(" ")
        if name:
            found[name] = value
    return found


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def test_every_page_has_the_security_headers(client: TestClient) -> None:
    # Prepare: each page of the navigation, the shell's own, an error page and an API answer
    paths = ["/", "/sign-in", "/no-such-page", "/api/openapi.json", "/api/docs"]
    paths += [href for href, _label in nav_items()]

    for path in paths:
        # Execute
        response = client.get(path, headers={"Accept": "text/html"})

        # Assert
        headers = response.headers
        policy = _directives(headers.get("content-security-policy", ""))
        scripts = policy.get("script-src", policy.get("default-src", ""))
        assert scripts == "'self'", (path, scripts)
        assert policy.get("frame-ancestors") == "'none'", path
        assert policy.get("object-src") == "'none'", path
        assert headers.get("referrer-policy") == "same-origin", path
        assert "camera=()" in headers.get("permissions-policy", ""), path
        assert headers.get("x-content-type-options") == "nosniff", path
        assert "strict-transport-security" not in headers, "no HSTS on an http hub"


def test_pages_carry_no_inline_script_or_style() -> None:
    # Prepare: every template of the shell and the domains
    root = Path(concord.__file__).parent
    templates = sorted(root.glob("**/templates/**/*.html"))
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|\sstyle\s*=|<style", re.I)

    # Execute
    offenders = [str(t.relative_to(root)) for t in templates if inline.search(t.read_text())]

    # Assert: the CSP would block them
    assert templates
    assert offenders == []


@pytest.fixture
def https_client(settings: Settings) -> Iterator[TestClient]:
    settings.public_url = "https://hub.example.org"
    with TestClient(create_app(settings), base_url="https://hub.example.org") as client:
        yield client


def test_an_https_hub_sends_hsts_and_only_secure_cookies(https_client: TestClient, make) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    cookies: list[str] = []

    # Execute: the CSRF cookie, the language cookie, the session cookie
    form = https_client.get("/sign-in?lang=fr")
    cookies += form.headers.get_list("set-cookie")
    signed = https_client.post(
        "/sign-in",
        data={"csrf": _csrf(form.text), "token": kenya.token, "next": "/"},
        follow_redirects=False,
    )
    cookies += signed.headers.get_list("set-cookie")

    # Assert
    assert signed.status_code == 303
    names = {c.split("=", 1)[0] for c in cookies}
    assert {"concord_csrf", "concord_lang", "concord_session"} <= names
    for cookie in cookies:
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert "secure" in attributes, cookie
    assert form.headers["strict-transport-security"].startswith("max-age=")
    assert signed.headers["strict-transport-security"].startswith("max-age=")


def test_an_https_public_url_makes_cookies_secure_in_the_settings(tmp_path: Path) -> None:
    # Execute
    https = Settings(data_dir=tmp_path, public_url="https://hub.example.org")
    plain = Settings(data_dir=tmp_path, public_url="http://127.0.0.1:8000")

    # Assert
    assert https.secure_cookies is True
    assert plain.secure_cookies is False


def test_a_form_post_from_a_foreign_origin_is_refused(client: TestClient, make) -> None:
    # Prepare: a browser that holds a valid CSRF token, tricked into posting from elsewhere
    kenya = make.delegate("kenya", "KE")
    form = {"csrf": _csrf(client.get("/sign-in").text), "token": kenya.token, "next": "/"}

    # Execute
    foreign = client.post(
        "/sign-in", data=form, headers={"Origin": "https://evil.example"}, follow_redirects=False
    )
    referred = client.post(
        "/sign-in",
        data=form,
        headers={"Referer": "https://evil.example/page"},
        follow_redirects=False,
    )
    null = client.post("/sign-in", data=form, headers={"Origin": "null"}, follow_redirects=False)
    own = client.post(
        "/sign-in", data=form, headers={"Origin": "http://testserver"}, follow_redirects=False
    )

    # Assert
    for refused in (foreign, referred, null):
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "request.foreign_origin"
        assert "set-cookie" not in refused.headers or "concord_session" not in str(
            refused.headers.get_list("set-cookie")
        )
    assert own.status_code == 303
    assert "concord_session" in str(own.headers.get_list("set-cookie"))


def test_a_foreign_origin_refusal_is_a_page_for_browsers(client: TestClient) -> None:
    # Execute
    response = client.post(
        "/sign-out",
        data={"csrf": "x"},
        headers={"Origin": "https://evil.example", "Accept": "text/html"},
    )

    # Assert
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "request.foreign_origin" in response.text


def test_api_calls_with_bearer_tokens_ignore_the_origin(client: TestClient, make) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")

    # Execute
    response = client.post(
        "/api/commons/repos",
        json={"owner": "kenya", "name": "asr", "kind": "model", "licence": "mit"},
        headers={**kenya.headers, "Origin": "https://tools.example"},
    )

    # Assert
    assert response.status_code == 201, response.text


def test_api_docs_come_from_the_hub_itself(client: TestClient) -> None:
    # Execute
    page = client.get("/api/docs")
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    files = [client.get(ref) for ref in references]

    # Assert
    assert page.status_code == 200
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in references)
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references), references
    assert [f.status_code for f in files] == [200] * len(files)
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    assert "openapi" in client.get(page.text.split('data-openapi="')[1].split('"')[0]).text


def test_a_slash_redirect_never_names_a_forged_host(client: TestClient) -> None:
    # Execute
    response = client.get("/members/", headers={"Host": "evil.example"}, follow_redirects=False)

    # Assert
    assert response.status_code in (301, 302, 307, 308)
    location = response.headers["location"]
    assert "evil.example" not in location
    assert location in ("/members", "http://testserver/members")


def test_a_hub_file_redirect_never_names_a_forged_host(client: TestClient, make) -> None:
    # Prepare: a published model with one file
    kenya = make.delegate("kenya", "KE")
    data = b'{"hidden_size": 8}'
    assert (
        client.post(
            "/api/commons/repos",
            headers=kenya.headers,
            json={"owner": "kenya", "name": "asr", "kind": "model", "licence": "mit"},
        ).status_code
        == 201
    )
    upload = client.post(
        "/api/commons/uploads",
        params={"filename": "config.json"},
        content=data,
        headers={**kenya.headers, "X-Content-SHA256": hashlib.sha256(data).hexdigest()},
    )
    commit = client.post(
        "/api/commons/repos/model/kenya/asr/commits",
        headers=kenya.headers,
        json={"files": {"config.json": upload.json()["sha256"]}, "message": "publish"},
    )
    assert commit.status_code == 201, commit.text

    # Execute
    response = client.get(
        "/kenya/asr/resolve/main/config.json",
        headers={"Host": "evil.example"},
        follow_redirects=False,
    )

    # Assert
    assert response.status_code == 302
    location = response.headers["location"]
    assert "evil.example" not in location
    assert location.startswith("/api/commons/content/")
    assert client.get(location).content == data


@pytest.mark.browser
def test_pages_work_in_a_browser_under_the_policy(live_server: str, browser) -> None:
    # Prepare
    page = browser.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # The browser asks for /favicon.ico on its own; the hub has none (not a policy matter).
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            problems.append(f"{message.text} at {message.location['url']}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)

    # Execute: a page with htmx, the language switch, the API docs
    page.goto(f"{live_server}/members")
    htmx = page.evaluate("typeof htmx === 'object' && htmx.version")
    page.select_option("#lang-select", "fr")
    page.click("form.lang button")
    page.wait_for_url("**lang=fr**")
    lang = page.locator("html").get_attribute("lang")
    page.goto(f"{live_server}/api/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    operations = page.locator(".opblock").count()

    # Assert
    assert htmx and htmx.startswith("2.")
    assert lang == "fr"
    assert operations > 10
    assert problems == []


def test_a_default_port_in_the_public_url_still_matches_the_browser_origin(
    settings: Settings, make
) -> None:
    # Prepare: browsers never write :443 in Origin; the configuration may
    settings.public_url = "https://Hub.Example.org:443/"
    kenya = make.delegate("kenya", "KE")
    with TestClient(create_app(settings), base_url="https://hub.example.org") as client:
        form = {"csrf": _csrf(client.get("/sign-in").text), "token": kenya.token, "next": "/"}

        # Execute
        own = client.post(
            "/sign-in",
            data=form,
            headers={"Origin": "https://hub.example.org"},
            follow_redirects=False,
        )
        other_port = client.post(
            "/sign-in",
            data=form,
            headers={"Origin": "https://hub.example.org:8443"},
            follow_redirects=False,
        )

    # Assert
    assert own.status_code == 303
    assert other_port.status_code == 403
