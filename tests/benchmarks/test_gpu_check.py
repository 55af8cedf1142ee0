"""benchmarks/gpu_check.sh, the prepared GPU check (issue 22), in its CPU dry run: every step runs and reports,
and a missing interpreter is one line. (On a GPU machine the same script gates on CUDA; docs/service.md.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def run_check(**env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    full.pop("DEVICE", None)
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=full, capture_output=True, text=True, timeout=400)


def test_dry_run_runs_every_step_and_passes(tmp_path):
    # PY given as a name on PATH (as on a CUDA image: PY=python3), step 1 narrowed to one quick test file
    venv_bin = Path(sys.executable).parent
    done = run_check(
        PY=Path(sys.executable).name,
        PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        GPU_CHECK_DEVICE="cpu",
        GPU_CHECK_STEPS="3",
        GPU_CHECK_TESTS="tests/backend/test_health_api.py",
        MNIST_DIR="generated",
        TMPDIR=str(tmp_path),
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "dry run on cpu" in out
    assert "PASS service tests (DEVICE=cpu, tests/backend/test_health_api.py)" in out
    assert "PASS serving benchmark (DEVICE=cpu)" in out and "served on cpu" in out
    assert "PASS training (infogan train mnist --device cpu --max-steps 3)" in out and "checkpoint written" in out
    assert out.rstrip().splitlines()[-1].startswith("gpu_check: PASS overall")
    assert not list(tmp_path.glob("tmp.*"))  # its own work folder (mktemp -d) removed


def test_a_missing_interpreter_is_one_line():
    done = run_check(PY="no-such-python-here")
    assert done.returncode == 1
    assert done.stdout.strip() == "gpu_check: FAIL: no Python no-such-python-here (run make install first, or set PY)"
