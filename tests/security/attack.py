"""The hostile client of the lock test, run in a process of its own (loopback only)."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx

PATHS = ["/proposals/NO-SUCH-{n}", "/no/such/page/{n}", "/members/nobody-{n}"]


def attack(base: str, seconds: float, per_second: int, threads: int = 5) -> dict[str, int]:
    """Error pages with made-up session cookies at `per_second` for `seconds`; status counts."""
    if urlparse(base).hostname != "127.0.0.1":
        raise ValueError("the attack only ever targets 127.0.0.1")
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda _: _one_thread(base, seconds, per_second / threads), range(threads))
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part)
    return dict(total)


def _one_thread(base: str, seconds: float, rate: float) -> Counter[str]:
    answered: Counter[str] = Counter()
    ends = time.monotonic() + seconds
    with httpx.Client(base_url=base, timeout=10) as http:
        for n in range(int(seconds * rate) + 1):  # bounded
            started = time.monotonic()
            if started > ends:
                break
            path = PATHS[n % len(PATHS)].format(n=n)
            cookie = {"concord_session": secrets.token_urlsafe(16)}
            try:
                page = http.get(path, headers={"accept": "text/html"}, cookies=cookie)
                answered[str(page.status_code)] += 1
            except httpx.HTTPError as exc:
                answered[type(exc).__name__] += 1
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - started)))
    return answered
