"""scripts/code_effects.py: measure a shipped model's continuous codes from its ONNX generator, record the effects
and relabel the codes without touching the graphs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx

from spec.latent import LatentSpec
from spec.manifest import GENERATOR_FILE, MODEL_FILES, SPEC_METADATA_KEY, Manifest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "code_effects.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def graphs(folder: Path) -> dict[str, bytes]:
    return {name: onnx.load(str(folder / name)).graph.SerializeToString() for name in MODEL_FILES}


def test_prints_without_writing_then_writes_effects_and_labels(tmp_path, build_tiny_model):
    folder = build_tiny_model(tmp_path, "m")
    before = (folder / "manifest.json").read_bytes()
    done = run(str(folder), "--draws", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "m (labels: c1=slant, c2=-)" and lines[1].startswith("  c1: ") and lines[2].startswith("  c2: ")
    assert (folder / "manifest.json").read_bytes() == before  # printing changes nothing

    old_graphs = graphs(folder)
    done = run(str(folder), "--draws", "3", "--write", "--label", "c2=thickness", "--label", "c1=width")
    assert done.returncode == 0, done.stderr
    m = Manifest.read(folder)
    for name in MODEL_FILES:  # the files match the new hashes, their metadata the new spec, the graphs unchanged
        m.verify_file(folder, name)
        meta = {p.key: p.value for p in onnx.load(str(folder / name)).metadata_props}[SPEC_METADATA_KEY]
        assert LatentSpec.from_dict(__import__("json").loads(meta)).to_dict() == m.spec
    assert graphs(folder) == old_graphs
    spec = m.latent()
    assert (spec.code("c1").label, spec.code("c2").label) == ("width", "thickness")
    assert set(m.metrics["code_effects"]) == {"c1", "c2"} and m.metrics["digit"] == {"accuracy": 0.1}
    assert "--label c2=thickness" in m.provenance["code_effects_command"]

    # the service loads the relabelled folder (its checks compare the ONNX metadata with the manifest)
    from backend.core.config import Settings
    from backend.core.metrics import Metrics
    from backend.core.registry import Registry

    registry = Registry(Settings(models_dir=tmp_path, device="cpu"), Metrics())
    registry.load_all(registry.folders())
    assert registry.errors == {}


def test_bad_input_is_one_line_and_changes_nothing(tmp_path, build_tiny_model):
    folder = build_tiny_model(tmp_path, "m")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    cases = [
        (["--write", "--label", "digit=x"], "categorical"),
        (["--write", "--label", "nope=x"], "nope"),
        (["--write", "--label", "c1"], "CODE=LABEL"),
        (["--label", "c1=x"], "--write"),
        (["--draws", "1"], "--draws"),
    ]
    for extra, needle in cases:
        done = run(str(folder), *extra)
        assert done.returncode != 0 and needle in done.stderr and "Traceback" not in done.stderr, (extra, done.stderr)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    done = run(str(tmp_path / "no-such-model"))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip()
        == f"code_effects: error: {tmp_path / 'no-such-model'}: no-such-model: manifest.json is missing"
    )
    assert (folder / GENERATOR_FILE).is_file()


def test_a_changed_generator_file_and_a_bad_label_fail_before_measuring(tmp_path, build_tiny_model):
    folder = build_tiny_model(tmp_path, "m")
    with (folder / GENERATOR_FILE).open("ab") as f:
        f.write(b"x")  # no longer the file the manifest's sha256 names
    done = run(str(folder))
    assert done.returncode == 1 and "code_effects: error:" in done.stderr and "sha256" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    # a bad label is refused before the sweep (200 draws x every code: the --draws below would take hours)
    folder = build_tiny_model(tmp_path, "n")
    done = run(str(folder), "--draws", "100000000", "--write", "--label", "c9=width")
    assert done.returncode == 1 and "unknown code 'c9'" in done.stderr, done.stderr


def test_labels_are_read_as_export_reads_them(tmp_path, build_tiny_model):
    # the script and `infogan export --label` share one parser: the same text gives the same label
    from training.export import parse_code_labels

    folder = build_tiny_model(tmp_path, "m")
    done = run(str(folder), "--draws", "3", "--write", "--label", "c1= x position ")
    assert done.returncode == 0, done.stderr
    label = Manifest.read(folder).latent().code("c1").label
    assert label == "x position" == parse_code_labels(Manifest.read(folder).latent(), ["c1= x position "])["c1"]
