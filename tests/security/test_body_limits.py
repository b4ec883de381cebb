"""Body limits at the hub's edge, against a real Uvicorn: chunked bodies reach the handler
whole, are counted as they stream and cut at the limit; declared lengths are checked before a
byte is read; and no layer is Starlette's `BaseHTTPMiddleware` (whose `call_next` drops a
wrapped body)."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware

from concord.config import Settings


def chunked_post(
    base: str, path: str, chunks: list[bytes], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    """Sends `chunks` as a chunked body over a raw socket; the status and the JSON answer."""
    parts = urlsplit(base)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Transfer-Encoding: chunked"]
    lines += ["Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the hub may stop reading once it has refused the body
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read() or b"{}")


def test_no_layer_is_base_http_middleware(app: FastAPI) -> None:
    # Execute
    classes = [m.cls for m in app.user_middleware]

    # Assert
    assert classes, "the edge is installed"
    assert not any(isinstance(cls, type) and issubclass(cls, BaseHTTPMiddleware) for cls in classes)


def test_a_chunked_json_body_reaches_the_handler_whole(live_server: str, make) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    body = json.dumps(
        {"owner": "kenya", "name": "swahili-asr", "kind": "model", "licence": "apache-2.0"}
    ).encode()

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(body), 7):  # many small chunks, no Content-Length
            yield body[start : start + 7]

    # Execute
    response = httpx.post(
        f"{live_server}/api/commons/repos",
        content=pieces(),
        headers={**kenya.headers, "Content-Type": "application/json"},
        timeout=20,
    )

    # Assert
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["id"] == "kenya/swahili-asr"


def test_a_chunked_body_past_the_limit_is_cut_with_413(
    live_server: str, settings: Settings, make
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    settings.max_body_bytes = 1000
    headers = {**kenya.headers, "Content-Type": "application/json"}

    # Execute
    status, answer = chunked_post(live_server, "/api/commons/repos", [b" " * 600] * 4, headers)

    # Assert
    assert status == 413
    assert answer["error"]["code"] == "request.too_large"
    assert answer["error"]["details"]["limit"] == 1000


def test_a_chunked_upload_past_the_upload_limit_is_cut_with_413(
    live_server: str, settings: Settings, make
) -> None:
    # Prepare: the commons upload route streams the body without a limit of its own (an
    # update for a job is refused before its body is read, so it cannot show the cut)
    kenya = make.delegate("kenya", "KE")
    settings.max_upload_bytes = 4000

    # Execute
    status, answer = chunked_post(
        live_server,
        "/api/commons/uploads?filename=notes.txt",
        [b"a" * 1500] * 4,
        kenya.headers,
    )

    # Assert
    assert status == 413
    assert answer["error"]["code"] == "request.too_large"
    assert answer["error"]["details"]["limit"] == 4000


def test_upload_routes_take_chunked_bodies_up_to_the_upload_limit(
    live_server: str, settings: Settings, make
) -> None:
    # Prepare: larger than an ordinary body may be, within the upload limit
    kenya = make.delegate("kenya", "KE")
    settings.max_body_bytes = 1000
    settings.max_upload_bytes = 4000
    data = b'{"hidden_size": 8}' + b" " * 2982

    # Execute
    status, answer = chunked_post(
        live_server,
        "/api/commons/uploads?filename=config.json",
        [data[:1500], data[1500:]],
        kenya.headers,
    )

    # Assert
    assert status == 201, answer
    assert answer["size"] == 3000


def test_a_declared_length_past_the_limit_is_refused_before_reading(
    live_server: str, settings: Settings, make
) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    settings.max_body_bytes = 1000
    parts = urlsplit(live_server)
    head = (
        f"POST /api/commons/repos HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {kenya.token}\r\nContent-Type: application/json\r\n"
        "Content-Length: 5000000\r\nConnection: close\r\n\r\n"
    )

    # Execute: the headers alone, not one byte of the announced body
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(head.encode())
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = json.loads(response.read())

    # Assert
    assert response.status == 413
    assert answer["error"]["code"] == "request.too_large"


def test_a_body_shorter_than_its_declared_length_is_refused(client: TestClient, make) -> None:
    # Prepare
    kenya = make.delegate("kenya", "KE")
    body = json.dumps(
        {"owner": "kenya", "name": "short", "kind": "model", "licence": "mit"}
    ).encode()

    # Execute
    response = client.post(
        "/api/commons/repos",
        content=body,
        headers={
            **kenya.headers,
            "Content-Type": "application/json",
            "Content-Length": str(len(body) + 40),
        },
    )

    # Assert
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request.incomplete"
    assert "kenya/short" not in client.get("/api/commons/repos").text
