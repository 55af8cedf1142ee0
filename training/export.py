"""Export a checkpoint to a servable model folder ``models/<id>/``.

- ``generator.onnx``: inputs ``z`` (N, noise dim) and ``c`` (N, code vector dim; layout from the manifest's spec,
  a categorical code one-hot, a continuous code one column), output ``images`` (N, C, H, W) in [0, 1].
- ``recognizer.onnx``: input ``images`` (N, C, H, W) in [0, 1]; outputs per code ``<name>.logits`` (N, K) for a
  categorical code, ``<name>.mean`` and ``<name>.std`` (N,) for a continuous one, and ``d_logit`` (N,).
- ``manifest.json``: the spec, image shape, data set, provenance (command, config, seed, commit, step), the
  evaluation figures and a sha256 per ONNX file. The spec is also in each ONNX file's metadata (``infogan_spec``).

Categorical codes are re-ordered at export when the evaluation found a category-to-class map: index i of the
exported code generates (and is recognised as) class i, so a button labelled "3" makes threes. The checkpoint's
index of each category stays in the manifest (``raw_index``). Both batch dimensions are dynamic. D's BatchNorm
statistics are re-estimated on real training images first (see ``evaluate.recalibrate_batchnorm``).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoint as ckpt_io
from .data import load_dataset
from .int8_path import add_int8_path
from .latent import LatentSpec

MANIFEST_VERSION = 1
OPSET = 17


class ExportError(ValueError):
    pass


class _GeneratorONNX(nn.Module):
    def __init__(self, G: nn.Module, perm: torch.Tensor):
        super().__init__()
        self.G = G
        self.register_buffer("perm", perm)  # exported column j -> checkpoint column perm[j]

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c_raw = torch.zeros_like(c).index_copy(1, self.perm, c)
        return (self.G(z, c_raw).clamp(-1, 1) + 1) * 0.5


class _RecognizerONNX(nn.Module):
    def __init__(self, D: nn.Module, spec: LatentSpec, perms: dict[str, torch.Tensor]):
        super().__init__()
        self.D = D
        self.spec = spec
        self.perms = perms  # categorical code -> exported index order of the checkpoint's logits

    def forward(self, images: torch.Tensor):
        d, q = self.D(images * 2 - 1)
        outs = []
        for code, s in self.spec.q_slices():
            pred = code.predict(q[:, s])
            if "logits" in pred:
                outs.append(pred["logits"][:, self.perms[code.name]])
            else:
                outs += [pred["mean"], pred["std"]]
        return (*outs, d)


def recognizer_output_names(spec: LatentSpec) -> list[str]:
    names = []
    for code in spec.codes:
        names += [f"{code.name}.logits"] if code.kind == "categorical" else [f"{code.name}.mean", f"{code.name}.std"]
    return names + ["d_logit"]


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


WEIGHT_FORMATS = ("fp32", "fp16", "int8")
INT8_MIN_ELEMENTS = 1024


def round_to_fp16(module: nn.Module) -> None:
    """Round every floating parameter and buffer to the nearest fp16 value (kept as fp32), so the PyTorch module
    and an ONNX file storing fp16 weights compute the same function."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


def int8_grid(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8 quantisation of a 2-D weight (out, in): (q int8 (out, in), scale fp32 (out, 1)),
    w ~ q * scale. One scale per output unit keeps the error relative to each unit's own range."""
    scale = (w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0).float()
    q = torch.round(w / scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def round_weights(module: nn.Module, weights: str) -> None:
    """Put the module's weights on the grid the ONNX file will store (in place, kept as fp32), so PyTorch and
    ONNX Runtime compute the same function and the evaluation measures the weights that ship.

    int8: fully connected weights of >= INT8_MIN_ELEMENTS values (the paper's MNIST nets are ~97 % two FC
    layers, 6272 x 1024) go to a per-row int8 grid; everything else to fp16."""
    if weights not in WEIGHT_FORMATS:
        raise ExportError(f"weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    if weights == "fp32":
        return
    round_to_fp16(module)
    if weights == "int8":
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, nn.Linear) and m.weight.numel() >= INT8_MIN_ELEMENTS:
                    q, scale = int8_grid(m.weight)
                    m.weight.copy_(q.float() * scale)


def _on_int8_grid(arr) -> tuple | None:
    """(q, scale) as numpy arrays if the 2-D fp32 array already lies on int8_grid's grid (as round_weights leaves
    the large FC weights), else None: re-quantising must reproduce every value to within 1e-3 of a step."""
    if arr.ndim != 2:
        return None
    w = torch.from_numpy(arr.copy())  # onnx's numpy views are read-only; torch wants a writable buffer
    q, scale = int8_grid(w)
    if ((q.float() * scale - w).abs() > 1e-3 * scale).any():
        return None
    return q.numpy(), scale.numpy()


def store_weights(model, weights: str, min_elements: int = 1024) -> None:
    """Store large fp32 initializers compactly, each with plain nodes in front that rebuild the fp32 tensor:
    fp16 + Cast (half the bytes), or int8 + Cast + Mul by a per-row scale (a quarter) for tensors on the int8
    grid. ONNX Runtime folds these constant nodes once at session start, so inference runs in fp32 (int8 files also
    get an exact integer path for one or two images: int8_path.add_int8_path, called by _onnx_export)."""
    from onnx import TensorProto, helper, numpy_helper

    if weights == "fp32":
        return
    graph = model.graph
    pre = []
    for init in list(graph.initializer):  # a snapshot: the scales appended below are not to be re-stored
        if init.data_type != TensorProto.FLOAT:
            continue
        arr = numpy_helper.to_array(init)
        if arr.size < min_elements:
            continue
        name = init.name
        grid = _on_int8_grid(arr) if weights == "int8" else None
        if grid is not None:
            q, scale = grid
            init.CopyFrom(numpy_helper.from_array(q, name + "__int8"))
            graph.initializer.append(numpy_helper.from_array(scale, name + "__scale"))
            pre.append(helper.make_node("Cast", [name + "__int8"], [name + "__deq"], to=TensorProto.FLOAT,
                                        name=name + "__cast"))
            pre.append(helper.make_node("Mul", [name + "__deq", name + "__scale"], [name], name=name + "__mul"))
        else:
            init.CopyFrom(numpy_helper.from_array(arr.astype("float16"), name + "__fp16"))
            pre.append(helper.make_node("Cast", [name + "__fp16"], [name], to=TensorProto.FLOAT, name=name + "__cast"))
    nodes = pre + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def _onnx_export(module: nn.Module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
                 spec_json: str, weights: str = "fp32") -> None:
    import onnx

    dynamic = {n: {0: "batch"} for n in input_names + output_names}
    torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    model = onnx.load(str(path))
    store_weights(model, weights)
    if weights == "int8":
        add_int8_path(model)  # small batches through the int8 FC weights exactly (training/int8_path.py)
    entry = model.metadata_props.add()
    entry.key, entry.value = "infogan_spec", spec_json
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_networks(G: nn.Module, D: nn.Module, spec: LatentSpec, folder: str | Path,
                    category_to_class: dict[str, list[int]] | None = None, weights: str = "fp32") -> dict[str, Any]:
    """Write generator.onnx and recognizer.onnx for (G, D) in eval mode; returns the exported spec and file info.

    ``weights`` fp16/int8 rounds G's and D's weights to the stored grid first (in place, see round_weights) and
    stores them so: the files shrink 2x/~4x and PyTorch (with the rounded weights) and ONNX Runtime still agree
    to fp32 rounding."""
    folder = Path(folder)
    round_weights(G, weights)
    round_weights(D, weights)
    folder.mkdir(parents=True, exist_ok=True)
    G.eval()
    D.eval()
    perms, col_perm, offset = {}, [], 0
    codes = []
    for code, s in spec.c_slices():
        d = code.to_dict()
        if code.kind == "categorical":
            mapping = (category_to_class or {}).get(code.name)
            # exported index j shows class j: raw category = the one mapped to class j
            order = sorted(range(code.categories), key=lambda k: mapping[k]) if mapping and sorted(mapping) == list(range(code.categories)) else list(range(code.categories))
            perms[code.name] = torch.tensor(order)
            col_perm += [offset + k for k in order]
            d["raw_index"] = order
        else:
            col_perm.append(offset)
        offset += code.c_dim
        codes.append(d)
    spec_dict = {"noise": spec.noise.to_dict(), "codes": codes}
    spec_json = json.dumps(spec_dict)
    z, c = spec.sample(2, torch.Generator().manual_seed(0))
    # wrappers in eval mode: the exporter restores the wrapper's mode afterwards, which would flip G and D to train
    gen = _GeneratorONNX(G, torch.tensor(col_perm, dtype=torch.long)).eval()
    with torch.no_grad():
        sample = gen(z, c)
    _onnx_export(gen, (z, c), folder / "generator.onnx", ["z", "c"], ["images"], spec_json, weights)
    rec = _RecognizerONNX(D, spec, perms).eval()
    _onnx_export(rec, (sample,), folder / "recognizer.onnx", ["images"], recognizer_output_names(spec), spec_json,
                 weights)
    _, ch, h, w = sample.shape
    return {"spec": spec_dict, "image": {"channels": ch, "height": h, "width": w},
            "weights": weights}


def parse_code_labels(spec: LatentSpec, items: list[str]) -> dict[str, str]:
    """``--label c1=slant`` items -> {code: label} for continuous codes (a categorical code's labels come from
    the class map of the evaluation)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ExportError(f"--label {item!r} must look like CODE=LABEL")
        name, text = item.split("=", 1)
        try:
            code = spec.code(name)
        except KeyError as e:
            raise ExportError(f"--label {item!r}: {e.args[0]}") from None
        if code.kind != "continuous":
            raise ExportError(f"--label {item!r}: {name!r} is a categorical code; its category labels come from "
                              "the evaluation's class map")
        out[name] = text
    return out


def export_checkpoint(checkpoint: str | Path, model_id: str, *, models_dir: str | Path = "models", title: str | None = None,
                      data_dir: str | None = None, labels: list[str] | None = None, command: str | None = None,
                      evaluation: dict[str, Any] | None = None, weights: str = "fp32") -> Path:
    """Checkpoint -> models/<id>/ with both ONNX files and manifest.json (evaluates first unless given)."""
    from .evaluate import evaluate, recalibrate_batchnorm

    if not model_id or not all(ch.isalnum() or ch in "-_" for ch in model_id):
        raise ExportError(f"model id {model_id!r} must be letters, digits, '-' or '_'")
    ck = ckpt_io.load(checkpoint)
    G, D, _ = ckpt_io.load_networks(ck)
    round_weights(G, weights)  # evaluate exactly the weights that ship
    round_weights(D, weights)
    spec = G.spec
    code_labels = parse_code_labels(spec, labels or [])  # before the evaluation, which takes a while
    cfg = ck["config"]
    dc = cfg["data"]
    data_dir = data_dir or dc.get("dir")
    kw = dict(resolution=dc["resolution"], channels=dc["channels"], allow_download=False, verify=dc.get("verify", True))
    train = load_dataset(dc["name"], data_dir, "train", **kw)
    real = train.as_float()
    recalibrate_batchnorm(D, real[:10000])
    if evaluation is None:
        try:
            test = load_dataset(dc["name"], data_dir, "test", **kw)
            evaluation = evaluate(G, D, test.as_float(), test.labels, test.classes)
        except Exception:  # data sets without a labelled test split
            evaluation = evaluate(G, D, real[:10000], None)
    # human labels: categories from the class map, codes from --label name=text
    cat_map = {code.name: evaluation.get(code.name, {}).get("category_to_class") for code in spec.codes
               if code.kind == "categorical"}
    for name, text in code_labels.items():
        spec = spec.with_labels(name, label=text)
    for code in spec.codes:
        if code.kind == "categorical" and cat_map.get(code.name) and train.classes:
            spec = spec.with_labels(code.name, labels=list(train.classes))
    G.spec = D.spec = spec
    return write_model_folder(
        G, D, spec, Path(models_dir) / model_id, model_id=model_id, title=title or model_id,
        dataset=ck.get("dataset", dc["name"]), light_on_dark=dc["name"] in ("mnist", "fashion-mnist"),
        metrics=evaluation, category_to_class={k: v for k, v in cat_map.items() if v}, weights=weights,
        provenance={"command": command, "train_command": ck.get("command"), "resumed_by": ck.get("resumed_by", []),
                    "selection": ck.get("selection"), "precision": ck.get("precision"),  # "auto" resolved per machine
                    "config": cfg, "seed": cfg["train"]["seed"], "step": ck["step"],
                    "epoch": ck.get("epoch"), "commit": git_commit(), "model_args": ck["model_args"]})


def write_model_folder(G: nn.Module, D: nn.Module, spec: LatentSpec, folder: str | Path, *, model_id: str, title: str,
                       dataset: str, light_on_dark: bool, metrics: dict[str, Any] | None = None,
                       provenance: dict[str, Any] | None = None,
                       category_to_class: dict[str, list[int]] | None = None, weights: str = "fp32") -> Path:
    """Write both ONNX files and manifest.json for (G, D) into folder (also used by tests for tiny models).

    They are written into a hidden temporary folder beside it, which then replaces the folder (``replace_folder``),
    so an export that fails or is killed half-way never leaves a served model with mixed files."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # hidden (leading dot): the service skips such folders, so a leftover of a kill is never served
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # a plain folder's mode, not mkdtemp's owner-only 0700 (a service user reads it)
    try:
        _write_model_files(G, D, spec, tmp, model_id=model_id, title=title, dataset=dataset,
                           light_on_dark=light_on_dark, metrics=metrics, provenance=provenance,
                           category_to_class=category_to_class, weights=weights)
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def replace_folder(new: Path, folder: Path) -> None:
    """``new`` becomes ``folder``. An existing folder is renamed aside first and deleted after, so at every moment
    there is the old complete folder or the new one (between the two renames, the old one under a hidden name)."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        os.rename(folder, old)
    os.rename(new, folder)
    if old is not None:
        shutil.rmtree(old)


def _write_model_files(G: nn.Module, D: nn.Module, spec: LatentSpec, folder: Path, *, model_id: str, title: str,
                       dataset: str, light_on_dark: bool, metrics: dict[str, Any] | None,
                       provenance: dict[str, Any] | None, category_to_class: dict[str, list[int]] | None,
                       weights: str) -> None:
    info = export_networks(G, D, spec, folder, category_to_class, weights)
    files = {name: {"sha256": sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
             for name in ("generator.onnx", "recognizer.onnx")}
    manifest = {
        "format": "infogan-model", "version": MANIFEST_VERSION, "id": model_id, "title": title, "dataset": dataset,
        # MNIST-like sets are light strokes on a dark ground; the service inverts dark-on-light uploads
        "light_on_dark": light_on_dark,
        **info,
        "files": files,
        "inputs": {"generator": ["z", "c"], "recognizer": ["images"]},
        "outputs": {"generator": ["images"], "recognizer": recognizer_output_names(spec)},
        "metrics": metrics or {},
        "provenance": provenance or {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=float))
