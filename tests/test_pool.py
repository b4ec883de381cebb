"""The hub's connection pool lends one connection to every worker thread at once."""

from __future__ import annotations

from concord import api
from concord.config import Settings

THREADS = 40  # AnyIO's worker threads, where sync handlers and async routes' steps run


def test_every_worker_thread_gets_a_connection_at_once(settings: Settings) -> None:
    # Prepare: the hub's app and its engine, as `concord serve` builds them.
    app = api.create_app(settings)
    engine = app.state.engine
    engine.pool._timeout = 2  # a pool too small fails in 2 s here, not after 30
    held = []
    try:
        # Execute: as many connections at once as there are worker threads for handlers,
        # plus the event courier's and the gauges'.
        for _ in range(THREADS + 2):
            held.append(engine.connect())
        # Assert
        assert len(held) == THREADS + 2
    finally:
        for connection in held:
            connection.close()
        engine.dispose()
