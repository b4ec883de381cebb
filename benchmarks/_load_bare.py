"""The ceiling of `benchmarks/load.py`: bare FastAPI routes on the same server stack.

    python benchmarks/_load_bare.py PORT

Served by `uvicorn.run` with the arguments `concord serve` passes (factory, one worker,
log level info, 5 s graceful shutdown), so that only our work differs. Each route answers at
once what the delegates' requests expect: small JSON, 201 for a ballot.
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/{path:path}")
    def read(path: str) -> dict[str, Any]:
        return {"path": path}

    @app.post("/{path:path}")
    async def write(path: str, request: Request) -> JSONResponse:
        body = await request.body()
        status = 201 if path.endswith("/ballots") else 200
        return JSONResponse({"path": path, "bytes": len(body)}, status_code=status)

    return app


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        "_load_bare:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        workers=1,
        log_level="info",
        timeout_graceful_shutdown=5,
        app_dir=str(__import__("pathlib").Path(__file__).parent),
    )
