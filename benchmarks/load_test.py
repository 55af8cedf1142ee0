"""Load test of backend/: concurrent clients mixing /generate and /infer-codes against 127.0.0.1 only.

  python benchmarks/load_test.py [--models-dir models] [--model ID] [--clients 32] [--seconds 60] [--rss-bound-mib 64]

Starts `uvicorn backend.main:app` on a free port (or use --url with --pid to read a running server's RSS).
Passes with zero errors (any non-2xx or transport failure) and server RSS growth, from the end of a warm-up
to the end of the run, within --rss-bound-mib.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._cli import (  # noqa: E402
    count,
    errors_in_one_line,
    http_url,
    model_folder,
    non_negative_float,
    positive_float,
)
from benchmarks._server import client_limits, model_info, rss_mib, served_spec, server  # noqa: E402


async def run(base: str, pid: int | None, args) -> int:
    info = model_info(base, args.model)
    spec = served_spec(info)
    codes = info["codes"]
    m = info["id"]
    limits = client_limits(args.clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        sample = (await client.post("/generate", json={"model": m, "n": 4, "seed": 0})).json()["images"]
        pngs = [base64.b64decode(s) for s in sample]
        stats = {"generate": [], "infer-codes": [], "traverse": []}
        errors: list[str] = []
        rss: list[tuple[float, float]] = []

        def random_codes(rng: random.Random) -> dict:
            """About half of the codes fixed, at values drawn from their priors."""
            _, values = spec.sample_np(np.random.default_rng(rng.randrange(2**32)), 1)
            return {name: v for name, v in spec.rows(values)[0].items() if rng.random() < 0.5}

        async def worker(i: int, stop: float) -> None:
            rng = random.Random(i)
            while time.perf_counter() < stop:
                kind = rng.choices(["generate", "infer-codes", "traverse"], [0.6, 0.35, 0.05])[0]
                t = time.perf_counter()
                try:
                    if kind == "generate":
                        r = await client.post(
                            "/generate",
                            json={
                                "model": m,
                                "n": rng.choice([1, 1, 1, 4, 16]),
                                "seed": rng.randrange(2**31),
                                "codes": random_codes(rng),
                            },
                        )
                    elif kind == "traverse":
                        r = await client.post(
                            "/traverse", json={"model": m, "code": rng.choice(codes)["name"], "rows": 3, "cols": 5}
                        )
                    elif rng.random() < 0.5:
                        r = await client.post(
                            "/infer-codes", files={"file": ("d.png", rng.choice(pngs), "image/png")}, data={"model": m}
                        )
                    else:
                        url = "data:image/png;base64," + base64.b64encode(rng.choice(pngs)).decode()
                        r = await client.post("/infer-codes", json={"image": url, "model": m})
                    if r.status_code != 200:
                        errors.append(f"{kind}: {r.status_code} {r.text[:200]}")
                except httpx.HTTPError as exc:
                    errors.append(f"{kind}: {exc!r}")
                stats[kind].append(time.perf_counter() - t)

        async def sample_rss(stop: float) -> None:
            while pid and time.perf_counter() < stop:
                rss.append((time.perf_counter(), rss_mib(pid)))
                await asyncio.sleep(1)

        warm = time.perf_counter() + args.warmup
        await asyncio.gather(*(worker(i, warm) for i in range(args.clients)))
        rss_start = rss_mib(pid) if pid else float("nan")
        for v in stats.values():
            v.clear()
        t0 = time.perf_counter()
        stop = t0 + args.seconds
        await asyncio.gather(sample_rss(stop), *(worker(1000 + i, stop) for i in range(args.clients)))
        elapsed = time.perf_counter() - t0
        rss_end = rss_mib(pid) if pid else float("nan")

    total = sum(len(v) for v in stats.values())
    print(
        f"{args.clients} clients, {elapsed:.0f} s against {base} (model {info['id']}): {total} requests, "
        f"{total / elapsed:.0f} req/s, {len(errors)} errors"
    )
    for kind, v in stats.items():
        if v:
            print(
                f"  {kind:12s} {len(v):6d} req  p50 {np.percentile(v, 50) * 1000:7.1f} ms  "
                f"p99 {np.percentile(v, 99) * 1000:7.1f} ms"
            )
    for e in errors[:10]:
        print("  error:", e)
    ok = not errors
    if pid:
        peak = max([r for _, r in rss] + [rss_end])
        growth = rss_end - rss_start
        print(
            f"  server RSS after warm-up {rss_start:.1f} MiB, end {rss_end:.1f} MiB, peak {peak:.1f} MiB; growth "
            f"{growth:+.1f} MiB (bound {args.rss_bound_mib} MiB: {'PASS' if growth <= args.rss_bound_mib else 'FAIL'})"
        )
        ok = ok and growth <= args.rss_bound_mib
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--url", help="a running server on 127.0.0.1 instead of starting one")
    ap.add_argument("--pid", type=count(1), help="with --url: the server's pid, to read its RSS")
    ap.add_argument("--model", help="model id (default: the first model)")
    ap.add_argument("--clients", type=count(1), default=32)
    ap.add_argument("--seconds", type=positive_float, default=60)
    ap.add_argument("--warmup", type=non_negative_float, default=5)
    ap.add_argument(
        "--rss-bound-mib",
        type=non_negative_float,
        default=64,
        help="allowed RSS growth after warm-up (allocator arenas and ORT's per-batch-size buffers settle)",
    )
    args = ap.parse_args()
    if args.pid is not None and not args.url:
        ap.error(f"--pid {args.pid}: reads the RSS of a server given by --url (without it, of the one started here)")
    if args.url:
        if args.pid is not None and not Path(f"/proc/{args.pid}/status").is_file():
            ap.error(f"--pid {args.pid}: no such process")
        url = http_url(ap, args.url, hosts=("127.0.0.1", "localhost"))
        sys.exit(asyncio.run(run(url, args.pid, args)))
    model_folder(ap, args.models_dir, args.model)
    with server(args.models_dir, DEVICE="cpu") as (base, pid):
        code = asyncio.run(run(base, pid, args))
    sys.exit(code)


if __name__ == "__main__":
    # a server that did not start, answered an error or went away: its message, not a traceback
    with errors_in_one_line(RuntimeError, httpx.HTTPError):
        main()
