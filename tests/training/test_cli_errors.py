"""What a careless user gets from `infogan export` and `infogan train` (issue 23, items 9-11): one line and exit 1,
never a traceback; the destination is checked before the evaluation; an existing model is replaced only with
--force; a failed start leaves no numbered run folder."""

import json
import os
import struct
import zlib
from pathlib import Path

import pytest
import torch

from training import export as export_mod
from training import loop
from training.cli import main
from training.data import DataError, load_folder
from training.latent import mnist_spec
from training.networks import build_networks


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit code, stderr) of the console script run in this process; a traceback fails the test by raising."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    code, err = done.value.code, capsys.readouterr().err
    if isinstance(code, str):  # SystemExit("message"): Python prints it to stderr and exits with status 1
        return 1, err + code + "\n"
    return code, err


@pytest.fixture
def checkpoint(fake_mnist_dir, tmp_path, save_mnist_checkpoint) -> Path:
    spec = mnist_spec()
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=32, ch=8)
    return save_mnist_checkpoint(tmp_path / "checkpoint.pt", G, D, spec, fake_mnist_dir, fc=32, ch=8, step=3, seed=0)


def _no_evaluation(monkeypatch):
    """The destination checks must come before the data loads and the evaluation runs (minutes on real data)."""

    def fail(*a, **k):
        raise AssertionError("the export evaluated before checking where it writes")

    monkeypatch.setattr(export_mod, "load_eval_data", fail)


def test_export_refuses_a_bad_destination_before_evaluating(checkpoint, tmp_path, monkeypatch, capsys):
    _no_evaluation(monkeypatch)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    cases = [
        (a_file, "is a file, not a folder of models"),
        (a_file / "models", "is not writable"),  # below a file: cannot be made, even by root
        (Path("/proc/infogan-models"), "is not writable"),
    ]
    if os.geteuid() != 0:  # root writes into a 0o500 folder (CI runs as root; the cases above hold for everyone)
        read_only = tmp_path / "ro"
        read_only.mkdir(mode=0o500)
        cases.append((read_only, "is not writable"))
    for models_dir, words in cases:
        code, err = run_cli(["export", str(checkpoint), "--id", "m", "--models-dir", str(models_dir)], capsys)
        assert code == 1 and words in err and str(models_dir) in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--title", ""], "--title must not be empty"),
        (["--title", "x" * 121], "--title must be at most 120 characters"),
        (["--title", "one\ntwo"], "--title must be one line"),
        (["--label", "c1="], "--label 'c1=': code 'c1': label must not be empty"),
        (["--label", "c1=" + "w" * 65], "label must be at most 64 characters"),
        (["--label", "c1=a\tb"], "label must be one line without control characters"),
        (["--label", "c1=slant", "--label", "c1=width"], "c1 is labelled twice ('slant' and 'width')"),
        (["--label", "c1=same", "--label", "c2=same"], "c1 already has the label 'same'"),
    ],
)
def test_export_refuses_text_the_page_cannot_show_before_evaluating(
    checkpoint, tmp_path, monkeypatch, capsys, args, words
):
    _no_evaluation(monkeypatch)
    models = tmp_path / "models"
    code, err = run_cli(["export", str(checkpoint), "--id", "m", "--models-dir", str(models), *args], capsys)
    assert code == 1 and words in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (models / "m").exists()


def test_export_replaces_an_existing_model_only_with_force(checkpoint, tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    (models / "mnist").mkdir(parents=True)
    (models / "mnist" / "manifest.json").write_text('{"shipped": true}')
    code, err = run_cli(["export", str(checkpoint), "--id", "mnist", "--models-dir", str(models)], capsys)
    assert code == 1 and "already exists; pass --force" in err and "Traceback" not in err
    assert json.loads((models / "mnist" / "manifest.json").read_text()) == {"shipped": True}  # untouched
    code, err = run_cli(["export", str(checkpoint), "--id", "mnist", "--models-dir", str(models), "--force"], capsys)
    assert code == 0, err
    assert json.loads((models / "mnist" / "manifest.json").read_text())["id"] == "mnist"


def bomb_png(path: Path, side: int = 20000) -> None:
    """A PNG whose header says side x side grey pixels (400 M at 20000: past PIL's bomb limit of ~179 M); PIL
    refuses it at open, from the header, so no image data is needed."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("content", ["bomb", "torn", "text"])
def test_a_folder_data_set_names_the_file_it_cannot_read(tmp_path, content):
    from PIL import Image

    Image.new("L", (40, 30), 128).save(tmp_path / "ok.png")
    bad = tmp_path / "sub" / "bad.png"
    bad.parent.mkdir()
    if content == "bomb":
        bomb_png(bad)
    elif content == "torn":
        bad.write_bytes((tmp_path / "ok.png").read_bytes()[:40])
    else:
        bad.write_text("hello")
    with pytest.raises(DataError, match=f"{bad}: cannot decode image"):
        load_folder(tmp_path, 28, 1)


def runs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_failed_starts_leave_no_run_folder_and_say_why_in_one_line(fake_mnist_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    images = tmp_path / "images"
    images.mkdir()
    bomb_png(images / "big.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    base = [
        "train",
        "mnist",
        "--runs-dir",
        str(runs),
        "--no-progress",
        "--set",
        "data.verify=false",
        "--set",
        "data.download=false",
        "--set",
        "train.restarts=1",
    ]
    cases = [
        ([*base, "--data-dir", str(empty)], "is missing and downloads are off"),  # a data folder without the files
        ([*base, "--data-dir", str(images), "--set", 'data.name="folder"'], f"{images / 'big.png'}: cannot decode"),
        ([*base, "--data-dir", str(fake_mnist_dir), "--set", "optim.batch_size=100000"], "less than one batch"),
        # a fixed-size set and a config that says another size: the config was saved with the run as if used
        (
            [*base, "--data-dir", str(fake_mnist_dir), "--set", "data.resolution=64"],
            "mnist: its images are 28x28 with 1 channel(s), but the config says data.resolution = 64",
        ),
    ]
    for argv, words in cases:
        code, err = run_cli(argv, capsys)
        assert code == 1 and words in err and "Traceback" not in err, err
        assert runs_in(runs) == [], f"{argv}: left {runs_in(runs)}"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    for runs_dir, words in ((a_file, "is a file, not a folder of runs"), (a_file / "runs", "Not a directory")):
        code, err = run_cli(["train", "mnist", "--runs-dir", str(runs_dir), "--data-dir", str(fake_mnist_dir)], capsys)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err


def test_a_failure_before_the_first_step_removes_the_new_run_folder(fake_mnist_dir, tmp_path, monkeypatch):
    from tests.training.test_train import tiny_config

    def broken(*a, **k):
        raise RuntimeError("out of memory at step 0")

    monkeypatch.setattr(loop.Trainer, "train_until", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        loop.train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False)
    assert runs_in(tmp_path) == []
    # a run that trained (here: reached its first checkpoint) keeps its folder when it fails later
    monkeypatch.undo()
    ck = loop.train(tiny_config(fake_mnist_dir), runs_dir=tmp_path, progress=False, max_steps=2)
    assert runs_in(tmp_path) == [ck.parent.name]


def test_resume_settings_need_a_fork_and_a_fork_needs_a_run(fake_mnist_dir, tmp_path, capsys):
    """`train --resume RUN --set ...` without --fork, `--fork` without --resume, and a fork changing what the
    checkpoint's networks are made of: one line each, nothing written."""
    from tests.training.test_train import tiny_config

    run = loop.train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "runs", progress=False, max_steps=2).parent
    before = sorted(p.name for p in tmp_path.rglob("*"))
    fork = str(tmp_path / "fork")
    cases = [
        (["train", "--resume", str(run), "--set", "loss.lambda_real=1"], "--set may with --fork NEW_DIR"),
        (["train", "mnist", "--fork", fork], "give --resume RUN too"),
        (["train", "--resume", str(run), "--fork", fork, "--set", "model.arch=dsprites"], "not model.arch"),
        (["train", "--resume", str(run), "--init-from", str(run)], "--init-from cannot be given with it"),
        (["train", "mnist", "--init-from", str(tmp_path / "nowhere")], "set train.restarts=1"),
        (["train", "mnist", "--set", "train.restarts=1", "--init-from", str(tmp_path / "no")], "no checkpoint at"),
        (["train", "mnist", "--init-parts", "D"], "--init-parts chooses what --init-from loads; give --init-from too"),
        (["train", "--resume", str(run), "--init-parts", "D"], "--init-parts cannot be given with it"),
    ]
    for argv, words in cases:
        code, err = run_cli(argv, capsys)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_gpu_run_resumes_on_the_cpu_with_device_cpu(fake_mnist_dir, tmp_path, capsys, monkeypatch):
    """`--device` may come with `--resume` (a machine's setting, like --threads): a run saved on CUDA, on a machine
    without CUDA, is one line saying to add `--device cpu`, and goes on with it."""
    from tests.training.test_train import _as_if_saved_on_cuda, tiny_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ck = loop.train(tiny_config(fake_mnist_dir), runs_dir=tmp_path / "runs", progress=False, max_steps=2)
    _as_if_saved_on_cuda(ck)
    code, err = run_cli(["train", "--resume", str(ck.parent), "--no-progress"], capsys)
    assert code == 1 and "give --device cpu" in err and len(err.strip().splitlines()) == 1, err
    code, err = run_cli(["train", "--resume", str(ck.parent), "--device", "cpu", "--no-progress"], capsys)
    assert code == 0, err


def test_evaluate_refuses_an_unwritable_out_before_loading_data(checkpoint, tmp_path, monkeypatch, capsys):
    from training import evaluate_cmd

    def fail(*a, **k):
        raise AssertionError("the evaluation loaded its data before checking where it writes")

    monkeypatch.setattr(evaluate_cmd, "load_eval_data", fail)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for out, words in (
        (a_file, f"--out {a_file} is a file, not a folder of results"),
        (a_file / "sub", f"--out {a_file / 'sub'} is not writable"),
        (Path("/proc/infogan-eval"), "--out /proc/infogan-eval is not writable"),
    ):
        code, err = run_cli(["evaluate", str(checkpoint), "--out", str(out)], capsys)
        assert code == 1 and words in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _data_load_raises(monkeypatch, message: str) -> None:
    """evaluate's and export's data loading fails with ``message`` (one line on the CLI, as a real DataError)."""
    from training import evaluate_cmd

    def fail(*a, **k):
        raise ValueError(message)

    monkeypatch.setattr(evaluate_cmd, "load_eval_data", fail)
    monkeypatch.setattr(export_mod, "load_eval_data", fail)


def test_commands_that_fail_before_writing_leave_no_empty_output_folder(checkpoint, tmp_path, monkeypatch, capsys):
    _data_load_raises(monkeypatch, "mnist: the data set's files are missing")
    for cmd in (
        ["evaluate", str(checkpoint), "--out", str(tmp_path / "new" / "out")],
        ["export", str(checkpoint), "--id", "m", "--models-dir", str(tmp_path / "new" / "models")],
    ):
        code, err = run_cli(cmd, capsys)
        assert code == 1 and "files are missing" in err, err
        assert not (tmp_path / "new").exists(), cmd


def test_a_data_dir_that_is_a_file_and_a_bad_subset_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "mnist.gz"
    a_file.write_bytes(b"x")
    runs = tmp_path / "runs"
    code, err = run_cli(["train", "mnist", "--data-dir", str(a_file), "--runs-dir", str(runs)], capsys)
    assert code == 1 and f"--data-dir {a_file} is a file, not the folder" in err and "download" not in err, err
    assert not runs.exists()  # the failed start left no run folder, nor an empty --runs-dir
    for subset, says in (
        ("a,b", "whole numbers separated by commas"),
        ("1,,2", "whole numbers separated by commas"),
        ("1.5", "whole numbers separated by commas"),
        ("", "whole numbers separated by commas"),  # an unset "$S": once the full 3 GB render
        ("1,2", "six strides >= 1"),
        ("1,3,6,40,32,99999999999999999999", "stride 99999999999999999999 for posY, which has only 32 classes"),
    ):
        code, err = run_cli(["data", "dsprites", "--subset", subset, "--out", str(tmp_path / "d")], capsys)
        assert code == 1 and f"--subset {subset!r}: {says}" in err, err
        assert "Traceback" not in err and "int()" not in err and "rendering" not in err  # refused before it starts
    assert not (tmp_path / "d").exists()
    (tmp_path / "notes.toml").write_text("x")
    one = ["data", "dsprites", "--subset", "1,3,6,40,32,32"]  # one image
    code, err = run_cli([*one, "--out", str(tmp_path / "notes.toml")], capsys)
    assert code == 1 and "is a file that is not an .npz" in err, err
    code, _ = run_cli([*one, "--out", str(tmp_path / "x.NPZ")], capsys)
    assert code == 0 and (tmp_path / "x.NPZ").is_file()  # the suffix in capitals is still a file name


@pytest.mark.parametrize("damage", ["no model_args", "no config", "no step", "renamed layer", "reshaped layer"])
def test_a_checkpoint_of_another_version_is_one_line(checkpoint, tmp_path, capsys, damage):
    from training import checkpoint as ckpt_io

    ck = ckpt_io.load(checkpoint)
    if damage.startswith("no "):  # export and evaluate once raised KeyError: 'config' / 'step' as a traceback
        del ck[damage.removeprefix("no ")]
    else:
        key = next(iter(ck["G"]))
        if damage == "renamed layer":
            ck["G"]["old." + key] = ck["G"].pop(key)
        else:
            ck["G"][key] = torch.zeros(3, 3)
    ckpt_io.save_atomic(ck, checkpoint)
    for cmd in (["evaluate", str(checkpoint), "--no-figures"], ["export", str(checkpoint), "--id", "m"]):
        code, err = run_cli([*cmd, "--models-dir", str(tmp_path / "m")] if cmd[0] == "export" else cmd, capsys)
        assert code == 1 and "does not fit this version's networks" in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_evaluate_and_export_take_a_run_folder(checkpoint, tmp_path, monkeypatch, capsys):
    """As --resume and --init-from do: "no checkpoint at RUN" for a folder holding checkpoint.pt was wrong."""
    _data_load_raises(monkeypatch, "reached the data: the checkpoint was read")
    for cmd in (
        ["export", str(checkpoint.parent), "--id", "m", "--models-dir", str(tmp_path / "m")],
        ["evaluate", str(checkpoint.parent), "--no-figures"],
    ):
        code, err = run_cli(cmd, capsys)
        assert code == 1 and "reached the data" in err and "no checkpoint at" not in err, err
    from training.evaluate_cmd import evaluation_dir

    assert evaluation_dir(checkpoint.parent) == evaluation_dir(checkpoint) == checkpoint.parent


def test_the_stop_message_gives_a_command_that_can_be_pasted(tmp_path):
    import shlex
    import signal

    from training.signals import Interrupted

    folder = tmp_path / "runs ü" / "00000-mnist-s0"
    said = str(Interrupted(signal.SIGINT, 5, folder))
    command = said.split("continue with: ", 1)[1]
    assert shlex.split(command) == ["infogan", "train", "--resume", str(folder)]


@pytest.mark.parametrize(
    "argv, option",
    [
        (["train", "mnist", "--runs-dir", ""], "--runs-dir"),
        (["train", "mnist", "--data-dir", " "], "--data-dir"),
        (["train", "--resume", ""], "--resume"),
        (["train", "--resume", "r", "--fork", ""], "--fork"),
        (["train", "mnist", "--init-from", ""], "--init-from"),
        (["evaluate", ""], "checkpoint"),
        (["evaluate", "c.pt", "--out", ""], "--out"),
        (["evaluate", "c.pt", "--data-dir", ""], "--data-dir"),
        (["export", "", "--id", "a"], "checkpoint"),
        (["export", "c.pt", "--id", "a", "--models-dir", ""], "--models-dir"),
        (["export", "c.pt", "--id", "a", "--data-dir", ""], "--data-dir"),
        (["data", "dsprites", "--out", ""], "--out"),
        (["serve", "--models-dir", ""], "--models-dir"),
        (["site", "--out", ""], "--out"),
        (["site", "--out", "s", "--models-dir", ""], "--models-dir"),
    ],
)
def test_an_empty_path_is_refused_not_read_as_the_current_folder(argv, option, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # were "" the current folder, a command would read or write here
    code, err = run_cli(argv, capsys)
    last = err.strip().splitlines()[-1]  # argparse's usage, then its one error line
    assert code == 2 and f": error: argument {option}: is empty" in last and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_folder_set_too_large_for_memory_is_one_line(tmp_path, monkeypatch):
    from PIL import Image

    from training import data

    for i in range(3):
        Image.new("RGB", (10, 10)).save(tmp_path / f"{i}.png")
    real_empty = data.np.empty

    def no_memory(shape, dtype=float, *a, **k):
        if len(shape) == 4:  # the set's (N, R, R, C) array
            raise MemoryError
        return real_empty(shape, dtype, *a, **k)

    monkeypatch.setattr(data.np, "empty", no_memory)
    with pytest.raises(DataError, match="3 images of 1024x1024x3 need 0.0 GiB of memory; lower data.resolution"):
        load_folder(tmp_path, 1024, 3)


def test_export_refuses_a_model_folder_that_is_a_link(checkpoint, tmp_path, monkeypatch, capsys):
    # --force renamed the link aside, wrote a folder in its place, then failed on rmtree of the link; a dangling
    # link passed the checks and failed after the evaluation
    _no_evaluation(monkeypatch)
    models = tmp_path / "models"
    (tmp_path / "store" / "v1").mkdir(parents=True)
    models.mkdir()
    (models / "m").symlink_to(tmp_path / "store" / "v1")
    (models / "gone").symlink_to(tmp_path / "store" / "nothing")
    for model_id in ("m", "gone"):
        argv = ["export", str(checkpoint), "--id", model_id, "--models-dir", str(models), "--force"]
        code, err = run_cli(argv, capsys)
        assert code == 1 and "is a symbolic link" in err and len(err.strip().splitlines()) == 1, err
    assert (models / "m").is_symlink() and sorted(p.name for p in models.iterdir()) == ["gone", "m"]


def test_compare_with_a_model_not_exported_yet_is_noted(checkpoint, tmp_path, monkeypatch, capsys):
    _data_load_raises(monkeypatch, "stop after the checks")
    argv = ["export", str(checkpoint), "--id", "m", "--models-dir", str(tmp_path / "models"), "--compare-with", "x"]
    code, err = run_cli(argv, capsys)
    assert "note: --compare-with x: no such model in" in err, err


def test_ctrl_c_before_the_first_step_is_one_line(fake_mnist_dir, tmp_path, monkeypatch, capsys):
    import training.loop

    def interrupted(*a, **k):
        raise KeyboardInterrupt  # Ctrl-C while the data loads: the loop's own handler is not installed yet

    monkeypatch.setattr(training.loop, "train", interrupted)
    code, err = run_cli(["train", "mnist", "--data-dir", str(fake_mnist_dir), "--runs-dir", str(tmp_path)], capsys)
    assert code == 130 and err.strip().splitlines()[-1] == (
        "infogan train: stopped by SIGINT before the first step; nothing was trained"
    ), err
