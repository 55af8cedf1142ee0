"""Shared by the service benchmarks: start `uvicorn backend.main:app` on a free port, read its RSS."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from spec.latent import LatentSpec

ROOT = Path(__file__).resolve().parents[1]


def client_limits(clients: int) -> httpx.Limits:
    """Connection pool for ``clients`` concurrent keep-alive clients. Idle connections are dropped after 2 s, before
    uvicorn closes them (its keep-alive timeout is 5 s, httpx's default expiry also 5 s): a request sent on a
    connection the server is closing that instant fails with ReadError, which is the client's race."""
    return httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`uvicorn backend.main:app` from the repository root in a subprocess on a free port.

    ``log``: file for the server's output (None: inherit this process's); ``env``: settings such as DEVICE or
    ORT_THREADS. ``stop()`` ends it (the page's tests also use that to see how a dead server is reported)."""

    def __init__(
        self,
        models_dir: str | Path,
        log: Path | None = None,
        *,
        app: str = "backend.main:app",
        factory: bool = False,
        workers: int = 1,
        **env: str,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        # WORKERS: each worker process gives its ONNX Runtime sessions cores / workers threads (core/config.py)
        full_env = {**os.environ, "MODELS_DIR": str(Path(models_dir).resolve()), "WORKERS": str(workers), **env}
        self.log = log.open("w") if log else None
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                *(["--factory"] if factory else []),
                app,
                "--workers",
                str(workers),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT if self.log else None,
        )

    def _log_text(self) -> str:
        return f"; log: {Path(self.log.name).read_text()}" if self.log else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        """``wait_ready`` below, for this server; the error carries its log."""
        wait_ready(self.url, self.proc, self.workers, timeout, self._log_text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()


@contextlib.contextmanager
def server(
    models_dir: str | Path,
    *,
    ready_timeout: float = 120.0,
    app: str = "backend.main:app",
    factory: bool = False,
    workers: int = 1,
    **env: str,
):
    """Yields (base URL, pid) once /readyz says 200; stops the server on exit."""
    srv = Server(models_dir, app=app, factory=factory, workers=workers, **env)
    try:
        srv.wait_ready(ready_timeout)
        yield srv.url, srv.proc.pid
    finally:
        srv.stop()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's worker processes), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def ready_answers_needed(workers: int) -> int:
    """/readyz 200s in a row, each on a new connection, before every worker counts as ready. One worker: 1.
    N workers share one listening socket and any of them may take a connection, so one 200 says only that
    *some* worker has loaded its models; another may still answer 503 (a 4-worker benchmark read its model
    info from such a worker and failed). With 10 N in a row, a still-loading worker taking about 1/N of the
    connections goes unseen with probability (1 - 1/N)^(10 N) < e^-10 (5e-5)."""
    return 1 if workers <= 1 else 10 * workers


def wait_ready(url: str, proc: subprocess.Popen, workers: int = 1, timeout: float = 60.0, log_text=lambda: "") -> None:
    """Return once ``url``/readyz has answered 200 ``ready_answers_needed(workers)`` times in a row (every worker
    loaded); raise, with ``log_text()`` appended, if ``proc`` exits or the time runs out."""
    deadline, in_a_row, need = time.monotonic() + timeout, 0, ready_answers_needed(workers)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}{log_text()}")
        try:
            r = httpx.get(f"{url}/readyz", timeout=2)
            ok = r.status_code == 200
            if r.status_code == 503 and r.json().get("status") == "no models":
                # loading is over and nothing loaded: waiting out the timeout (two minutes) would change nothing
                errors = "; ".join(f"{k}: {v}" for k, v in r.json().get("errors", {}).items()) or "no model folders"
                raise RuntimeError(f"the server has no model to serve ({errors}){log_text()}")
        except (httpx.HTTPError, ValueError):
            ok = False
        in_a_row = in_a_row + 1 if ok else 0
        if in_a_row >= need:
            return
        if not ok:
            time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout}s{log_text()}")


def model_info(base: str, model_id: str | None = None) -> dict:
    """ModelInfo of ``model_id`` from a running server, or of its first (default) model; a clear error (the
    server's own message) for an unknown id, a server still loading (503) or one with no models."""
    r = httpx.get(f"{base}/models/{model_id}" if model_id else f"{base}/models", timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"GET {r.request.url.path}: {r.status_code} {r.text[:200]}")
    if model_id:
        return r.json()
    models = r.json()["models"]
    if not models:
        raise RuntimeError(f"{base} serves no models")
    return models[0]


# what GET /models adds to each code's spec JSON for the page
PAGE_FIELDS = ("control", "caption")


def served_spec(info: dict) -> LatentSpec:
    """The latent spec of a served model, from its GET /models entry (its code JSON plus the page's fields)."""
    codes = [{k: v for k, v in code.items() if k not in PAGE_FIELDS} for code in info["codes"]]
    return LatentSpec.from_dict({"noise": info["noise"], "codes": codes})


def floor_app():
    """The HTTP floor of benchmarks/serve_latency.py --wrk: a bare FastAPI app (no middleware, no model, no
    validation) whose POST /generate answers a fixed JSON body of FLOOR_BYTES bytes, the size of the service's
    one-image answer. `uvicorn --factory benchmarks._server:floor_app`; /readyz so Server.wait_ready works."""
    from fastapi import FastAPI, Response

    size = int(os.environ.get("FLOOR_BYTES", "1000"))
    body = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'
    app = FastAPI()

    @app.post("/generate")
    async def generate() -> Response:
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


# wrk's Lua hook for a fixed JSON POST (wrk sends GET without a body by default)
_WRK_LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
"""


def wrk(url: str, body: str, *, clients: int, seconds: float, threads: int = 2) -> dict:
    """requests/s, latency p50/p99 (ms) and non-2xx/error counts of ``clients`` keep-alive connections POSTing
    ``body`` to ``url`` for ``seconds`` with wrk (a C load generator: the client is not the bottleneck)."""
    import json
    import re
    import shutil
    import tempfile

    # RuntimeError, not SystemExit: the scripts print it as one "<script>: error:" line (benchmarks/_cli.py)
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk not found: apt-get install -y wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_WRK_LUA.format(body=json.dumps(body)))  # a JSON string literal is a valid Lua string literal
    cmd = [exe, f"-t{min(threads, clients)}", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", f.name, url]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"{' '.join(cmd)}: exit {e.returncode}: {(e.stderr or e.stdout).strip()[:500]}") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{' '.join(cmd)}: no answer within {seconds + 30:g} s") from None
    finally:
        os.unlink(f.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else float("nan"),
        "p50": ms("50"),
        "p99": ms("99"),
        "non2xx": int(bad.group(1)) if bad else 0,
        "errors": sum(map(int, errors.groups())) if errors else 0,
        "raw": out,
    }
