"""Pages: sign-in with CSRF, the directory, languages, and the size budget."""

from __future__ import annotations

import gzip
import re

from fastapi.testclient import TestClient

PAGE_BUDGET = 100_000


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


def test_sign_in_and_out(client: TestClient, make) -> None:
    kenya = make.delegate("kenya", "KE")
    form = client.get("/sign-in")
    assert form.status_code == 200
    token = _csrf(form.text)
    wrong = client.post("/sign-in", data={"csrf": token, "token": "cnd_x_y", "next": "/"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    signed = client.post(
        "/sign-in",
        data={"csrf": token, "token": kenya.token, "next": "/members"},
        follow_redirects=False,
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/members"
    page = client.get("/members")
    assert "Delegate" in page.text and "kenya" in page.text
    client.post("/sign-out", data={"csrf": token})
    assert "Sign in" in client.get("/members").text


def test_forms_without_csrf_are_refused(client: TestClient, make) -> None:
    kenya = make.delegate("kenya", "KE")
    client.get("/sign-in")
    refused = client.post(
        "/sign-in", data={"csrf": "forged", "token": kenya.token}, headers={"Accept": "text/html"}
    )
    assert refused.status_code == 403
    assert "auth.csrf" in refused.text


def test_no_open_redirect(client: TestClient, make) -> None:
    kenya = make.delegate("kenya", "KE")
    token = _csrf(client.get("/sign-in").text)
    r = client.post(
        "/sign-in",
        data={"csrf": token, "token": kenya.token, "next": "//evil.example/x"},
        follow_redirects=False,
    )
    assert r.headers["location"] == "/"


def test_directory_filters_and_member_page(client: TestClient, make) -> None:
    make.member("kenya", "KE")
    make.member("germany", "DE")
    africa = client.get("/members", params={"region": "Africa"}).text
    assert "Kenya" in africa and "Germany" not in africa
    page = client.get("/members/kenya")
    assert page.status_code == 200
    assert "Sub-Saharan Africa" in page.text and "Kenya" in page.text


def test_language_follows_browser_and_switch(client: TestClient, make) -> None:
    make.member("kenya", "KE")
    arabic = client.get("/members", headers={"Accept-Language": "ar"})
    assert 'dir="rtl"' in arabic.text and 'lang="ar"' in arabic.text
    switched = client.get("/members", params={"lang": "zh"})
    assert 'lang="zh"' in switched.text
    assert client.cookies.get("concord_lang") == "zh"
    assert 'lang="zh"' in client.get("/").text


def test_pages_stay_under_budget(client: TestClient, make) -> None:
    for slug, code in [("kenya", "KE"), ("brazil", "BR"), ("india", "IN"), ("france", "FR")]:
        make.member(slug, code)
    for path in ["/", "/members", "/members/kenya", "/sign-in"]:
        page = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200
        html_bytes = len(gzip.compress(page.content))
        script = client.get("/static/htmx.min.js", headers={"Accept-Encoding": "gzip"})
        css = client.get("/static/concord.css")
        total = html_bytes + len(gzip.compress(script.content)) + len(gzip.compress(css.content))
        assert total < PAGE_BUDGET, f"{path} transfers {total} bytes"


def test_html_errors_are_pages(client: TestClient) -> None:
    r = client.get("/members/nobody", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert "<html" in r.text and "member.unknown" in r.text
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"
