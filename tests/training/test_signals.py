"""A command stopped by SIGINT or SIGTERM (`infogan export`, `data`, `site`) unwinds: its clean-ups run, it ends with
one line and the shell's code for "ended by a signal" (128 + signal). SIGTERM's default action ended the process on
the spot, leaving an export's hidden staging folder or a render's part file (3 GB for dSprites) that nothing
removed; Ctrl-C printed a traceback. Each case runs in a child process that signals itself half-way."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from training.latent import mnist_spec
from training.networks import build_networks

ROOT = Path(__file__).resolve().parents[2]

HALF_WAY = """
import os, signal, sys
import {module} as target
from training import cli

def stopped_half_way(*args, **kwargs):
    {work}
    os.kill(os.getpid(), signal.{sig})
    raise AssertionError("the signal did not stop the command")

target.{name} = stopped_half_way
before = signal.getsignal(signal.SIGTERM)
try:
    cli.main(sys.argv[1:])
finally:
    assert signal.getsignal(signal.SIGTERM) == before, "SIGTERM's handler not put back"
"""


def stop_half_way(module: str, name: str, work: str, sig: str, argv: list[str]) -> subprocess.CompletedProcess:
    script = HALF_WAY.format(module=module, name=name, work=work, sig=sig)
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_stopped_export_leaves_no_staging_folder(sig, tmp_path, fake_mnist_dir, save_mnist_checkpoint):
    torch.manual_seed(0)
    spec = mnist_spec()
    G, D = build_networks(spec, arch="mnist", channels=1, resolution=28, fc=16, ch=8)
    ck = save_mnist_checkpoint(tmp_path / "checkpoint.pt", G, D, spec, fake_mnist_dir, fc=16, ch=8, step=1, seed=0)
    models = tmp_path / "models"
    # export_networks(G, D, spec, folder, ...) writes the ONNX files into the hidden staging folder
    work = "(args[3] / 'generator.onnx').write_bytes(b'half')"
    res = stop_half_way(
        "training.export", "export_networks", work, sig, ["export", str(ck), "--id", "m", "--models-dir", str(models)]
    )
    signum = signal.Signals[sig]
    assert res.returncode == 128 + signum, res.stderr[-3000:]
    assert res.stderr.strip().splitlines()[-1] == (
        f"infogan export: stopped by {sig}; no half-written model is left (models/ holds the old model or the new one)"
    )
    assert "Traceback" not in res.stderr
    assert sorted(p.name for p in models.iterdir()) == []  # no .m.*.tmp staging folder


def test_a_stopped_render_leaves_no_part_file(tmp_path):
    out = tmp_path / "dsprites.npz"
    work = "args[0].write(b'half a zip')"  # _write_zip(fileobj, arrays): into the .part file
    argv = ["data", "dsprites", "--out", str(out), "--subset", "1,1,5,39,31,31"]  # 3 x 2 x 2 x 2 x 2 = 48 images
    res = stop_half_way("training.factor_sets", "_write_zip", work, "SIGTERM", argv)
    assert res.returncode == 128 + signal.SIGTERM, res.stderr[-3000:]
    assert res.stderr.strip().splitlines()[-1] == "infogan data: stopped by SIGTERM; no half-written file is left"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_stopped_site_build_leaves_nothing(tmp_path, tiny_models_dir):
    out = tmp_path / "new" / "site"
    work = "(args[0] / 'static').mkdir(parents=True)"  # _write_site(part, ...): into the staging folder
    argv = ["site", "--out", str(out), "--models-dir", str(tiny_models_dir)]
    res = stop_half_way("training.site", "_write_site", work, "SIGTERM", argv)
    assert res.returncode == 128 + signal.SIGTERM, res.stderr[-3000:]
    assert res.stderr.strip() == "infogan site: stopped by SIGTERM; nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nor the parent folders made for it
