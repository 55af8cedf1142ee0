"""Hostile traffic against a real server (issue 23, items 1-3), and what another client sees meanwhile.

Starts ``infogan serve`` (the command the README and the image run) from ``--root`` on 127.0.0.1 and a free port,
then runs three phases, each bounded in count and time, while a probe client sends one-image ``/generate`` requests
one after another:

* ``bombs``: concurrent uploads to ``/infer-codes`` that are small on the wire and huge decoded: a 4096² 16-bit RGBA
  PNG (~130 KB, 128 MiB of samples) and a 1 × 16,777,216 grey PNG (~16 KB, 16 M pixels in one row);
* ``big-json``: ``POST /generate`` bodies of 42 MB (one ``z`` row of 10 M floats), sent concurrently;
* ``stalled``: raw sockets that connect and send nothing, half their headers, or all headers and half a body; the
  phase reports how many the server closed and when (until ``--stall-wait`` seconds).

Per phase: the probe's p50/p95/max latency and errors, the server's peak RSS over the phase (VmRSS sampled every
20 ms) and each attack's status and time. ``--root`` serves another checkout (a worktree of the code before a fix)
with this script and the same models, so before/after compare like with like.

    python benchmarks/abuse.py [--root DIR] [--models-dir models] [--bombs 2] [--big-json 2] [--stalled 60]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._cli import count, fail, models_dir, output_file, positive_float  # noqa: E402
from benchmarks._server import ROOT, free_port  # noqa: E402


def png(width: int, height: int, color_type: int, bit_depth: int) -> bytes:
    """An all-zero PNG streamed row by row into zlib (the raw image is never held: 4096² 16-bit RGBA is 128 MiB)."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    row = b"\0" * (1 + width * channels * bit_depth // 8)  # filter byte 0, then the samples
    comp = zlib.compressobj(9)
    data = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


class RssSampler:
    """Peak VmRSS of a process over a phase, sampled every 20 ms in a thread."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.start_mib = self.read()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def read(self) -> float:
        try:
            with open(f"/proc/{self.pid}/status") as f:
                return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, self.read())


class Probe:
    """Another client: one-image /generate requests back to back on its own connection, timed."""

    def __init__(self, url: str):
        self.url, self.times, self.errors, self._stop = url, [], [], threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as c:
            i = 0
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = c.post("/generate", json={"n": 1, "seed": i})
                    (self.times if r.status_code == 200 else self.errors).append(time.perf_counter() - t0)
                except httpx.HTTPError:
                    self.errors.append(time.perf_counter() - t0)
                i += 1
                time.sleep(0.01)  # a person's pace would be slower still; this keeps the count in hand

    def stop(self) -> dict:
        self._stop.set()
        self._t.join(65)
        ms = sorted(t * 1000 for t in self.times)
        if not ms:
            return {"n": 0, "errors": len(self.errors)}
        return {
            "n": len(ms),
            "p50_ms": statistics.median(ms),
            "p95_ms": ms[min(len(ms) - 1, int(0.95 * len(ms)))],
            "max_ms": ms[-1],
            "errors": len(self.errors),
        }


def timed_post(url: str, path: str, **kw) -> str:
    t0 = time.perf_counter()
    try:
        with httpx.Client(timeout=120) as c:
            status = c.post(url + path, **kw).status_code
    except httpx.HTTPError as e:
        status = type(e).__name__
    return f"{status} in {time.perf_counter() - t0:.2f} s"


def phase_bombs(url: str, n: int) -> list[str]:
    rgba16 = png(4096, 4096, 6, 16)
    wide = png(16_777_216, 1, 0, 8)
    jobs = [("4096² 16-bit RGBA", rgba16)] * n + [("1 x 16,777,216 grey", wide)] * n
    with ThreadPoolExecutor(len(jobs)) as ex:
        futs = [
            (
                name,
                len(data),
                ex.submit(timed_post, url, "/infer-codes", files={"file": ("bomb.png", data, "image/png")}),
            )
            for name, data in jobs
        ]
        return [f"{name} ({size // 1024} KB): {f.result()}" for name, size, f in futs]


def phase_big_json(url: str, n: int) -> list[str]:
    body = ('{"n": 1, "z": [[' + ",".join(["0.125"] * 7_000_000) + "]]}").encode()  # 42 MB
    with ThreadPoolExecutor(n) as ex:
        futs = [
            ex.submit(timed_post, url, "/generate", content=body, headers={"Content-Type": "application/json"})
            for _ in range(n)
        ]
        return [f"POST /generate {len(body) / 1e6:.0f} MB: {f.result()}" for f in futs]


def phase_stalled(port: int, n: int, wait_s: float) -> list[str]:
    """n sockets in three kinds; each is watched until the server closes it or wait_s passes."""
    body_head = (
        b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        + b'{"n": 1, "z": [['
        + b"0," * 500
    )
    kinds = {
        "nothing": b"",
        "half headers": b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Ty",
        "headers + half body": body_head,
    }
    socks = []
    for i in range(n):
        kind = list(kinds)[i % len(kinds)]
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if kinds[kind]:
            s.sendall(kinds[kind])
        s.setblocking(False)
        socks.append((kind, s, time.monotonic()))
    closed: dict[str, list[float]] = {k: [] for k in kinds}
    open_ = list(socks)
    deadline = time.monotonic() + wait_s
    while open_ and time.monotonic() < deadline:
        still = []
        for kind, s, t0 in open_:
            try:
                data = s.recv(65536)  # a 408 answer then EOF, or EOF alone
                if data == b"":
                    closed[kind].append(time.monotonic() - t0)
                    s.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[kind].append(time.monotonic() - t0)
                s.close()
                continue
            still.append((kind, s, t0))
        open_ = still
        time.sleep(0.1)
    for _, s, _ in open_:
        s.close()
    per_kind = n // len(kinds)
    return [
        f"{kind}: {len(t)}/{per_kind} closed by the server"
        + (f" after {min(t):.1f}-{max(t):.1f} s" if t else "")
        + f" (watched {wait_s:.0f} s)"
        for kind, t in closed.items()
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(ROOT), help="checkout whose `infogan serve` is started (default: this one)")
    ap.add_argument("--models-dir", default=str(ROOT / "models"))
    ap.add_argument("--bombs", type=count(1), default=2, help="uploads of each bomb kind, all at once")
    ap.add_argument("--big-json", type=count(1), default=2, help="42 MB bodies at once")
    ap.add_argument("--stalled", type=count(3), default=60, help="stalled sockets, a third of each kind")
    ap.add_argument("--stall-wait", type=positive_float, default=30.0)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if not (Path(args.root) / "training" / "cli.py").is_file():
        ap.error(f"--root {args.root}: not a checkout of this project (no training/cli.py there)")
    models_dir(ap, args.models_dir)
    if args.json:
        output_file(ap, args.json, "--json")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": args.root, "DEVICE": "cpu"}
    cmd = [
        sys.executable,
        "-m",
        "training.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--models-dir",
        str(Path(args.models_dir).resolve()),
    ]
    proc = subprocess.Popen(cmd, cwd=args.root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {"root": args.root}
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                why = f"exit {proc.returncode}" if proc.poll() is not None else "not ready within 120 s"
                fail(f"server did not start ({' '.join(cmd)}: {why})")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        phases = [
            ("idle", lambda: (time.sleep(5), [])[1]),
            ("bombs", lambda: phase_bombs(url, args.bombs)),
            ("big-json", lambda: phase_big_json(url, args.big_json)),
            ("stalled", lambda: phase_stalled(port, args.stalled, args.stall_wait)),
        ]
        for name, fn in phases:
            rss = RssSampler(proc.pid)
            probe = Probe(url)
            time.sleep(1)
            t0 = time.perf_counter()
            attacks = fn()
            took = time.perf_counter() - t0
            lat = probe.stop()
            peak = rss.stop()
            results[name] = {
                "probe": lat,
                "rss_start_mib": rss.start_mib,
                "rss_peak_mib": peak,
                "seconds": took,
                "attacks": attacks,
            }
            p = (
                f"p50 {lat['p50_ms']:.1f} / p95 {lat['p95_ms']:.1f} / max {lat['max_ms']:.0f} ms"
                if lat["n"]
                else "no answer"
            )
            print(
                f"[{name}] {took:.1f} s; other client: {p} ({lat['n']} ok, {lat['errors']} failed); server RSS "
                f"{rss.start_mib:.0f} -> peak {peak:.0f} MiB",
                flush=True,
            )
            for line in attacks:
                print(f"    {line}", flush=True)
        with open(f"/proc/{proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))
        results["vmhwm_mib"] = hwm
        print(f"server VmHWM (peak RSS over its life): {hwm:.0f} MiB")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
