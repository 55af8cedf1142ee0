"""Train one config under several seeds and tabulate test accuracy and the label-free score per seed.

    python scripts/seed_study.py mnist --seeds 0 1 2 3 4 [--parallel 1] [--set train.epochs=10] [--data-dir DIR]
    python scripts/seed_study.py mnist --seeds 0 1 2 3 4 --resume [--epochs 10] [--threads 2]  # continue the runs
    python scripts/seed_study.py chairs3d --seeds 0 1 2 3 --parallel 4 --device cuda  # on a GPU; --resume
                                                                                      # --device cpu goes on here
    python scripts/seed_study.py mnist --seeds 0 1 2 3 4 --summarize-only --runs-dir runs/a --same-as runs/b

``--resume`` continues each seed's newest run (``infogan train --resume``: exact, so a study on a slow CPU can be
spread over several sittings); a seed without a checkpoint yet starts afresh.

Each seed is an ordinary ``infogan train`` run (its own numbered run folder); the table is read back from the
runs' ``metrics.jsonl`` (per-epoch test accuracy, logged by the loop) and written to ``--out`` as JSON. It also
reports how well the label-free score ranks the seeds against accuracy (Spearman rho).

``--same-as OTHER``: a run stopped early whose every per-epoch test row after its label-free choice equals the same
seed's run in study OTHER, bit for bit, is on that run's trajectory
(training is deterministic on one machine), so its table row takes OTHER's later epochs, marked ``"from"``. This is
how a restarts study skips re-training the seeds whose kept restart is the run without restarts.

metrics.jsonl marks a restart's rows with ``"candidate": <index>`` (``training.run_dir.RESTART_ROW_KEY``) and
the choice with ``"kept"``.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.metrics_file import METRICS_FILE, read_metrics  # noqa: E402  (imports no torch)
from training.metrics_file import RESTART_ROW_KEY as RESTART  # noqa: E402


def read_rows(run: Path) -> list[dict]:
    return read_metrics(run / METRICS_FILE)


def newest_run(runs_root: Path, seed: int) -> Path | None:
    """A seed's newest numbered run folder under a study's runs dir that has logged rows (None: it has none). A run
    just started (no metrics.jsonl yet) is not the one to tabulate."""
    folder = runs_root / f"seed{seed}"
    runs = sorted(p for p in folder.iterdir() if (p / METRICS_FILE).is_file()) if folder.is_dir() else []
    return runs[-1] if runs else None


def read_epochs(run: Path) -> list[dict]:
    rows = read_rows(run)
    by_step = {r["step"]: r for r in rows if any(k.startswith("test_acc") for k in r) and RESTART not in r}
    # with label-free restarts the kept restart's epochs before the choice are its score row's (the choice's step)
    kept = next((r["kept"] for r in rows if "kept" in r), None)
    for r in rows:
        tested = any(k.startswith("test_acc") for k in r)
        if kept is not None and r.get(RESTART) == kept and "label_free" in r and tested:
            by_step.setdefault(r["step"], r)
    # one row per epoch: a run resumed by an older version of the loop may have logged an epoch twice (same values)
    return [by_step[k] for k in sorted(by_step)]


def read_restarts(run: Path) -> list[dict]:
    """The label-free restarts' rows (train.restarts > 1): score, and test accuracy logged for the record."""
    rows = read_rows(run)
    return [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows if "label_free" in r]


def continuation(run: Path, other: Path) -> list[dict] | None:
    """``other``'s test rows after ``run``'s last one, if ``run``'s test rows since its choice of restart equal
    ``other``'s at the same steps, bit for bit, and there is at least one; else None.

    Only the per-epoch test rows are compared: they are functions of the whole state (accuracy, and NMI and the
    label-free score to full float precision). Loss rows are means over a logging window, which differs legitimately
    where a run stopped or resumed between two rows or its window straddles the choice."""
    choice = next((r["step"] for r in read_rows(run) if "kept" in r), None)
    if choice is None:
        return None
    theirs = {r["step"]: r for r in read_epochs(other)}
    mine = [r for r in read_epochs(run) if r["step"] > choice]
    if not mine or any(theirs.get(r["step"]) != r for r in mine):
        return None
    return [{**r, "from": str(other)} for r in theirs.values() if r["step"] > mine[-1]["step"]]


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho by scipy: tied values share their mean rank (two seeds with the same accuracy are not ranked
    by the order they were listed in); nan when either list is constant."""
    import warnings

    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant list: the nan says so
        return float(spearmanr(a, b).statistic)


def seed_command(args: argparse.Namespace, runs_root: Path, seed: int) -> tuple[list[str], Path, bool]:
    """(command, log file, append) of one seed: ``--resume`` continues its newest run where it has a checkpoint."""
    sub = runs_root / f"seed{seed}"
    previous = sorted(sub.glob("*/checkpoint.pt")) if args.resume else []
    log = runs_root / f"seed{seed}.log"
    if previous:  # the run's own config and data folder travel in its checkpoint
        cmd = [sys.executable, "-m", "training", "train", "--resume", str(previous[-1].parent), "--no-progress"]
        cmd += ["--epochs", str(args.epochs)] if args.epochs is not None else []
        cmd += ["--threads", str(args.threads)] if args.threads is not None else []
    else:
        cmd = [sys.executable, "-m", "training", "train", args.config, "--seed", str(seed), "--runs-dir", str(sub)]
        cmd += ["--no-progress", *(a for s in args.set for a in ("--set", s))]
        cmd += ["--data-dir", args.data_dir] if args.data_dir else []
    cmd += ["--device", args.device] if args.device else []  # new or resumed: a study moves between machines
    return cmd, log, bool(previous)


def run_all(jobs: list[tuple[int, list[str], Path, bool]], parallel: int, poll_s: float = 0.5) -> dict[int, int]:
    """Run each (seed, command, log, append) job, at most ``parallel`` at once, the next starting as soon as *any*
    running one ends; returns {seed: exit status}. SIGTERM or SIGHUP to this script is passed on to the running
    jobs (a training run then checkpoints and stops) and waited for before the script exits 128 + signal, so
    stopping a study never leaves its runs training on unseen (``--resume`` continues them)."""
    pending = list(jobs)
    running: list[tuple[int, subprocess.Popen]] = []
    codes: dict[int, int] = {}

    def stop(signum: int, _frame: object) -> None:
        for _, p in running:
            if p.poll() is None:
                p.send_signal(signum)
        for _, p in running:
            p.wait()
        sys.exit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while pending or running:
            while pending and len(running) < parallel:
                seed, cmd, log_path, append = pending.pop(0)
                with open(log_path, "a" if append else "w") as log:
                    running.append((seed, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
            ended = [r for r in running if r[1].poll() is not None]
            for seed, p in ended:
                running.remove((seed, p))
                codes[seed] = p.returncode
            if running and not ended:
                time.sleep(poll_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return codes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--runs-dir", default="runs/seed-study")
    ap.add_argument("--data-dir")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--out", default=None)
    ap.add_argument("--resume", action="store_true", help="continue each seed's newest run instead of starting one")
    ap.add_argument("--epochs", type=float, help="with --resume: the runs' new length (to train them longer)")
    ap.add_argument("--threads", type=int, help="with --resume: CPU threads per run (e.g. all cores for one run left)")
    ap.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help="each run's device, new or resumed (a study moves between them)",
    )
    ap.add_argument(
        "--same-as", help="another study's runs dir: extend runs that follow its run of the same seed exactly"
    )
    ap.add_argument(
        "--summarize-only",
        action="store_true",
        help="train nothing; tabulate the newest run of each seed already under --runs-dir",
    )
    args = ap.parse_args()
    if args.parallel < 1:
        ap.error(f"--parallel must be at least 1, got {args.parallel}")
    if len(set(args.seeds)) != len(args.seeds):
        ap.error(f"--seeds lists a seed more than once: {args.seeds} (each seed is one run, in one folder)")
    if not args.resume and (args.epochs is not None or args.threads is not None):
        ap.error("--epochs and --threads go with --resume (a new study sets them with --set train.epochs=N)")
    if args.epochs is not None and not args.epochs > 0:
        ap.error(f"--epochs must be positive, got {args.epochs:g}")
    if args.threads is not None and args.threads < 0:
        ap.error(f"--threads must be 0 (torch's default) or more, got {args.threads}")

    runs_root = Path(args.runs_dir)
    done: dict[int, Path] = {}
    if not args.summarize_only and not args.resume:
        # a config name or a --set that cannot load fails here in one line, not as one log per seed
        from training.config import load_config

        try:
            load_config(args.config, args.set)
        except (ValueError, OSError) as e:
            raise SystemExit(f"seed_study: error: {e}") from None
    if not args.summarize_only:
        jobs = [(seed, *seed_command(args, runs_root, seed)) for seed in args.seeds]
        runs_root.mkdir(parents=True, exist_ok=True)
        for seed, code in run_all(jobs, args.parallel).items():
            if code != 0:
                print(f"seed {seed} failed; see {runs_root / f'seed{seed}.log'}", file=sys.stderr)
    found = {seed: newest_run(runs_root, seed) for seed in args.seeds}
    missing = [seed for seed, run in found.items() if run is None]
    if missing:
        print(f"seed_study: no run of seed(s) {missing} under {runs_root}; left out of the table", file=sys.stderr)
    done.update({seed: run for seed, run in found.items() if run is not None})
    if not done:
        raise SystemExit(f"seed_study: error: no run of any seed under {runs_root} to tabulate")

    table = []
    for seed in done:
        epochs = read_epochs(done[seed])
        if not epochs:
            continue
        extended_from = None
        if args.same_as and (Path(args.same_as) / f"seed{seed}").is_dir():
            other = newest_run(Path(args.same_as), seed)
            later = continuation(done[seed], other) if other is not None else None
            if later:
                extended_from = {"measured_to_step": epochs[-1]["step"], "run": later[0]["from"]}
                epochs += later
        key = next(k for k in epochs[-1] if k.startswith("test_acc"))
        lfs_key = key.replace("test_acc", "test_lfs")
        table.append(
            {
                "seed": seed,
                "run": str(done[seed]),
                "accuracy": epochs[-1][key],
                "label_free": epochs[-1][lfs_key],
                "curve": [round(e[key], 4) for e in epochs],
                "restarts": read_restarts(done[seed]),
                **({"continued_as": extended_from} if extended_from else {}),
            }
        )
    accs = [r["accuracy"] for r in table]
    summary = {
        "config": args.config,
        "overrides": args.set,
        "seeds": table,
        "mean": statistics.mean(accs) if accs else None,
        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        "spearman_label_free_vs_accuracy": spearman(accs, [r["label_free"] for r in table]) if len(accs) > 2 else None,
    }
    for r in table:
        via = ""
        if "continued_as" in r:
            via = f"  (after step {r['continued_as']['measured_to_step']}: {r['continued_as']['run']})"
        print(
            f"seed {r['seed']}: accuracy {r['accuracy']:.4f}  label-free {r['label_free']:.4f}  curve {r['curve']}{via}"
        )
    if accs:
        print(
            f"mean {summary['mean']:.4f} +- {summary['std']:.4f} over {len(accs)} seeds; "
            f"Spearman(label-free, accuracy) = {summary['spearman_label_free_vs_accuracy']}"
        )
    out = Path(args.out) if args.out else runs_root / "summary.json"
    out.write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
