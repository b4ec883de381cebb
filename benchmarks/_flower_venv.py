"""Flower's interpreter for the benchmarks that run Flower beside Concord in the same run.

`flwr` cannot go into the project's environment (installing it would replace this project's
FastAPI, Starlette, Typer, Rich and Uvicorn), so, as benchmarks/simulation.py does, Flower runs
in its own virtual environment, benchmarks/.venv-flower, created on first use with
`pip install "flwr[simulation]" numpy` (a few minutes), and its side of a benchmark runs there
as a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
last_stderr = ""  # the last Flower run's stderr, for a caller that finds its output short
FLOWER = HERE / ".venv-flower" / "bin" / "python"


def interpreter() -> Path | str:
    """The Flower venv's python, creating the venv if needed; or why it could not be made."""
    if FLOWER.exists():
        return FLOWER
    try:
        subprocess.run([sys.executable, "-m", "venv", str(FLOWER.parent.parent)], check=True)
        subprocess.run(
            [str(FLOWER), "-m", "pip", "install", "-q", "flwr[simulation]", "numpy"], check=True
        )
    except subprocess.CalledProcessError as exc:
        return f"Flower could not be installed: {exc}"
    return FLOWER


def run(script: str, *args: object, timeout: float = 1800) -> list[dict[str, Any]] | str:
    """Runs benchmarks/`script` with Flower's python; its JSON lines, or why it failed."""
    python = interpreter()
    if isinstance(python, str):
        return python
    done = subprocess.run(
        [str(python), str(HERE / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    global last_stderr
    last_stderr = done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    if done.returncode != 0 or not lines:
        return f"Flower failed (exit {done.returncode}): {done.stderr[-500:]}"
    return lines


def version() -> str:
    python = interpreter()
    if isinstance(python, str):
        return ""
    done = subprocess.run(
        [str(python), "-c", "import flwr; print(flwr.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()
