"""scripts/seed_study.py's --same-as: a run is extended by another study's epochs only if it followed that run
exactly."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("seed_study", ROOT / "scripts" / "seed_study.py")
seed_study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(seed_study)


def write_run(path: Path, rows: list[dict]) -> Path:
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def loss(step: int, v: float) -> dict:
    return {"loss_D": v, "step": step, "epoch": step / 100, "images_per_s": 123.0}


def eval_row(step: int, acc: float, nmi: float = 0.7) -> dict:
    return {"step": step, "epoch": step / 100, "test_acc/d": acc, "test_nmi/d": nmi, "test_lfs/d": 2.0}


# the run without restarts: epochs of 100 steps, losses logged every 50
OTHER = [
    loss(50, 1.0),
    loss(100, 1.1),
    eval_row(100, 0.5),
    loss(150, 1.2),
    loss(200, 1.3),
    eval_row(200, 0.8),
    loss(250, 1.4),
    loss(300, 1.5),
    eval_row(300, 0.9),
]
# the restarts run: two starts of 100 steps; start 0 (OTHER's first 100 steps) was kept and goes on
START_ROWS = [
    {"L_I": 2.0, "step": 50, "candidate": 0},
    {"step": 100, "candidate": 0, "label_free": 2.1, "test_acc/d": 0.5, "test_nmi/d": 0.7, "test_lfs/d": 2.0},
    {"step": 100, "candidate": 1, "label_free": 2.0, "test_acc/d": 0.4, "test_nmi/d": 0.6, "test_lfs/d": 2.0},
    {"step": 100, "kept": 0},
]


def test_a_run_on_the_other_runs_trajectory_takes_its_later_epochs(tmp_path):
    # stopped at step 201 and its loss window there a partial one: loss rows are not compared
    mine = write_run(tmp_path / "a", START_ROWS + [loss(150, 1.2), loss(200, 1.3), eval_row(200, 0.8), loss(201, 7.0)])
    other = write_run(tmp_path / "b", OTHER)
    later = seed_study.continuation(mine, other)
    assert [r["step"] for r in later] == [300] and later[0]["test_acc/d"] == 0.9 and later[0]["from"] == str(other)


@pytest.mark.parametrize("field", ["test_acc/d", "test_nmi/d"])
def test_a_run_that_left_the_other_runs_trajectory_is_not_extended(tmp_path, field):
    changed = {**eval_row(200, 0.8), field: 0.8000001}
    mine = write_run(tmp_path / "a", START_ROWS + [loss(150, 1.2), loss(200, 1.3), changed])
    assert seed_study.continuation(mine, write_run(tmp_path / "b", OTHER)) is None


def test_a_run_without_a_test_row_after_its_choice_is_not_extended(tmp_path):
    mine = write_run(tmp_path / "a", START_ROWS + [loss(150, 1.2)])
    assert seed_study.continuation(mine, write_run(tmp_path / "b", OTHER)) is None


def test_a_run_that_kept_its_second_start_is_not_extended(tmp_path):
    rows = START_ROWS[:-1] + [{"step": 100, "kept": 1}, eval_row(200, 0.85)]
    assert seed_study.continuation(write_run(tmp_path / "a", rows), write_run(tmp_path / "b", OTHER)) is None


def job(seed: int, tmp_path: Path, code: str) -> tuple[int, list[str], Path, bool]:
    import sys

    return seed, [sys.executable, "-c", code], tmp_path / f"seed{seed}.log", False


def test_the_next_seed_starts_when_any_running_one_ends(tmp_path):
    """With two slots, a quick seed's slot goes to the third seed while a slow first one is still running."""
    import time

    stamp = "import time, pathlib; pathlib.Path(r'{}').write_text(str(time.monotonic())); time.sleep({})"
    jobs = [
        job(0, tmp_path, stamp.format(tmp_path / "0", 3)),
        job(1, tmp_path, stamp.format(tmp_path / "1", 0) + "; raise SystemExit(3)"),
        job(2, tmp_path, stamp.format(tmp_path / "2", 0)),
    ]
    t0 = time.monotonic()
    codes = seed_study.run_all(jobs, parallel=2, poll_s=0.05)
    assert codes == {0: 0, 1: 3, 2: 0}
    started = {s: float((tmp_path / str(s)).read_text()) for s in range(3)}
    assert started[2] - t0 < 2.5  # not after seed 0's 3 s


def test_stopping_the_study_stops_its_runs(tmp_path):
    """SIGTERM to the study reaches the running seeds (a training run checkpoints on it) before the study exits."""
    import signal
    import subprocess
    import sys
    import time

    child = (
        "import signal, sys, time, pathlib, os\n"
        "def bye(*_):\n"
        "    pathlib.Path(r'{}').write_text('stopped'); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "pathlib.Path(r'{}').write_text(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    driver = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('s', r'{ROOT / 'scripts' / 'seed_study.py'}')\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "from pathlib import Path\n"
        f"jobs = [(s, [sys.executable, '-c', {child!r}.format(r'{tmp_path}/stopped%d' % s, r'{tmp_path}/pid%d' % s)],"
        f" Path(r'{tmp_path}') / ('log%d' % s), False) for s in (0, 1)]\n"
        "m.run_all(jobs, parallel=2, poll_s=0.05)\n"
    )
    study = subprocess.Popen([sys.executable, "-c", driver])
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"pid{s}").exists() for s in (0, 1)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # both children have installed their handlers
    study.send_signal(signal.SIGTERM)
    assert study.wait(timeout=30) == 128 + signal.SIGTERM
    for s in (0, 1):
        assert (tmp_path / f"stopped{s}").read_text() == "stopped"
        pid = int((tmp_path / f"pid{s}").read_text())
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.parametrize("resume", [False, True])
def test_the_device_reaches_new_and_resumed_runs(tmp_path, resume):
    # a study started on a lent GPU goes on on the CPU: --device is passed to `infogan train` in both cases
    import argparse

    runs = tmp_path / "study"
    if resume:
        (runs / "seed3" / "00000-mnist-s3").mkdir(parents=True)
        (runs / "seed3" / "00000-mnist-s3" / "checkpoint.pt").write_bytes(b"")
    args = argparse.Namespace(
        config="mnist", resume=resume, epochs=None, threads=None, set=[], data_dir=None, device="cuda"
    )
    cmd, _log, appended = seed_study.seed_command(args, runs, 3)
    assert appended == resume and ("--resume" in cmd) == resume
    assert cmd[cmd.index("--device") + 1] == "cuda"
    args.device = None
    assert "--device" not in seed_study.seed_command(args, runs, 3)[0]


def _script(name: str, *args: str):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_a_study_that_cannot_start_or_has_nothing_to_tabulate_says_so_in_one_line(tmp_path):
    res = _script("seed_study.py", "no-such-config", "--runs-dir", str(tmp_path / "runs"))
    assert res.returncode == 1 and "seed_study: error: no config 'no-such-config'" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "runs").exists()  # no seed was started
    res = _script("seed_study.py", "mnist", "--summarize-only", "--runs-dir", str(tmp_path / "none"))
    assert res.returncode == 1 and "no run of any seed under" in res.stderr and "Traceback" not in res.stderr
    res = _script("plot_disentanglement.py", "--run", f"x={tmp_path / 'nope'}", "--out", str(tmp_path / "a.png"))
    assert res.returncode == 1 and "no metrics.jsonl at" in res.stderr and "Traceback" not in res.stderr


def test_a_seed_without_a_run_is_left_out_of_the_table(tmp_path):
    (tmp_path / "seed1").mkdir()
    assert seed_study.newest_run(tmp_path, 0) is None and seed_study.newest_run(tmp_path, 1) is None
    write_run(tmp_path / "seed1" / "00000-mnist-s1", [eval_row(100, 0.5)])
    write_run(tmp_path / "seed1" / "00001-mnist-s1", [eval_row(100, 0.6)])
    assert seed_study.newest_run(tmp_path, 1).name == "00001-mnist-s1"
    (tmp_path / "seed1" / "00002-mnist-s1").mkdir()  # just started: no row logged yet
    assert seed_study.newest_run(tmp_path, 1).name == "00001-mnist-s1"


def test_a_torn_last_row_or_a_run_just_started_is_tabulated_not_a_traceback(tmp_path):
    run = write_run(tmp_path / "runs" / "seed0" / "00000-mnist-s0", [eval_row(100, 0.5), eval_row(200, 0.75)])
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 300, "test_acc/d": 0.')  # killed mid-write
    (tmp_path / "runs" / "seed0" / "00001-mnist-s0").mkdir()  # a resume that has not logged yet
    res = _script("seed_study.py", "mnist", "--seeds", "0", "--summarize-only", "--runs-dir", str(tmp_path / "runs"))
    assert res.returncode == 0 and "seed 0: accuracy 0.7500" in res.stdout, res.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--parallel", "0"], "--parallel must be at least 1, got 0"),  # it spun forever at 100 % CPU
        (["--seeds", "0", "0"], "--seeds lists a seed more than once"),
        (["--epochs", "5"], "--epochs and --threads go with --resume"),
        (["--threads", "2"], "--epochs and --threads go with --resume"),
        (["--resume", "--epochs", "0"], "--epochs must be positive"),
        (["--resume", "--threads", "-3"], "--threads must be 0"),
    ],
)
def test_bad_study_options_are_one_line_before_any_run(tmp_path, args, words):
    res = _script("seed_study.py", "mnist", "--runs-dir", str(tmp_path / "runs"), *args)
    assert res.returncode == 2 and words in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "a, b",
    [
        ([0.9, 0.9, 0.95], [1, 2, 3]),
        ([0.9, 0.9, 0.95], [2, 1, 3]),  # the same ties listed in another order: the same rho
        ([0.5, 0.7, 0.7, 0.7, 0.9], [3, 1, 2, 2, 5]),
        ([0.1, 0.4, 0.2, 0.3], [1, 4, 2, 3]),
    ],
)
def test_spearman_ranks_ties_by_their_mean_position(a, b):
    from scipy.stats import spearmanr

    assert seed_study.spearman(a, b) == pytest.approx(spearmanr(a, b)[0])


def test_plot_disentanglement_errors_are_one_line(tmp_path):
    run = write_run(tmp_path / "r1", [eval_row(100, 0.5)])  # no dis/ rows
    res = _script("plot_disentanglement.py", "--run", f"mnist={run}", "--out", str(tmp_path / "a.png"))
    assert res.returncode == 1 and "no disentanglement rows" in res.stderr and "Traceback" not in res.stderr
    res = _script("plot_disentanglement.py", "--run", str(run), "--out", str(tmp_path / "a.png"))
    assert res.returncode == 1 and "expected LABEL=RUN_DIR" in res.stderr, res.stderr
