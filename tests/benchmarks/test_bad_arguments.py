"""Every benchmark script answers a bad command-line value (a count, a duration, a model id, a folder, a URL, a
device) or a missing tool as the project's CLIs do: one line ``<script>: error: ...`` naming the option, a non-zero
exit, no traceback, and before any work (nothing on stdout, no server, no download, no measurement)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

MODELS = str(ROOT / "models")
# a bad value is refused in about a second (train_throughput.py: its torch import); this leaves room for a busy machine
TIMEOUT_S = 30

# (script, arguments, the option the error line must name, extra environment); {tmp}: the test's temporary folder,
# holding empty/ (an empty folder), file (a file), broken/bad/manifest.json (a model folder that does not read)
CASES = [
    # serve_latency.py: counts, durations, threads, models, URL, the --wrk options and the device
    ("serve_latency.py", ["--seconds", "-1"], "--seconds", {}),
    ("serve_latency.py", ["--seconds", "nan"], "--seconds", {}),
    ("serve_latency.py", ["--seconds", "inf"], "--seconds", {}),
    ("serve_latency.py", ["--seconds", "six"], "--seconds", {}),
    ("serve_latency.py", ["--requests", "0"], "--requests", {}),
    ("serve_latency.py", ["--clients", "0"], "--clients", {}),
    ("serve_latency.py", ["--threads", "0"], "--threads", {}),
    ("serve_latency.py", ["--threads", "-2"], "--threads", {}),
    ("serve_latency.py", [], "--threads", {"ORT_THREADS": "many"}),
    ("serve_latency.py", ["--wrk", "--workers", "0"], "--workers", {}),
    ("serve_latency.py", ["--wrk", "--wrk-runs", "0"], "--wrk-runs", {}),
    ("serve_latency.py", ["--workers", "2"], "--workers", {}),  # a --wrk option without --wrk
    ("serve_latency.py", ["--device", "cuda"], "--device", {}),  # also a --wrk option
    ("serve_latency.py", ["--wrk", "--device", "cuda"], "--device", {}),  # no CUDA here (skipped where there is)
    ("serve_latency.py", ["--device", "tpu"], "--device", {}),
    ("serve_latency.py", ["--models-dir", "{tmp}/nope"], "--models-dir", {}),
    ("serve_latency.py", ["--models-dir", "{tmp}/empty"], "--models-dir", {}),
    ("serve_latency.py", ["--models-dir", "{tmp}/file"], "--models-dir", {}),
    ("serve_latency.py", ["--models-dir", MODELS, "--model", "nope"], "--model", {}),
    ("serve_latency.py", ["--url", "nope"], "--url", {}),
    ("serve_latency.py", ["--url", "http://127.0.0.1:1"], "--url", {}),
    # export_latency.py
    ("export_latency.py", ["--model", "nope"], "--model", {}),
    ("export_latency.py", ["--models-dir", "{tmp}/nope"], "--models-dir", {}),
    ("export_latency.py", ["--models-dir", "{tmp}/empty"], "--models-dir", {}),
    ("export_latency.py", ["--models-dir", "{tmp}/broken"], "--models-dir", {}),
    ("export_latency.py", ["--repeats", "0"], "--repeats", {}),
    # int8_matmul.py
    ("int8_matmul.py", ["--model", "nope"], "--model", {}),
    ("int8_matmul.py", ["--models-dir", "{tmp}/nope"], "--models-dir", {}),
    ("int8_matmul.py", ["--models-dir", "{tmp}/broken", "--model", "bad"], "--model", {}),
    ("int8_matmul.py", ["--repeats", "0"], "--repeats", {}),
    ("int8_matmul.py", ["--threads", "0"], "--threads", {}),
    ("int8_matmul.py", ["--network", "critic"], "--network", {}),
    # train_throughput.py: never a download unless --download, a missing data set in one line
    ("train_throughput.py", ["--steps", "0"], "--steps", {}),
    ("train_throughput.py", ["--threads", "-1"], "--threads", {}),
    ("train_throughput.py", ["--variants"], "--variants", {}),
    ("train_throughput.py", ["--data-dir", "{tmp}/empty", "--variants", "naive"], "--data-dir", {}),
    ("train_throughput.py", ["--data-dir", "{tmp}/file", "--variants", "naive"], "--data-dir", {}),
    # no --data-dir (""), none shared: the config's own folder, INFOGAN_DATA, where MNIST is missing: no download
    ("train_throughput.py", ["--data-dir", "", "--variants", "naive"], "--data-dir", {"INFOGAN_DATA": "{tmp}/empty"}),
    ("train_throughput.py", ["--fashion-dir", "{tmp}/nope", "--variants", "fashion"], "--fashion-dir", {}),
    ("train_throughput.py", ["--dsprites-dir", "{tmp}/file", "--variants", "dsprites"], "--dsprites-dir", {}),
    ("train_throughput.py", ["--chairs3d-dir", "{tmp}/file", "--variants", "chairs3d"], "--chairs3d-dir", {}),
    ("train_throughput.py", ["--set", "nonsense", "--variants", "naive"], "--set", {}),
    ("train_throughput.py", ["--set", "train.precision='fp8'", "--variants", "naive"], "--set", {}),
    # load_test.py
    ("load_test.py", ["--clients", "0"], "--clients", {}),
    ("load_test.py", ["--seconds", "0"], "--seconds", {}),
    ("load_test.py", ["--warmup", "-1"], "--warmup", {}),
    ("load_test.py", ["--rss-bound-mib", "nan"], "--rss-bound-mib", {}),
    ("load_test.py", ["--models-dir", "{tmp}/nope"], "--models-dir", {}),
    ("load_test.py", ["--models-dir", MODELS, "--model", "nope"], "--model", {}),
    ("load_test.py", ["--url", "http://example.com:8000"], "--url", {}),
    ("load_test.py", ["--url", "http://127.0.0.1:1"], "--url", {}),
    ("load_test.py", ["--pid", "1"], "--pid", {}),  # --pid without --url
    ("load_test.py", ["--url", "http://127.0.0.1:1", "--pid", "999999999"], "--pid", {}),
    # abuse.py
    ("abuse.py", ["--root", "{tmp}/nope"], "--root", {}),
    ("abuse.py", ["--root", "{tmp}/empty"], "--root", {}),
    ("abuse.py", ["--models-dir", "{tmp}/empty"], "--models-dir", {}),
    ("abuse.py", ["--bombs", "0"], "--bombs", {}),
    ("abuse.py", ["--big-json", "0"], "--big-json", {}),
    ("abuse.py", ["--stalled", "-1"], "--stalled", {}),
    ("abuse.py", ["--stall-wait", "0"], "--stall-wait", {}),
    ("abuse.py", ["--json", "{tmp}/nope/out.json"], "--json", {}),
    # browser_latency.py: models, code, durations and a missing Chromium, before any server or browser
    ("browser_latency.py", ["--models-dir", "{tmp}/nope"], "--models-dir", {}),
    ("browser_latency.py", ["--models-dir", MODELS, "--model", "nope"], "--model", {}),
    ("browser_latency.py", ["--models-dir", MODELS, "--model", "mnist", "--code", "digit"], "--code", {}),
    ("browser_latency.py", ["--models-dir", MODELS, "--code", "nope"], "--code", {}),
    ("browser_latency.py", ["--seconds", "0"], "--seconds", {}),
    ("browser_latency.py", ["--step-ms", "-16"], "--step-ms", {}),
    ("browser_latency.py", ["--models-dir", MODELS], "chromium", {"CHROMIUM": "{tmp}/no-chromium"}),
    # middleware_cost.py (already so: kept so)
    ("middleware_cost.py", ["--requests", "0"], "--requests", {}),
    ("middleware_cost.py", ["--rounds", "-1"], "--rounds", {}),
]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "broken" / "bad").mkdir(parents=True)
    (tmp_path / "broken" / "bad" / "manifest.json").write_text("{")
    return tmp_path


def run(script: str, args: list[str], env: dict[str, str], tmp: Path) -> subprocess.CompletedProcess:
    full = {**os.environ, **{k: v.format(tmp=tmp) for k, v in env.items()}}
    for name in ("DEVICE", "MODELS_DIR"):  # the caller's service settings are no part of a benchmark's arguments
        full.pop(name, None)
    if "ORT_THREADS" not in env:
        full.pop("ORT_THREADS", None)
    argv = [sys.executable, str(ROOT / "benchmarks" / script), *(a.format(tmp=tmp) for a in args)]
    # its own process group: a script that wrongly went on to start a server or a browser is stopped with them
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"still running after {TIMEOUT_S} s (a benchmark, a server or a download?): {err[-2000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.parametrize("script, args, option, env", CASES, ids=[f"{s}:{' '.join(a) or e}" for s, a, _, e in CASES])
def test_bad_value_is_one_line(scratch, script, args, option, env):
    if script == "serve_latency.py" and args == ["--wrk", "--device", "cuda"]:
        from backend.core.cuda_probe import nvidia_present

        if nvidia_present():  # here --device cuda may well be right; without a GPU it is refused at once
            pytest.skip("an NVIDIA GPU is present")
    res = run(script, args, env, scratch)
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if "error:" in line]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"{script}: error: "), res.stderr
    assert option in (lines[0].lower() if option == "chromium" else lines[0]), res.stderr
    assert res.stdout == "", res.stdout  # refused before any work: no header, no figures


def test_missing_wrk_is_one_line(monkeypatch):
    """_server.wrk without wrk installed: a RuntimeError the scripts print as one ``error:`` line, not an exit that
    skips their handler."""
    import shutil

    from benchmarks import _server

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="wrk not found"):
        _server.wrk("http://127.0.0.1:1/generate", "{}", clients=1, seconds=1)
