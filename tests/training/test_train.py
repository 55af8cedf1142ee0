"""CPU smoke tests of the training loop on generated data: train, checkpoint, resume, kill -9, NaN, DDP."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training import checkpoint as ckpt_io
from training import loop, machine, runtime, train_state
from training.config import Config, load_config
from training.data import DataError
from training.loop import Trainer, TrainingError, train
from training.restarts import Restarts
from training.runtime import cpu_has_native_bf16, resolve_precision

ROOT = Path(__file__).resolve().parents[2]


def _tiny_overrides(data_dir) -> list[str]:
    return [
        f"data.dir={json.dumps(str(data_dir))}",
        "data.verify=false",
        "data.download=false",
        "model.widths={ fc = 32, ch = 8 }",
        "optim.batch_size=32",
        "train.checkpoint_every=4",
        "train.log_every=2",
        "train.epochs=1",
        "train.threads=1",
        "train.restarts=1",
    ]


def infogan(*args: str) -> subprocess.CompletedProcess:
    """The console script in a process of its own (its exit status and stderr as a user sees them)."""
    return subprocess.run(
        [sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def tiny_config(data_dir, **train_kw) -> Config:
    cfg = load_config("mnist", _tiny_overrides(data_dir))
    for k, v in train_kw.items():
        setattr(cfg.train, k, v)
    return cfg


def test_training_writes_a_complete_run_folder(fake_mnist_dir, tmp_path):
    ck_path = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False)
    run = ck_path.parent
    assert run.name.startswith("00000-mnist-s0")
    assert json.loads((run / "training_options.json").read_text())["model"]["widths"] == {"fc": 32, "ch": 8}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("L_I/digit" in r for r in rows) and any("test_acc/digit" in r for r in rows)
    assert (run / "samples" / "epoch-001.png").exists()
    ck = ckpt_io.load(ck_path)
    assert ck["step"] == 16 and ck["spec"]["codes"][0]["name"] == "digit"
    G, D, _ = ckpt_io.load_networks(ck)  # rebuilt from the file alone
    assert G(*G.spec.sample(2)).shape == (2, 1, 28, 28)


def test_resume_continues_exactly(fake_mnist_dir, tmp_path):
    """Stopping at step 8 and resuming gives bit-identical weights to an uninterrupted run."""
    straight = ckpt_io.load(train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "a", progress=False))
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "b", progress=False, max_steps=8)
    assert ckpt_io.load(part)["step"] == 8
    resumed = ckpt_io.load(train(None, resume=part.parent, progress=False))
    assert resumed["step"] == straight["step"] == 16
    for k in straight["G"]:
        assert torch.equal(straight["G"][k], resumed["G"][k]), k


def _as_if_saved_on_cuda(ck_path: Path) -> None:
    """Rewrite a CPU run's checkpoint as the same run on a GPU would have saved it: train.device "cuda" and a CUDA
    generator's 16-byte Philox state as its latent stream (weights and optimizer states load to either device)."""
    ck = torch.load(ck_path, map_location="cpu", weights_only=True)
    ck["config"]["train"]["device"] = "cuda"
    ck["latent_rng"] = (
        torch.cuda.default_generators[0].get_state()
        if torch.cuda.is_available()
        else torch.zeros(16, dtype=torch.uint8)
    )
    torch.save(ck, ck_path)


def test_a_run_from_a_gpu_goes_on_on_the_cpu(fake_mnist_dir, tmp_path, capsys, monkeypatch):
    """A run started on a lent GPU continues in a later session without one: `--resume RUN --device cpu` (refused
    before, and the CUDA generator state could not seed the CPU generator), with a note that its latent stream was
    reseeded; without --device, one message saying how."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=8)
    _as_if_saved_on_cuda(part)
    again = tmp_path / "again"
    shutil.copytree(part.parent, again)
    with pytest.raises(TrainingError, match="give --device cpu to continue it on the CPU"):
        train(None, resume=part.parent, progress=False)
    capsys.readouterr()
    ck = ckpt_io.load(train(None, resume=part.parent, device="cpu", progress=False))
    assert ck["step"] == 16 and ck["config"]["train"]["device"] == "cpu"
    assert ck["latent_rng"].numel() == torch.Generator().get_state().numel()  # a CPU stream from here on
    assert "latent stream was saved on another device" in capsys.readouterr().out
    # the reseeded stream is a function of (seed, step): the same resume of a copy gives the same weights
    ck_again = ckpt_io.load(train(None, resume=again, device="cpu", progress=False))
    assert ck_again["step"] == 16
    for k in ck["G"]:
        assert torch.equal(ck["G"][k], ck_again["G"][k]), k


def test_resume_drops_metrics_rows_logged_after_the_checkpoint(fake_mnist_dir, tmp_path):
    """A run killed after logging step 10 with its checkpoint at step 8 (and a line torn by the kill): the resumed
    run logs steps 10 and 12 once each, with its own values."""
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=8)
    metrics = part.parent / "metrics.jsonl"
    with metrics.open("a") as f:
        f.write(json.dumps({"step": 10, "loss_D": 123.0}) + "\n" + '{"step": 12, "loss_')
    train(None, resume=part.parent, progress=False, max_steps=12)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    assert rows[4]["loss_D"] != 123.0
    assert not list(part.parent.glob("*.tmp"))


def test_a_finished_run_trained_longer_equals_the_longer_run(fake_mnist_dir, tmp_path):
    """--resume RUN --epochs 2 on a finished 1-epoch run gives bit-identical weights to a 2-epoch run, keeps the
    command that started it, and refuses to shorten a run."""
    straight = ckpt_io.load(train(tiny_config(fake_mnist_dir, epochs=2), runs_dir=tmp_path / "a", progress=False))
    short = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "b", progress=False)
    longer = ckpt_io.load(train(None, resume=short.parent, progress=False, epochs=2))
    assert longer["step"] == straight["step"] == 32 and longer["config"]["train"]["epochs"] == 2
    for k in straight["G"]:
        assert torch.equal(straight["G"][k], longer["G"][k]), k
    assert longer["command"] == straight["command"] and len(longer["resumed_by"]) == 1
    # one machine per command, the resume's appended (training.machine.describe)
    assert straight["machines"] == [machine.describe("cpu")]
    assert longer["machines"] == [machine.describe("cpu")] * 2
    other = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "c", progress=False, max_steps=4)
    before = ckpt_io.load(other)
    before["machines"] = [{"cpu": "elsewhere"}]  # as if begun on another machine
    ckpt_io.save_atomic(before, other)
    again = ckpt_io.load(train(None, resume=other.parent, progress=False, max_steps=8))
    assert again["machines"] == [{"cpu": "elsewhere"}, machine.describe("cpu")]
    with pytest.raises(TrainingError, match="shorter"):
        train(None, resume=short.parent, progress=False, epochs=0.5)
    res = infogan("train", "--resume", str(short.parent), "--seed", "3")
    assert res.returncode != 0 and "--seed" in res.stderr and "Traceback" not in res.stderr
    # the thread count is the machine's, not the recipe's: a resume may set it, and the checkpoint records it
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "train",
            "--resume",
            str(short.parent),
            "--threads",
            "2",
            "--epochs",
            "2.25",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert ckpt_io.load(short)["config"]["train"]["threads"] == 2
    res = subprocess.run(
        [sys.executable, "-m", "training", "train", "--resume", str(short.parent), "--threads", "-1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode != 0 and "--threads" in res.stderr and "Traceback" not in res.stderr


def train_process(data_dir, runs_dir, *extra: str) -> subprocess.Popen:
    """``infogan train`` of a tiny 6-epoch (96-step) run in a subprocess, to be killed or signalled."""
    cmd = [
        sys.executable,
        "-m",
        "training",
        "train",
        "mnist",
        "--data-dir",
        str(data_dir),
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
        "--epochs",
        "6",
        "--set",
        "data.verify=false",
        "--set",
        "model.widths={ fc = 32, ch = 8 }",
        "--set",
        "optim.batch_size=32",
        "--set",
        "train.threads=1",
        "--set",
        "train.restarts=1",
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def resume_to_end(run_dir: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "training", "train", "--resume", str(run_dir), "--no-progress"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert ckpt_io.load(run_dir / "checkpoint.pt")["step"] == 96  # 6 epochs x 16 steps


def test_kill_9_then_resume_finishes(fake_mnist_dir, tmp_path):
    proc = train_process(fake_mnist_dir, tmp_path, "--set", "train.checkpoint_every=4")
    ck = None
    deadline = time.time() + 120
    while time.time() < deadline:
        found = list(tmp_path.glob("*/checkpoint.pt"))
        if found and ckpt_io.load(found[0])["step"] >= 8:
            ck = found[0]
            break
        time.sleep(0.05)
    assert ck is not None, "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = ckpt_io.load(ck)["step"]  # the file is whole after kill -9, even one that hit a write
    assert killed_at < 96
    resume_to_end(ck.parent)
    assert not list(ck.parent.glob("*.tmp"))  # a temp file from a write the kill interrupted is gone after resume


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_checkpoints_the_step_reached_then_resume_finishes(fake_mnist_dir, tmp_path, sig):
    # no periodic checkpoint during the run: whatever is on disk after the stop was written because of the signal
    proc = train_process(fake_mnist_dir, tmp_path, "--set", "train.checkpoint_every=1000", "--set", "train.log_every=1")
    deadline = time.time() + 120
    while time.time() < deadline and not any(
        json.loads(line)["step"] >= 3 for m in tmp_path.glob("*/metrics.jsonl") for line in m.read_text().splitlines()
    ):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    assert f"stopped by {sig.name}" in err and "checkpoint saved" in err and "--resume" in err
    (ck,) = tmp_path.glob("*/checkpoint.pt")
    stopped_at = ckpt_io.load(ck)["step"]
    logged = [json.loads(line)["step"] for line in (ck.parent / "metrics.jsonl").read_text().splitlines()]
    assert 3 <= stopped_at < 96 and stopped_at == max(logged)  # the last step trained is the one saved
    resume_to_end(ck.parent)


def test_a_fork_continues_a_copy_with_changed_settings_and_leaves_the_run_as_it_was(fake_mnist_dir, tmp_path):
    """--resume RUN --fork NEW --set ...: the copy goes on from the run's step with the new settings (a fork without
    changes is bit-identical to the resume, so the change is the only difference), its metrics keep the run's rows up
    to the step, its checkpoint records the change; the run's own folder is not touched."""
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=8)
    before = {p.name: p.read_bytes() for p in part.parent.iterdir() if p.is_file()}
    same = ckpt_io.load(train(None, resume=part.parent, progress=False, fork=tmp_path / "same"))
    changed_path = train(
        None, resume=part.parent, progress=False, fork=tmp_path / "changed", overrides=["loss.lambda_continuous=0.5"]
    )
    assert {p.name: p.read_bytes() for p in part.parent.iterdir() if p.is_file()} == before
    resumed = ckpt_io.load(train(None, resume=part.parent, progress=False))
    changed = ckpt_io.load(changed_path)
    assert same["step"] == changed["step"] == resumed["step"] == 16
    for k in resumed["G"]:
        assert torch.equal(same["G"][k], resumed["G"][k]), k
    assert any(not torch.equal(changed["G"][k], resumed["G"][k]) for k in resumed["G"])
    assert changed["config"]["loss"]["lambda_continuous"] == 0.5
    assert resumed["config"]["loss"]["lambda_continuous"] == 0.1
    assert changed["command"] == resumed["command"] and len(changed["resumed_by"]) == 1

    def steps(run):
        return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]

    assert steps(changed_path.parent) == steps(part.parent) and steps(part.parent)[:4] == [2, 4, 6, 8]
    assert json.loads((changed_path.parent / "training_options.json").read_text())["loss"]["lambda_continuous"] == 0.5
    # the fork's checkpoint holds the change from the start, so a fork killed before its first save resumes changed
    ck, _, folder = train_state.load_for_resume(part, fork=tmp_path / "early", overrides=["loss.lambda_real=0.5"])
    assert not folder.exists()  # written only once the trainer is built
    train_state.write_fork(ck, part, folder)
    assert ckpt_io.load(folder / "checkpoint.pt")["config"]["loss"]["lambda_real"] == 0.5
    assert steps(folder) == steps(part.parent)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"fork": "same-again", "overrides": []}, "is not an empty folder"),
        ({"fork": "run itself", "overrides": []}, "is not an empty folder"),
        ({"fork": "new", "overrides": ["latent.noise={ name = 'z', dim = 3 }"]}, "not latent"),
        ({"fork": "new", "overrides": ["optim.batch_size=4"]}, "not optim.batch_size"),
        ({"fork": "new", "overrides": ["train.seed=3"]}, "not train.seed"),
        ({"fork": "new", "overrides": ["loss.lambda_real=-1"]}, "loss.lambda_real must be >= 0"),
        ({"overrides": ["loss.lambda_real=1"]}, "--fork DIR"),
        # a whole table, or a setting under its old name, changes a fixed setting too
        ({"fork": "new", "overrides": ["train={seed = 7, epochs = 10.0}"]}, "--set changes train.seed"),
        ({"fork": "new", "overrides": ["optim={batch_size = 4}"]}, "--set changes optim.batch_size"),
        ({"fork": "new", "overrides": ["train.candidates=3"]}, "--set changes train.restarts"),
        ({"epochs": float("inf")}, "--epochs must be a finite number > 0, got inf"),
        ({"epochs": float("nan")}, "--epochs must be a finite number > 0, got nan"),
        # a fork's train.epochs below what the run trained: the fork once ran "8 steps" on a 32-step checkpoint
        ({"fork": "new", "overrides": ["train.epochs=0.01"]}, "train.epochs 0.01 is shorter than the"),
        ({"max_steps": 1}, "--max-steps 1 is below the run's step 2"),  # once trained nothing, exit 0
    ],
)
def test_a_fork_refuses_what_it_cannot_change(fake_mnist_dir, tmp_path, kwargs, words):
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=2)
    (tmp_path / "same-again").mkdir()
    (tmp_path / "same-again" / "checkpoint.pt").write_bytes(b"another run")
    if "fork" in kwargs:
        kwargs = {**kwargs, "fork": part.parent if kwargs["fork"] == "run itself" else tmp_path / kwargs["fork"]}
    with pytest.raises((TrainingError, ValueError), match=re.escape(words)):
        train(None, resume=part.parent, progress=False, **kwargs)
    assert not (tmp_path / "new").exists()


def test_a_fork_and_init_from_train_at_their_own_optimizer_rates(fake_mnist_dir, tmp_path):
    """Adam's moments come from the checkpoint, the rates and betas from the config: loading the optimizers' state
    brought back the run's old rates, so a fork's new optim.lr_* was written in its config and never used."""
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    rates = ["optim.lr_g=0.0123", "optim.lr_d=0.0456", "optim.beta1=0.1"]
    seen = []
    real_run = Trainer.run

    def record(self):
        seen.append([(g["lr"], g["betas"]) for opt in (self.opt_G, self.opt_D) for g in opt.param_groups])
        return real_run(self)

    loop.Trainer.run = record
    try:
        train(None, resume=part.parent, progress=False, fork=tmp_path / "fork", overrides=rates, max_steps=3)
        cfg = load_config("mnist", [*_tiny_overrides(fake_mnist_dir), *rates])
        train(cfg, runs_dir=tmp_path / "init", progress=False, max_steps=1, init_from=part.parent)
        train(cfg, runs_dir=tmp_path / "init-D", progress=False, max_steps=1, init_from=part.parent, init_parts="D")
        train(None, resume=part.parent, progress=False, max_steps=3)  # a plain resume keeps the run's own
    finally:
        loop.Trainer.run = real_run
    fork, init, init_d, plain = seen
    betas = (0.1, cfg.optim.beta2)
    # G; D's trunk; Q's head (lr_q, else lr_g)
    want = [(0.0123, betas), (0.0456, betas), (cfg.optim.lr_q or 0.0123, betas)]
    assert fork == init == init_d == want, (fork, init, init_d)
    own = load_config("mnist", _tiny_overrides(fake_mnist_dir)).optim
    old_betas = (own.beta1, own.beta2)
    assert plain == [(own.lr_g, old_betas), (own.lr_d, old_betas), (own.lr_q or own.lr_g, old_betas)], plain


def test_a_copied_older_checkpoint_does_not_overwrite_the_runs_later_one(fake_mnist_dir, tmp_path):
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=2)
    shutil.copy(part, part.parent / "step2.pt")
    train(None, resume=part.parent, progress=False, max_steps=4)
    with pytest.raises(TrainingError, match="checkpoint.pt is at step 4, later than step2.pt's step 2"):
        train(None, resume=part.parent / "step2.pt", progress=False, max_steps=3)
    assert ckpt_io.load(part)["step"] == 4  # untouched
    forked = train(None, resume=part.parent / "step2.pt", progress=False, max_steps=3, fork=tmp_path / "from-step2")
    assert ckpt_io.load(forked)["step"] == 3 and ckpt_io.load(part)["step"] == 4


def test_a_run_goes_on_after_its_data_moved_with_data_dir(fake_mnist_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(fake_mnist_dir, data)
    cfg = load_config("mnist", [*_tiny_overrides(data)])
    part = train(cfg, runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    moved = data.rename(tmp_path / "moved")
    with pytest.raises(DataError):
        train(None, resume=part.parent, progress=False, max_steps=3)
    again = ckpt_io.load(train(None, resume=part.parent, progress=False, max_steps=4, data_dir=moved))
    assert again["step"] == 4 and again["config"]["data"]["dir"] == str(moved)


def test_a_run_being_trained_cannot_be_resumed_by_another_process(fake_mnist_dir, tmp_path):
    from training.run_dir import run_lock

    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=2)
    with run_lock(part.parent):  # as the process training it holds it
        res = infogan("train", "--resume", str(part.parent), "--max-steps", "3")
    assert res.returncode == 1 and f"is being trained by pid {os.getpid()}" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and ckpt_io.load(part)["step"] == 2
    assert ckpt_io.load(train(None, resume=part.parent, progress=False, max_steps=3))["step"] == 3  # released


def test_a_crash_in_the_epoch_report_of_a_checkpoint_step_loses_no_row(fake_mnist_dir, tmp_path, monkeypatch):
    """The epoch's report (and a metrics row) of a step that is also a checkpoint step comes before its checkpoint:
    a run that dies in it resumes from the checkpoint before, and logs that row again. Saved first, the resumed run
    started after it and the epoch's test row was never written."""
    from training import epoch_report

    cfg = tiny_config(fake_mnist_dir, epochs=2, checkpoint_every=8)  # 16 steps an epoch: the epoch ends at step 16
    real = epoch_report.end_epoch
    calls = []

    def dies_at_the_first_epoch_end(t, log):
        calls.append(t.step)
        if len(calls) == 1:
            raise RuntimeError("killed during the epoch report")
        real(t, log)

    monkeypatch.setattr(epoch_report, "end_epoch", dies_at_the_first_epoch_end)
    with pytest.raises(RuntimeError, match="killed during the epoch report"):
        train(cfg, runs_dir=tmp_path, progress=False)
    run = next(tmp_path.iterdir())
    assert ckpt_io.load(run / "checkpoint.pt")["step"] == 8  # step 16's checkpoint was not written before it
    train(None, resume=run, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if any(k.startswith("test_acc/") for k in r)] == [16, 32]
    assert calls == [16, 16, 32]


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[net][k], b[net][k]) for net in ("G", "D") for k in a[net])


def rows_without_timings(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_s")}
        for line in (run / "metrics.jsonl").read_text().splitlines()
    ]


def crashing_at(step: int, real_step):
    """Trainer.train_step that raises Crash (a kill -9) when the run reaches ``step``."""

    def train_step(self, real):
        if self.step == step:
            raise Crash
        return real_step(self, real)

    return train_step


def crash_resume_and_compare(cfg, tmp_path: Path, monkeypatch, crash_at: int, checkpointed: int) -> None:
    """A run crashed at step ``crash_at`` (its last checkpoint at ``checkpointed``) and resumed ends with the weights
    and metrics rows of the same run never stopped."""
    straight = train(cfg(), runs_dir=tmp_path / "a", progress=False)
    real_step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", crashing_at(crash_at, real_step))
    with pytest.raises(Crash):
        train(cfg(), runs_dir=tmp_path / "b", progress=False)
    (run,) = (tmp_path / "b").iterdir()
    assert ckpt_io.load(run / "checkpoint.pt")["step"] == checkpointed
    monkeypatch.setattr(Trainer, "train_step", real_step)
    resumed = train(None, resume=run, progress=False)
    assert same_weights(ckpt_io.load(straight), ckpt_io.load(resumed))
    assert rows_without_timings(run) == rows_without_timings(straight.parent)


def test_a_new_run_killed_before_its_first_periodic_checkpoint_resumes_exactly(fake_mnist_dir, tmp_path, monkeypatch):
    """A kill -9 in the steps before the first periodic checkpoint (train.checkpoint_every: 200 in mnist) left a folder
    without checkpoint.pt, which --resume refused ("no checkpoint"): all those steps lost and the folder a dead end.
    The checkpoint a new run writes before its first step resumes it, bit-identical to a run never stopped. A start
    that fails in its first step still leaves no folder."""
    cfg = lambda: tiny_config(fake_mnist_dir, checkpoint_every=1000)  # noqa: E731
    crash_resume_and_compare(cfg, tmp_path, monkeypatch, crash_at=5, checkpointed=0)
    monkeypatch.setattr(Trainer, "train_step", crashing_at(0, Trainer.train_step))
    with pytest.raises(Crash):
        train(cfg(), runs_dir=tmp_path / "c", progress=False)
    assert not list((tmp_path / "c").iterdir())


def test_a_kill_between_two_rows_resumes_them_with_the_same_values(fake_mnist_dir, tmp_path, monkeypatch):
    """A checkpoint between two metrics rows (checkpoint_every 3, log_every 4): the resumed run's first row averaged
    only the steps after the checkpoint (steps 7-8 for the row of 5-8), so a kill changed the logged losses; the
    checkpoint holds the row in progress, and the resumed rows are the uninterrupted run's."""
    cfg = lambda: tiny_config(fake_mnist_dir, checkpoint_every=3, log_every=4)  # noqa: E731
    crash_resume_and_compare(cfg, tmp_path, monkeypatch, crash_at=7, checkpointed=6)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_during_the_last_checkpoint_write_loses_nothing(fake_mnist_dir, tmp_path, monkeypatch, sig):
    """Ctrl-C or SIGTERM while a run writes its last checkpoint: that write ran after the loop had put the signals'
    own actions back, so the signal tore it off (SIGINT: "stopped before the first step; nothing was trained";
    SIGTERM: dead without a word) and every step since the last periodic checkpoint was lost, a short run's folder
    left without any. The write now completes and the run ends, finished."""

    class SignalAction(Exception):
        """Stands for the signal's own action (KeyboardInterrupt, or the end of the process)."""

    def own_action(signum, frame):
        raise SignalAction(signum)

    real = ckpt_io.save_atomic

    def signalled_while_writing_the_last(obj, path):
        if obj["step"] == 16:
            os.kill(os.getpid(), sig)
        real(obj, path)

    monkeypatch.setattr(ckpt_io, "save_atomic", signalled_while_writing_the_last)
    previous = signal.signal(sig, own_action)
    try:
        ck = train(tiny_config(fake_mnist_dir, checkpoint_every=1000), runs_dir=tmp_path, progress=False)
    finally:
        signal.signal(sig, previous)
    assert ckpt_io.load(ck)["step"] == 16


def test_resume_removes_temp_files_of_interrupted_restart_and_options_writes(fake_mnist_dir, tmp_path):
    """A kill -9 while the best restart's restart-<i>.pt (a checkpoint's size) or the options file was written left
    its temp file, which nothing removed (only checkpoint.pt's and metrics.jsonl's were)."""
    cfg = tiny_config(fake_mnist_dir, restarts=2, restart_steps=6)
    run = train(cfg, runs_dir=tmp_path, progress=False, max_steps=3).parent
    torn = [run / "restart-0.pt.k9x2ab.tmp", run / "training_options.json.q1w2e3.tmp"]
    for p in torn:
        p.write_bytes(b"half a file")
    train(None, resume=run, progress=False)
    assert [p.name for p in torn if p.exists()] == []


def test_a_kill_while_a_resume_rewrites_the_options_file_leaves_it_whole(fake_mnist_dir, tmp_path, monkeypatch):
    """Each start (and resume) rewrites training_options.json; a plain write killed half-way left it torn."""
    run = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=2).parent
    before = (run / "training_options.json").read_text()

    def torn_write(self, text, *args, **kwargs):  # a plain write, killed half-way
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise Crash

    def killed_fsync(fd):  # an atomic write, killed before its rename
        raise Crash

    monkeypatch.setattr(Path, "write_text", torn_write)
    monkeypatch.setattr(os, "fsync", killed_fsync)
    with pytest.raises(Crash):
        train(None, resume=run, progress=False)
    monkeypatch.undo()
    assert (run / "training_options.json").read_text() == before


def test_a_fork_stopped_while_writing_its_folder_is_forked_again(fake_mnist_dir, tmp_path, monkeypatch):
    """A Ctrl-C or kill while a fork writes its folder (the metrics rows copied first, the checkpoint last) left a
    folder that --resume refused (no checkpoint) and the same fork command refused too (not empty): a dead end. The
    fork command now writes it again."""
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    fork = tmp_path / "fork"
    real = ckpt_io.save_atomic

    def killed_writing_the_fork(obj, path):
        if Path(path).parent == fork:
            (fork / "checkpoint.pt.x1y2z3.tmp").write_bytes(b"half a checkpoint")
            raise Crash
        real(obj, path)

    monkeypatch.setattr(ckpt_io, "save_atomic", killed_writing_the_fork)
    with pytest.raises(Crash):
        train(None, resume=part.parent, progress=False, fork=fork, max_steps=4)
    assert (fork / "metrics.jsonl").exists() and not (fork / "checkpoint.pt").exists()
    monkeypatch.setattr(ckpt_io, "save_atomic", real)
    assert ckpt_io.load(train(None, resume=part.parent, progress=False, fork=fork, max_steps=4))["step"] == 4
    assert not list(fork.glob("*.tmp"))
    with pytest.raises(TrainingError, match="not an empty folder"):  # a fork that wrote its checkpoint is a run
        train(None, resume=part.parent, progress=False, fork=fork, max_steps=4)


def test_a_fork_that_would_change_the_networks_is_refused_with_the_way_round(fake_mnist_dir, tmp_path):
    """Turning the contrastive regularizer off (its late weight 0) takes its head off D, so the fork could not go on
    with the run's networks: refused before anything is written, naming the key and the way to leave the regularizer
    off (its start moved past the run's end: the head stays, untrained), which works."""
    cfg = load_config("mnist", [*_tiny_overrides(fake_mnist_dir), "loss.cr_weight_late=1.0", "loss.cr_late_from=64"])
    part = train(cfg, runs_dir=tmp_path, progress=False, max_steps=2)
    with pytest.raises(TrainingError, match=r"model arguments \(cr_codes\) would differ.*loss\.cr_late_from=N"):
        train(None, resume=part.parent, progress=False, fork=tmp_path / "plain", overrides=["loss.cr_weight_late=0"])
    assert not (tmp_path / "plain").exists()
    out = train(
        None, resume=part.parent, progress=False, fork=tmp_path / "plain", overrides=["loss.cr_late_from=1_000_000_000"]
    )
    ck = ckpt_io.load(out)
    assert ck["step"] == 16 and ck["model_args"]["cr_codes"] == 3 and ck["config"]["loss"]["cr_late_from"] == 10**9
    assert not any("CR_acc" in line for line in (out.parent / "metrics.jsonl").read_text().splitlines()[1:])


def test_the_contrastive_regularizer_trains_on_28_pixel_images(fake_mnist_dir, tmp_path):
    """CR on from the first step on MNIST's 28x28 images (no power of two): G's pairs go through the head, whose
    accuracy is logged, and the checkpoint carries it."""
    cfg = load_config("mnist", [*_tiny_overrides(fake_mnist_dir), "loss.cr_weight=1.0"])
    out = train(cfg, runs_dir=tmp_path, progress=False, max_steps=4)
    ck = ckpt_io.load(out)
    assert ck["step"] == 4 and ck["model_args"]["cr_codes"] == 3
    assert any(k.startswith("cr_head.") for k in ck["D"])
    assert any("CR_acc" in line for line in (out.parent / "metrics.jsonl").read_text().splitlines())


def test_a_fork_that_cannot_start_leaves_no_folder(fake_mnist_dir, tmp_path):
    """The fork's folder is written once its trainer is built: a fork whose run's data has gone fails with nothing
    left behind, so the same command works once the data is back."""
    data = tmp_path / "data"
    shutil.copytree(fake_mnist_dir, data)
    part = train(load_config("mnist", _tiny_overrides(data)), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    shutil.move(data, tmp_path / "moved")
    with pytest.raises(DataError, match="is missing"):
        train(None, resume=part.parent, progress=False, fork=tmp_path / "fork", max_steps=4)
    assert not (tmp_path / "fork").exists()
    shutil.move(tmp_path / "moved", data)
    forked = train(None, resume=part.parent, progress=False, fork=tmp_path / "fork", max_steps=4)
    assert ckpt_io.load(forked)["step"] == 4


def test_init_from_starts_a_new_run_from_another_runs_weights(fake_mnist_dir, tmp_path):
    """--init-from: the new run's step 0 holds the source's networks and optimizer moments (not a fresh draw), its
    step count and history are its own, its checkpoint (and so the manifest) names the source, a resume keeps that."""
    src = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "a", progress=False, max_steps=8)
    src_ck = ckpt_io.load(src)
    cfg = tiny_config(fake_mnist_dir)
    cfg.loss.lambda_continuous = 0.5
    t = Trainer(cfg, tmp_path / "probe", progress=False, init_from=train_state.read_init_source(src.parent, cfg))
    fresh = Trainer(cfg, tmp_path / "probe2", progress=False)
    for k, v in src_ck["G"].items():
        assert torch.equal(t.G.state_dict()[k], v), k
    for k, v in src_ck["D"].items():
        assert torch.equal(t.D.state_dict()[k], v), k
    assert any(not torch.equal(fresh.G.state_dict()[k], v) for k, v in src_ck["G"].items())
    assert t.opt_G.state_dict()["state"][0]["step"] == src_ck["opt_G"]["state"][0]["step"]
    assert t.step == 0
    part = train(cfg, runs_dir=tmp_path / "b", progress=False, max_steps=4, init_from=src)
    ck = ckpt_io.load(part)
    assert ck["step"] == 4 and ck["config"]["loss"]["lambda_continuous"] == 0.5
    assert ck["init_from"]["checkpoint"] == str(src) and ck["init_from"]["step"] == 8
    assert ck["init_from"]["parts"] == "all"
    assert ck["init_from"]["command"] == src_ck["command"]
    rows = [json.loads(line)["step"] for line in (part.parent / "metrics.jsonl").read_text().splitlines()]
    assert rows == [2, 4]  # its own history, none of the source's rows
    done = ckpt_io.load(train(None, resume=part.parent, progress=False))
    assert done["step"] == 16 and done["init_from"] == ck["init_from"]
    plain = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "c", progress=False)
    assert ckpt_io.load(plain)["init_from"] is None


@pytest.mark.parametrize(
    "change, words",
    [
        ("model.widths={ fc = 16, ch = 8 }", "model arguments (fc) differ from the config's"),
        ("latent.noise={ name = 'z', dim = 3 }", "latent spec (noise) differ"),
        ("train.restarts=2", "set train.restarts=1"),
    ],
)
def test_init_from_refuses_networks_it_cannot_fill(fake_mnist_dir, tmp_path, change, words):
    src = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "a", progress=False, max_steps=2)
    cfg = load_config("mnist", [*_tiny_overrides(fake_mnist_dir), change])
    with pytest.raises(TrainingError, match=re.escape(words)):
        train(cfg, runs_dir=tmp_path / "b", progress=False, init_from=src)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    with pytest.raises(TrainingError, match="a resume already has its own"):
        train(None, resume=src.parent, progress=False, init_from=src)


def tiny_chairs_config(data_dir, *changes: str) -> Config:
    """chairs3d (the 'dsprites' architecture, a 4-way style code, the CR head) shrunk to a 2-step epoch."""
    return load_config(
        "chairs3d",
        [
            f"data.dir={json.dumps(str(data_dir))}",
            "model.widths={ fc = 16, ch = 4 }",
            "optim.batch_size=8",
            "train.checkpoint_every=2",
            "train.log_every=2",
            "train.epochs=1",
            "train.threads=1",
            "train.restarts=1",
            "train.metrics_every=0",
            *changes,
        ],
    )


def test_init_from_D_loads_only_the_discriminator_so_G_may_be_another_design(chairs_dir, tmp_path):
    """--init-parts D: the new run's D (with its Q and CR heads) and D's optimizer moments are the source's; G and
    its optimizer are the new run's fresh draw of its seed, of the source's design or another (style_late); the
    checkpoint records the parts loaded."""
    src = train(tiny_chairs_config(chairs_dir), runs_dir=tmp_path / "a", progress=False, max_steps=2)
    src_ck = ckpt_io.load(src)
    assert not src_ck["model_args"].get("style_late") and any(k.startswith("cr_head.") for k in src_ck["D"])
    for i, g_design in enumerate(("{ fc = 16, ch = 4 }", "{ fc = 16, ch = 4, style_late = 1 }")):
        cfg = tiny_chairs_config(chairs_dir, f"model.widths={g_design}")
        source = train_state.read_init_source(src.parent, cfg)
        t = Trainer(cfg, tmp_path / f"probe{i}", progress=False, init_from=source, init_parts="D")
        fresh = Trainer(cfg, tmp_path / f"fresh{i}", progress=False)
        assert t.D.state_dict().keys() == src_ck["D"].keys()
        for k, v in src_ck["D"].items():
            assert torch.equal(t.D.state_dict()[k], v), k
        assert any(not torch.equal(fresh.D.state_dict()[k], v) for k, v in src_ck["D"].items())  # D trained
        got, want = t.opt_D.state_dict(), src_ck["opt_D"]
        assert got["state"].keys() == want["state"].keys() and want["state"]
        for n, moments in want["state"].items():
            for k, v in moments.items():
                assert torch.equal(got["state"][n][k], v), (n, k)
        assert [g["lr"] for g in got["param_groups"]] == [g["lr"] for g in want["param_groups"]]
        # G: untouched by the source, the same as a run of this config and seed without --init-from
        assert t.G.state_dict().keys() == fresh.G.state_dict().keys()
        for k, v in fresh.G.state_dict().items():
            assert torch.equal(t.G.state_dict()[k], v), k
        assert t.opt_G.state_dict()["state"] == {}
        if i == 0:  # the source's design: its trained G is not the fresh one
            assert any(not torch.equal(t.G.state_dict()[k], v) for k, v in src_ck["G"].items())
        else:
            assert t.G.state_dict().keys() != src_ck["G"].keys()
        assert t.step == 0 and t.init_from["parts"] == "D"
    part = train(cfg, runs_dir=tmp_path / "b", progress=False, max_steps=2, init_from=src, init_parts="D")
    ck = ckpt_io.load(part)
    assert ck["step"] == 2 and ck["model_args"]["style_late"] == 1
    assert ck["init_from"]["parts"] == "D" and ck["init_from"]["checkpoint"] == str(src)
    assert ck["init_from"]["step"] == 2


def test_init_from_D_categorical_redraws_q_continuous_outputs(chairs_dir, tmp_path):
    """--init-parts D-categorical: as D, but the rows of Q's last layer that read the continuous codes are this run's
    fresh draw, the categorical code's rows and every other tensor the source's."""
    src = train(tiny_chairs_config(chairs_dir), runs_dir=tmp_path / "a", progress=False, max_steps=2)
    src_d = ckpt_io.load(src)["D"]
    cfg = tiny_chairs_config(chairs_dir, "model.widths={ fc = 16, ch = 4, style_late = 1 }")
    source = train_state.read_init_source(src.parent, cfg)
    t = Trainer(cfg, tmp_path / "probe", progress=False, init_from=source, init_parts="D-categorical")
    fresh = Trainer(cfg, tmp_path / "fresh", progress=False).D.state_dict()
    got = t.D.state_dict()
    cat = [i for code, sl in cfg.spec.q_slices() if code.kind == "categorical" for i in range(sl.start, sl.stop)]
    cont = [i for i in range(cfg.spec.q_dim) if i not in cat]
    assert cat and cont
    last = [k for k in got if k.startswith("q_head.") and k.endswith(("bias", "weight.original"))]
    last = [k for k in last if got[k].shape[0] == cfg.spec.q_dim]
    assert len(last) == 2  # the last layer's weight and bias
    for k, v in src_d.items():
        if k in last:
            assert torch.equal(got[k][cat], v[cat]), k
            assert torch.equal(got[k][cont], fresh[k][cont]), k
            assert not torch.equal(v[cont], fresh[k][cont]), k  # the source's rows were not the fresh ones
        else:
            assert torch.equal(got[k], v), k
    assert t.init_from["parts"] == "D-categorical"


@pytest.mark.parametrize(
    "change, parts, words",
    [
        ("latent.noise={ name = 'z', dim = 3, distribution = 'uniform' }", "D", "latent spec differs"),
        ("model.widths={ fc = 16, ch = 8 }", "D", "--init-parts D: its discriminator does not fit this config's"),
        ("train.seed=1", "X", "--init-parts must be 'all', 'D' or 'D-categorical', got 'X'"),
    ],
)
def test_init_from_D_refuses_a_discriminator_it_cannot_fill(chairs_dir, tmp_path, change, parts, words):
    src = train(tiny_chairs_config(chairs_dir), runs_dir=tmp_path / "a", progress=False, max_steps=2)
    cfg = tiny_chairs_config(chairs_dir, change)
    with pytest.raises(TrainingError, match=re.escape(words)):
        train(cfg, runs_dir=tmp_path / "b", progress=False, init_from=src, init_parts=parts)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_resume_removes_temp_files_of_an_interrupted_write(fake_mnist_dir, tmp_path):
    ck = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=4)
    torn = ck.parent / (ck.name + ".abc123.tmp")
    torn.write_bytes(b"half a checkpoint")
    # a fork only reads the run, which may be training and writing through that file now: it leaves it alone
    train(
        None, resume=ck.parent, fork=tmp_path / "fork", overrides=["loss.lambda_real=0.5"], progress=False, max_steps=6
    )
    assert torn.exists()
    train(None, resume=ck.parent, progress=False)
    assert not torn.exists()
    assert ckpt_io.load(ck)["step"] == 16


def test_non_finite_loss_stops_with_a_message(fake_mnist_dir, tmp_path, monkeypatch):
    t = Trainer(tiny_config(fake_mnist_dir), tmp_path, progress=False)
    t.data[:] = float("nan")
    with pytest.raises(TrainingError, match="non-finite"):
        t.run()


def step_with_dtypes(t: Trainer) -> tuple[set, dict]:
    """One training step: the dtypes G's first layer produced (bf16 under autocast, else fp32) and the step's stats."""
    seen = set()
    hook = t.G.body[0].register_forward_hook(lambda m, i, o: seen.add(o.dtype))
    stats = t.train_step(t.data[:32])
    hook.remove()
    return seen, stats


def test_bf16_precision_runs_bf16_kernels_and_keeps_fp32_weights(fake_mnist_dir, tmp_path):
    """train.precision = "bf16": the forward passes run in bfloat16 (autocast) while weights, optimizer state and
    the logged losses stay fp32, and training still moves the weights."""
    t = Trainer(tiny_config(fake_mnist_dir, precision="bf16"), tmp_path, progress=False)
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    seen, stats = step_with_dtypes(t)
    assert seen == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in [*t.G.parameters(), *t.D.parameters()])
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in stats.values())
    assert not torch.equal(before["body.0.weight"], t.G.state_dict()["body.0.weight"])
    with pytest.raises(ValueError, match="train.precision"):
        load_config("mnist", ["train.precision='fp8'"])


def test_cpu_bf16_detection_reads_the_cpu_flags():
    avx2 = "processor\t: 0\nflags\t\t: fpu sse sse2 avx f16c avx2 fma bmi2\n"
    spr = "flags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile\n"
    skylake = "flags\t\t: fpu avx2 avx512f avx512bw avx512vl\n"  # AVX-512 without BF16: still emulated
    assert not cpu_has_native_bf16(avx2)
    assert cpu_has_native_bf16(spr)
    assert not cpu_has_native_bf16(skylake)
    assert not cpu_has_native_bf16("")


def test_auto_precision_picks_bf16_only_on_native_hardware(fake_mnist_dir, tmp_path, monkeypatch):
    """precision = "auto" (the mnist default): fp32 on an AVX2 CPU, where bf16 autocast is ~20x slower, bf16 where
    the CPU has it; explicit values are kept; the resolved value is in the checkpoint and the start-up line."""
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu)[0] == "fp32" and resolve_precision("bf16", cpu)[0] == "bf16"
    assert load_config("mnist").train.precision == "auto"
    for native, want in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda native=native: native)
        assert resolve_precision("auto", cpu)[0] == want
        # an explicit bf16 is kept; where it is emulated the start-up line says so
        assert ("emulated" in resolve_precision("bf16", cpu)[1]) == (not native)
        t = Trainer(tiny_config(fake_mnist_dir, precision="auto"), tmp_path, progress=False)
        assert t.precision == want and train_state.state(t)["precision"] == want
        assert step_with_dtypes(t)[0] == {torch.bfloat16 if want == "bf16" else torch.float32}
    # the precision a run really used reaches the exported manifest (the config only says "auto")
    from training.export import export_checkpoint

    ck = train(tiny_config(fake_mnist_dir, precision="auto"), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    folder = export_checkpoint(ck, "tiny", models_dir=tmp_path / "models")
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    provenance = manifest["provenance"]
    assert provenance["precision"] == "bf16" and provenance["config"]["train"]["precision"] == "auto"


def test_noise_scale_is_applied_inside_G_and_travels_in_the_checkpoint(fake_mnist_dir, tmp_path):
    cfg = tiny_config(fake_mnist_dir)
    cfg.model.noise_scale = 0.25
    ck = ckpt_io.load(train(cfg, runs_dir=tmp_path, progress=False, max_steps=2))
    assert ck["model_args"]["noise_scale"] == 0.25
    G, _, _ = ckpt_io.load_networks(ck)
    G.eval()
    z, c = G.spec.sample(4)
    with torch.no_grad():
        assert torch.allclose(G(z, c), G.body(torch.cat([0.25 * z, c], 1)))
        assert not torch.allclose(G(z, c), G.body(torch.cat([z, c], 1)))


def test_bad_settings_and_checkpoints_fail_in_one_line(tmp_path):
    """The CLI's side of the config checks (tests/training/test_config.py has the checks): one line, no traceback."""
    res = subprocess.run(
        [sys.executable, "-m", "training", "train", "mnist", "--set", 'train.device="tpu"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1 and "train.device" in res.stderr and "Traceback" not in res.stderr
    # evaluate and export say what is wrong with the checkpoint in one line too
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    for cmd, words in (
        (["evaluate", str(tmp_path / "missing.pt")], "infogan evaluate: error: no checkpoint at"),
        (["export", str(tmp_path / "notes.pt"), "--id", "x"], "not a readable checkpoint"),
    ):
        res = subprocess.run(
            [sys.executable, "-m", "training", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert res.returncode == 1 and words in res.stderr and "Traceback" not in res.stderr, res.stderr[-2000:]


@pytest.mark.parametrize("world, outcome", [("2", "return"), ("2", "error"), ("1", "return")])
def test_a_torchrun_rank_ends_without_the_interpreters_teardown(world, outcome):
    """Under torchrun DDP keeps gloo's worker threads alive to the end, and a finished rank once aborted in the
    interpreter's teardown: a rank's `infogan train` ends with os._exit (no exit handlers run), after writing out
    what it printed, with the command's own status. A process alone ends normally."""
    script = f"""
import atexit
from training import cli
atexit.register(lambda: print("teardown ran", flush=True))
def fake_train(args):
    print("checkpoint: runs/x/checkpoint.pt")  # block-buffered: stdout is a pipe
    if {outcome!r} == "error":
        raise ValueError("no such data")
    return 0
cli._cmd_train = fake_train
cli.main(["train", "mnist"])
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as under torchrun
    env.update(WORLD_SIZE=world, PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == (1 if outcome == "error" else 0), res.stderr[-2000:]
    assert "checkpoint: runs/x/checkpoint.pt" in res.stdout
    assert ("teardown ran" in res.stdout) == (world == "1")
    if outcome == "error":
        assert res.stderr.strip() == "infogan train: error: no such data"


def test_torchrun_ddp_on_cpu_with_gloo(fake_mnist_dir, tmp_path):
    """2 gloo processes: half an epoch with the label-free restarts (2 restarts x 4 steps), then --resume to 1 epoch.
    Each rank gets its own latent/augmentation generators back: had both loaded rank 0's, their streams would be
    equal after the resume (each rank draws the same amount per step)."""

    def torchrun(*args):
        cmd = [
            str(Path(sys.executable).parent / "torchrun"),
            # --standalone: a c10d rendezvous on a port the launcher binds itself. A port picked here and released
            # before torchrun bound it could be taken in between by another test's server (a flake seen once).
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "training",
            "train",
            *args,
            "--no-progress",
        ]
        res = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        )
        # 8,000 characters of stderr: the failing rank's own error comes before torchrun's ~2,200-character summary
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-8000:]
        assert "2 process(es)" in res.stdout
        return res

    def ranks_differ(ck):
        (lat0, tor0), (lat1, tor1) = ck["rank_rngs"]
        return not torch.equal(lat0, lat1) and not torch.equal(tor0, tor1)

    torchrun(
        "mnist",
        "--data-dir",
        str(fake_mnist_dir),
        "--runs-dir",
        str(tmp_path),
        "--set",
        "data.verify=false",
        "--set",
        "model.widths={ fc = 32, ch = 8 }",
        "--set",
        "optim.batch_size=32",
        "--set",
        "train.threads=1",
        "--set",
        "train.epochs=0.5",
        "--set",
        'train.device="cpu"',
        "--set",
        "train.restarts=2",
        "--set",
        "train.restart_steps=4",
        "--set",
        "train.checkpoint_every=4",
    )
    (run,) = tmp_path.iterdir()
    half = ckpt_io.load(run / "checkpoint.pt")
    assert half["step"] == 8 and half["restarts"]["restarts"] == 2 and ranks_differ(half)
    assert not list(run.glob("restart-*.pt"))
    torchrun("--resume", str(run), "--epochs", "1")
    ck = ckpt_io.load(run / "checkpoint.pt")
    assert ck["step"] == 16  # 512 images / global batch 32
    assert ranks_differ(ck) and ck["restarts"] == half["restarts"]


def test_label_free_restarts_keep_the_best_scoring_start(fake_mnist_dir, tmp_path, monkeypatch):
    """With 3 restarts the run continues from the one with the highest label-free score, records the choice in its
    checkpoint, and a resume after the choice does not train the restarts again."""
    scores = iter([0.1, 0.9, 0.4])
    kept_weights = {}

    def fake_score(t):  # the scores are forced so the test knows which restart must win
        s = next(scores)
        if s == 0.9:
            kept_weights.update({k: v.clone() for k, v in t.G.state_dict().items()})
        return s

    monkeypatch.setattr(Restarts, "score", staticmethod(fake_score))
    cfg = tiny_config(fake_mnist_dir, restarts=3, restart_steps=4)
    trainer = Trainer(cfg, tmp_path / "run", progress=False, max_steps=4)
    trainer.run()
    assert trainer.restarts.record == {"restarts": 3, "steps": 4, "scores": [0.1, 0.9, 0.4], "kept": 1}
    assert trainer.step == 4
    for k, v in trainer.G.state_dict().items():  # the second restart's weights, not the last trained one's
        assert torch.equal(v, kept_weights[k]), k
    ck = ckpt_io.load(tmp_path / "run" / "checkpoint.pt")
    assert ck["restarts"]["kept"] == 1 and ck["step"] == 4
    # one machine per command: keeping a restart other than the last once added that restart's machine
    assert len(ck["machines"]) == len([ck["command"], *ck["resumed_by"]]) == 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["candidate"] for r in rows if "label_free" in r] == [0, 1, 2]
    # every 2 steps
    assert [r["candidate"] for r in rows if "L_I/digit" in r and "candidate" in r] == [0, 0, 1, 1, 2, 2]
    assert {"step": 4, "kept": 1} in rows

    monkeypatch.setattr(Restarts, "score", staticmethod(lambda t: pytest.fail("resume must not restart")))
    resumed = ckpt_io.load(train(None, resume=tmp_path / "run", progress=False))
    assert resumed["step"] == 16 and resumed["restarts"]["kept"] == 1


class Crash(Exception):
    """Stands for a kill -9: nothing is saved on the way out."""


def to_old_format(run: Path) -> None:
    """A run folder as the loop wrote it before the rename: checkpoint fields "selection"/"selecting" with
    "candidates"/"candidate", config keys train.candidates/candidate_steps/compile/channels_last, start-<i>.pt."""
    ck = ckpt_io.load(run / "checkpoint.pt")
    train_cfg = dict(ck["config"]["train"])
    train_cfg.update(
        candidates=train_cfg.pop("restarts"),
        candidate_steps=train_cfg.pop("restart_steps"),
        compile=False,
        channels_last=False,
    )
    ck["config"] = {**ck["config"], "train": train_cfg}
    record, progress = ck.pop("restarts"), ck.pop("restarting")
    ck["selection"] = None if record is None else {"candidates": record.pop("restarts"), **record}
    ck["selecting"] = None if progress is None else {"candidate": progress.pop("restart"), **progress}
    ckpt_io.save_atomic(ck, run / "checkpoint.pt")
    for p in run.glob("restart-*.pt"):
        p.rename(run / p.name.replace("restart-", "start-"))


# inside restart 1, 2, 3 of 3 (6 steps each)
@pytest.mark.parametrize(
    "stop, at_call, old_format",
    [
        ("kill", 3, False),  # before the first periodic checkpoint: the one written before the first step
        ("kill", 5, False),
        ("kill", 9, False),
        ("kill", 17, False),
        ("sigterm", 9, False),
        ("kill", 17, True),
    ],
)
def test_a_run_stopped_inside_the_restarts_resumes_them_exactly(
    fake_mnist_dir, tmp_path, monkeypatch, stop, at_call, old_format
):
    """A kill (or SIGTERM) while the label-free restarts train: the resume continues the same restart from its last
    checkpoint (or the signalled step), keeps the finished restarts' scores and the best one's weights, and ends
    bit-identical to a run never stopped, with one metrics row per (restart, step) and no restart-<i>.pt left. A
    run stopped by the version before the rename (old field, key and file names) resumes the same way."""
    forced = {0: 0.5, 1: 0.9, 2: 0.4}  # restart 2 must win, so its weights wait in restart-1.pt while 3 trains
    monkeypatch.setattr(Restarts, "score", staticmethod(lambda t: forced[t.restarts.current()]))
    cfg = lambda: tiny_config(fake_mnist_dir, restarts=3, restart_steps=6)  # noqa: E731
    straight = ckpt_io.load(train(cfg(), runs_dir=tmp_path / "a", progress=False))

    real_step = Trainer.train_step
    calls = [0]

    def stopping_step(self, real):
        calls[0] += 1
        if calls[0] == at_call:
            if stop == "kill":
                raise Crash
            os.kill(os.getpid(), signal.SIGTERM)  # seen by the loop before the next step
        return real_step(self, real)

    monkeypatch.setattr(Trainer, "train_step", stopping_step)
    with pytest.raises(Crash if stop == "kill" else loop.Interrupted):
        train(cfg(), runs_dir=tmp_path / "b", progress=False)
    (run,) = (tmp_path / "b").iterdir()
    ck = ckpt_io.load(run / "checkpoint.pt")
    restart, step = divmod(at_call - 1, 6)
    assert ck["restarting"]["restart"] == restart and ck["restarts"] is None
    assert ck["step"] == (step // 4 * 4 if stop == "kill" else step + 1)  # checkpoint_every=4, or the signalled step
    assert [p.name for p in run.glob("restart-*.pt")] == (
        ["restart-1.pt"] if restart == 2 else ["restart-0.pt"] if restart == 1 else []
    )
    if old_format:
        to_old_format(run)
    monkeypatch.setattr(Trainer, "train_step", real_step)
    resumed = ckpt_io.load(train(None, resume=run, progress=False))
    assert (
        resumed["restarts"] == straight["restarts"] == {"restarts": 3, "steps": 6, "scores": [0.5, 0.9, 0.4], "kept": 1}
    )
    assert resumed["restarting"] is None and resumed["step"] == straight["step"] == 16
    assert resumed["config"] == straight["config"]  # an old run's config goes on under the new names
    for net in ("G", "D"):
        for k in straight[net]:
            assert torch.equal(straight[net][k], resumed[net][k]), (net, k)
    assert not list(run.glob("restart-*.pt")) and not list(run.glob("start-*.pt"))

    def rows(run):  # without the timings, which differ between any two runs
        return [
            {k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_s")}
            for line in (run / "metrics.jsonl").read_text().splitlines()
        ]

    # each row once, with the same values; after the signalled step too, whose checkpoint holds the row in
    # progress (its first row averaged only the steps after the resume)
    assert rows(run) == rows(next((tmp_path / "a").iterdir()))
    assert [r["candidate"] for r in rows(run) if "label_free" in r] == [0, 1, 2]


def test_max_steps_stops_inside_the_restarts_and_the_resume_finishes_them(fake_mnist_dir, tmp_path):
    """--max-steps below restart_steps ends the run inside the first restart (it used to train every restart to the
    end first: 2 x 936 steps for `--max-steps 1` with the mnist config), resumable there like a signalled stop."""
    cfg = lambda: tiny_config(fake_mnist_dir, restarts=2, restart_steps=6)  # noqa: E731
    straight = ckpt_io.load(train(cfg(), runs_dir=tmp_path / "a", progress=False))
    short = train(cfg(), runs_dir=tmp_path / "b", progress=False, max_steps=3)
    ck = ckpt_io.load(short)
    assert ck["step"] == 3 and ck["restarting"]["restart"] == 0 and ck["restarts"] is None
    resumed = ckpt_io.load(train(None, resume=short.parent, progress=False))
    assert resumed["restarts"] == straight["restarts"] and resumed["step"] == straight["step"] == 16
    for net in ("G", "D"):
        for k in straight[net]:
            assert torch.equal(straight[net][k], resumed[net][k]), (net, k)


def test_label_free_score_is_computed_without_labels(fake_mnist_dir, tmp_path):
    trainer = Trainer(tiny_config(fake_mnist_dir), tmp_path / "run", progress=False)
    score = Restarts.score(trainer)
    assert 0.0 <= score <= torch.log(torch.tensor(10.0)).item() + 1e-6


def test_fig1_plots_the_kept_start_and_the_main_run(tmp_path, monkeypatch):
    """plot_info_curves draws, from a run with restarts, only the kept start's rows and the rows after it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from training import evaluate_cmd as report

    rows = [
        {"step": 2, "candidate": 0, "L_I/digit": 0.1},
        {"step": 2, "candidate": 1, "L_I/digit": 0.2},
        {"step": 2, "candidate": 0, "label_free": 1.0},
        {"step": 2, "kept": 1},
        {"step": 4, "L_I/digit": 0.3},
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    drawn = []
    real_plot = plt.Axes.plot

    def spy(self, x, y, *a, **k):
        drawn.append((list(x), list(y)))
        return real_plot(self, x, y, *a, **k)

    monkeypatch.setattr(plt.Axes, "plot", spy)
    out = report.plot_info_curves({"InfoGAN": path}, "digit", tmp_path / "fig1.png")
    assert out.exists() and drawn == [([2, 4], [0.2, 0.3])]


def test_evaluate_command_summarises_and_writes_everything(fake_mnist_dir, tmp_path, capsys):
    """`infogan evaluate`: a few lines for a person (accuracy, NMI, L_I against H(c), what it wrote), the whole
    result with --json, and evaluation.json plus one Fig. 2 traversal per code in the checkpoint's folder."""
    from training.cli import main

    ck = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=2)
    capsys.readouterr()  # the run's own output

    stages = []

    def run(*extra):
        with pytest.raises(SystemExit) as done:
            main(["evaluate", str(ck), *extra])
        assert done.value.code == 0
        out, err = capsys.readouterr()
        stages.append(err)
        return out

    text = run()
    # minutes of work on a full-size set: a line per stage on stderr, with the seconds since the start
    lines = stages[-1].splitlines()
    assert lines and all(re.match(r"^\[ +\d+ s\] \S", line) for line in lines), lines
    said = " | ".join(lines)
    for words in ("loading mnist", "BatchNorm", "Q on the", "code effects", "traversal figures"):
        assert words in said, (words, said)
    assert said.index("loading") < said.index("BatchNorm") < said.index("code effects") < said.index("traversal")
    assert text.startswith("test split; checkpoint step 2")
    assert re.search(r"^digit: unsupervised accuracy 0\.\d{4}, NMI \d\.\d{3}, label-free score", text, re.M)
    assert "L_I, nats (H(c)): digit " in text and "(2.303)" in text
    written = ["evaluation.json", "traversal-digit.png", "traversal-c1.png", "traversal-c2.png"]
    assert text.splitlines()[-1] == "wrote " + ", ".join(str(ck.parent / name) for name in written)
    assert all((ck.parent / name).is_file() for name in written)
    full = json.loads(run("--json", "--no-figures"))
    assert full["split"] == "test" and full["checkpoint"]["step"] == 2 and 0 <= full["digit"]["accuracy"] <= 1
    assert full == json.loads((ck.parent / "evaluation.json").read_text())
    assert full["checkpoint"]["G"] == "trained" and "moving average" not in text

    # a run with train.ema_half_life draws with G_ema unless --no-ema; the two G's draw different images
    ck = train(tiny_config(fake_mnist_dir, ema_half_life=64), runs_dir=tmp_path / "ema", progress=False, max_steps=4)
    capsys.readouterr()
    assert "G: the moving average of its weights" in run("--no-figures").splitlines()[0]
    ema, trained = json.loads(run("--json", "--no-figures")), json.loads(run("--json", "--no-figures", "--no-ema"))
    assert (ema["checkpoint"]["G"], trained["checkpoint"]["G"]) == ("ema", "trained")
    assert ema["code_effects"] != trained["code_effects"]


def test_progress_bar_shows_losses_and_L_I_from_the_first_step(fake_mnist_dir, tmp_path, monkeypatch):
    """The bar's losses and L_I are live: set at every step (the mean since the last metrics row), not only when a
    row is logged every log_every steps (50 in mnist: almost a minute on a 2-core CPU before any figure showed)."""
    import tqdm

    shown = []
    real = tqdm.tqdm.set_postfix

    def spy(self, ordered_dict=None, refresh=True, **kwargs):
        shown.append((self.n, dict(ordered_dict or {})))
        return real(self, ordered_dict, refresh=refresh, **kwargs)

    monkeypatch.setattr(tqdm.tqdm, "set_postfix", spy)
    train(tiny_config(fake_mnist_dir, log_every=50), runs_dir=tmp_path, progress=True, max_steps=3)
    assert [n for n, _ in shown] == [0, 1, 2]  # before each step's bar.update
    assert all({"I_digit", "I_c1", "I_c2", "loss_D", "loss_G"} <= set(d) for _, d in shown)


def test_g_ema_averages_g_and_never_changes_training(fake_mnist_dir, tmp_path):
    """train.ema_half_life: G_ema follows G by beta = 0.5 ** (batch / half-life) per step, with G's BatchNorm buffers;
    G, D and Q train exactly as without it; load_networks draws with G_ema (ema=False: the trained G)."""
    cfg = tiny_config(fake_mnist_dir, ema_half_life=64)  # batch 32: beta = 0.5 ** 0.5
    t = Trainer(cfg, tmp_path / "probe", progress=False)
    before = {k: v.clone() for k, v in t.G.state_dict().items()}
    t.train_step(t.data[:32])
    beta = loop.ema_beta(32, 64)
    assert beta == pytest.approx(0.5**0.5)
    params = dict(t.G.named_parameters())
    for name, pe in t.G_ema.named_parameters():
        torch.testing.assert_close(pe, beta * before[name] + (1 - beta) * params[name].detach())
    for (name, be), b in zip(t.G_ema.named_buffers(), t.G.buffers(), strict=True):
        assert torch.equal(be, b), name
    assert t.drawing_G is t.G_ema and not any(p.requires_grad for p in t.G_ema.parameters())

    with_ema = ckpt_io.load(train(cfg, runs_dir=tmp_path / "a", progress=False, max_steps=8))
    without = ckpt_io.load(train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "b", progress=False, max_steps=8))
    assert without["G_ema"] is None
    for net in ("G", "D"):
        for k in without[net]:
            assert torch.equal(with_ema[net][k], without[net][k]), (net, k)
    assert any(not torch.equal(with_ema["G_ema"][k], with_ema["G"][k]) for k in with_ema["G"])
    G, _, _ = ckpt_io.load_networks(with_ema)
    G_trained, _, _ = ckpt_io.load_networks(with_ema, ema=False)
    for k, v in G.state_dict().items():
        assert torch.equal(v, with_ema["G_ema"][k]) and torch.equal(G_trained.state_dict()[k], with_ema["G"][k])


def test_g_ema_resumes_exactly_and_starts_from_g_when_switched_on_at_a_resume(fake_mnist_dir, tmp_path):
    cfg = tiny_config(fake_mnist_dir, ema_half_life=64)
    straight = ckpt_io.load(train(cfg, runs_dir=tmp_path / "a", progress=False))
    part = train(tiny_config(fake_mnist_dir, ema_half_life=64), runs_dir=tmp_path / "b", progress=False, max_steps=8)
    resumed = ckpt_io.load(train(None, resume=part.parent, progress=False))
    for k in straight["G_ema"]:
        assert torch.equal(straight["G_ema"][k], resumed["G_ema"][k]), k
    # a run without EMA, given one in its checkpoint's config: G_ema starts from G at the resumed step
    plain = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "c", progress=False, max_steps=8)
    ck = ckpt_io.load(plain)
    ck["config"]["train"]["ema_half_life"] = 64
    ckpt_io.save_atomic(ck, plain)
    same_step = ckpt_io.load(train(None, resume=plain.parent, progress=False, max_steps=8))
    for k in ck["G"]:
        assert torch.equal(same_step["G_ema"][k], ck["G"][k]), k


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"lambda_real": 1.0}, "I_real/digit"),
        ({"lambda_real_pair": 1.0, "invariance": {"translate": 2.0, "contrast": 0.5}}, "I_pair/digit"),
    ],
)
def test_real_image_terms_are_trained_and_logged(fake_mnist_dir, tmp_path, settings, key):
    cfg = tiny_config(fake_mnist_dir)
    for name, value in settings.items():
        setattr(cfg.loss, name, value)
    run = train(cfg, runs_dir=tmp_path, progress=False, max_steps=4).parent
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [r[key] for r in rows if key in r]
    assert len(logged) == 2 and all(0.0 <= v <= 2.31 for v in logged)


def test_a_run_inside_its_restarts_is_not_forked(fake_mnist_dir, tmp_path):
    """The finished starts wait in the run folder's restart files until the choice: a fork would lose them, so it is
    refused until the run is past its restarts (then allowed)."""
    cfg = tiny_config(fake_mnist_dir, restarts=2, restart_steps=6)
    short = train(cfg, runs_dir=tmp_path, progress=False, max_steps=3)
    with pytest.raises(TrainingError, match="inside its label-free restarts"):
        train(None, resume=short.parent, progress=False, fork=tmp_path / "fork")
    assert not (tmp_path / "fork").exists()
    past = train(None, resume=short.parent, progress=False, max_steps=14)
    assert ckpt_io.load(past)["restarting"] is None
    forked = train(None, resume=short.parent, progress=False, fork=tmp_path / "fork")
    assert ckpt_io.load(forked)["step"] == 16


def test_a_resume_from_a_step_0_checkpoint_drops_rows_logged_after_it(fake_mnist_dir, tmp_path):
    """A run stopped before its first step has a step-0 checkpoint; its resume, killed after logging step 2, left
    that row: the next resume (from step 0 again) logs step 2 once, with its own values."""
    start = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=0)
    assert ckpt_io.load(start)["step"] == 0
    metrics = start.parent / "metrics.jsonl"
    with metrics.open("a") as f:
        f.write(json.dumps({"step": 2, "loss_D": 123.0}) + "\n")
    train(None, resume=start.parent, progress=False, max_steps=4)
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4] and rows[0]["loss_D"] != 123.0


def test_the_restarts_keep_the_length_they_began_with_across_a_resume(fake_mnist_dir, tmp_path, monkeypatch, capsys):
    """The restarts' length is min(restart_steps, the run's steps) when they begin, stored in the checkpoint: a
    resume with a longer --epochs trains the remaining restarts as long as the finished ones (their scores compare
    like with like) and says the longer run differs from one that long from the start; a resume too short to hold
    the restarts in progress is refused."""
    monkeypatch.setattr(Restarts, "score", staticmethod(lambda t: float(t.restarts.current())))
    cfg = lambda epochs: tiny_config(fake_mnist_dir, restarts=2, restart_steps=6, epochs=epochs)  # noqa: E731
    part = train(cfg(0.25), runs_dir=tmp_path / "a", progress=False, max_steps=2)  # 4 steps: restarts of 4
    assert ckpt_io.load(part)["restarting"]["steps"] == 4
    capsys.readouterr()
    done = ckpt_io.load(train(None, resume=part.parent, progress=False, epochs=1))
    assert done["restarts"]["steps"] == 4 and done["step"] == 16
    rows = [json.loads(line) for line in (part.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "label_free" in r] == [4, 4]
    assert "restarts train 4 steps each" in capsys.readouterr().out
    # a finished run whose restarts were cut to its length: the note again when it is trained longer
    short = train(cfg(0.25), runs_dir=tmp_path / "b", progress=False)
    capsys.readouterr()
    assert ckpt_io.load(train(None, resume=short.parent, progress=False, epochs=0.5))["restarts"]["steps"] == 4
    assert "not bit-identical" in capsys.readouterr().out
    # restarts of 6 steps in progress; 4 steps cannot hold them
    inside = train(cfg(1), runs_dir=tmp_path / "c", progress=False, max_steps=2)
    with pytest.raises(TrainingError, match="inside its label-free restarts of 6 steps"):
        train(None, resume=inside.parent, progress=False, epochs=0.25)
    assert ckpt_io.load(inside)["step"] == 2


def test_resuming_a_folder_without_a_checkpoint_leaves_no_lock_file(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(None, resume=empty, progress=False)
    assert not list(empty.iterdir())


@pytest.mark.parametrize("other", ["training", "finished"])
def test_a_second_fork_into_one_new_folder_writes_nothing_there(fake_mnist_dir, tmp_path, monkeypatch, other):
    """Two forks into one new folder both see it empty before their data loads; the second must be refused before it
    writes: the first's checkpoint and metrics stay as they were, whether it still trains (holds the folder's lock)
    or has finished (wrote its checkpoint and let go)."""
    from training.run_dir import run_lock

    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    fork = tmp_path / "fork"
    held = contextlib.ExitStack()
    real = train_state.load_for_resume

    def then_the_other_fork_starts(*a, **kw):
        out = real(*a, **kw)
        fork.mkdir()
        if other == "training":
            held.enter_context(run_lock(fork))
        else:
            (fork / "checkpoint.pt").write_bytes(b"the first fork's")
        return out

    monkeypatch.setattr(train_state, "load_for_resume", then_the_other_fork_starts)
    with held, pytest.raises(TrainingError, match="being trained" if other == "training" else "not an empty folder"):
        train(None, resume=part.parent, progress=False, fork=fork, max_steps=4)
    expected = [".lock"] if other == "training" else [".lock", "checkpoint.pt"]
    assert sorted(p.name for p in fork.iterdir()) == expected
    if other == "finished":
        assert (fork / "checkpoint.pt").read_bytes() == b"the first fork's"


def test_a_fork_goes_into_a_folder_holding_only_a_lock_file(fake_mnist_dir, tmp_path):
    """A fork stopped between taking the new folder's lock and writing (Ctrl-C, a full disk) leaves only .lock:
    the folder is still empty for the next fork, not refused for ever."""
    part = train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    fork = tmp_path / "fork"
    fork.mkdir()
    (fork / ".lock").write_text("pid 1")
    assert ckpt_io.load(train(None, resume=part.parent, progress=False, fork=fork, max_steps=4))["step"] == 4
