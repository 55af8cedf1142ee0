"""Export a checkpoint to a servable model folder ``models/<id>/``: both ONNX graphs (``onnx_graphs``), their
weights in the chosen format (``weight_storage``) and ``manifest.json`` (``spec.manifest.Manifest``, version 2).

The manifest holds the spec, image shape, data set and how a drawing of it looks (from the data set's definition in
``data.DATASETS``), the model to show beside it (``--compare-with``), the evaluation figures, the provenance
(command, config, seed, commit, step) and a sha256 per ONNX file.

Categorical codes are re-ordered at export when the evaluation found a category-to-class map: index j of the
exported code generates (and is recognised as) class j, so a button labelled "3" makes threes. The checkpoint's
index of each exported category is the manifest's ``category_order``. The evaluation (``evaluate.evaluate_model``)
runs first, on the weights as stored, and D is exported with its BatchNorm statistics re-estimated on real images
(``evaluate.calibrated_copy``), as the evaluation measured it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from spec.latent import SpecError, display_text
from spec.manifest import MANIFEST_FILE, MODEL_ID_PATTERN, TITLE_MAX, ImageShape, Manifest, Polarity

from . import checkpoint as ckpt_io
from . import machine
from .class_check import classifier_cache_dir
from .config import note
from .data import dataset_info
from .evaluate import calibrated_copy, evaluate_model, load_eval_data
from .latent import LatentSpec
from .onnx_graphs import export_networks
from .restarts import read_state as read_restarts
from .run_dir import writable_folder
from .stages import Progress, quiet
from .weight_storage import fold_conv_batchnorm, round_weights


class ExportError(ValueError):
    pass


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.SubprocessError):
        return None


def check_model_id(model_id: str | None, what: str = "model id") -> str:
    if not isinstance(model_id, str) or not re.fullmatch(MODEL_ID_PATTERN, model_id):
        raise ExportError(f"{what} {model_id!r} must be 1-128 letters, digits, '-' or '_'")
    return model_id


def check_destination(models_dir: str | Path, model_id: str, force: bool = False) -> Path:
    """The folder an export will write, checked before the evaluation (which takes a while): ``models_dir`` must be
    a folder (or creatable) that this process can write, and ``models_dir/model_id`` may be replaced only with
    ``force`` (the README's example once overwrote the shipped model without a word)."""
    models_dir = Path(models_dir)
    folder = models_dir / model_id
    if models_dir.exists() and not models_dir.is_dir():
        raise ExportError(f"--models-dir {models_dir} is a file, not a folder of models")
    if folder.is_symlink():  # replaced by renaming, a link would be swapped for a folder (or fail, dangling)
        raise ExportError(f"{folder} is a symbolic link; export into the folder it points to (--models-dir)")
    if folder.exists() and not force:
        raise ExportError(f"{folder} already exists; pass --force to replace it, or choose another --id")
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file, not a model folder")
    try:
        writable_folder(models_dir, "--models-dir", "models")
    except OSError as e:
        raise ExportError(str(e)) from None
    return folder


def parse_code_labels(spec: LatentSpec, items: list[str]) -> dict[str, str]:
    """``--label c1=slant`` items -> {code: label}. Checked against the spec here (``with_text``), before the
    evaluation, which takes a while: a categorical code takes its labels from the evaluation's class map."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ExportError(f"--label {item!r} must look like CODE=LABEL")
        name, text = item.split("=", 1)
        text = text.strip()  # ' slant ' is a typing slip, not a caption with margins
        try:
            spec.with_text(name, label=text)
        except ValueError as e:  # UnknownCode, or a code that takes one label per category
            raise ExportError(f"--label {item!r}: {e}") from None
        if name in out:  # the last would win without a word
            raise ExportError(f"--label {item!r}: {name} is labelled twice ({out[name]!r} and {text!r})")
        same = next((other for other, label in out.items() if label == text), None)
        if same is not None:  # two sliders with one caption (factor_labels numbers its repeats for the same reason)
            raise ExportError(f"--label {item!r}: {same} already has the label {text!r}")
        out[name] = text
    return out


def category_order(spec: LatentSpec, category_to_class: dict[str, list[int]] | None) -> dict[str, list[int]]:
    """Per categorical code, the checkpoint's category of each exported index: the category the evaluation mapped
    to class j comes j-th. A code without a one-to-one map (none, or more categories than classes) keeps its order."""
    orders = {}
    for code in spec.categorical_codes():
        mapping = (category_to_class or {}).get(code.name)
        k = code.categories
        if mapping and sorted(mapping) == list(range(k)):
            orders[code.name] = sorted(range(k), key=lambda i: mapping[i])
        else:
            orders[code.name] = list(range(k))
    return orders


def factor_labels(spec: LatentSpec, evaluation: dict[str, Any]) -> dict[str, str]:
    """{continuous code: the ground-truth factor it matches} from the evaluation's code x factor MI matrix
    (``disentanglement.best_factor``, MI normalised by the factor's entropy), for data sets with factor classes;
    {} otherwise. A factor that is the best match of several codes names the one with the highest normalised MI;
    the others get "<factor> 2", "<factor> 3", ... in that order, so no two sliders carry the same name and the
    page still says what each one moves most.

    A factor that a categorical code matches best (the chairs' style, read by the style code) is that code's: a
    continuous code is named after the best of the other factors (from ``mi_matrix`` when the evaluation has it),
    so a slider that also nudges the style is not called "style" beside the style buttons; on the shipped chairs
    model `c2` holds 0.095 nats of style and 0.073 of light, more light than any other code."""
    dis = evaluation.get("disentanglement") or {}
    best = dict(dis.get("best_factor") or {})
    claimed = {best[c.name]["factor"] for c in spec.codes if c.kind == "categorical" and c.name in best}
    matrix, factors, codes, entropy = (dis.get(k) for k in ("mi_matrix", "factors", "codes", "factor_entropy"))
    if claimed and matrix and factors and codes and entropy:
        for c in spec.continuous_codes():
            if c.name in best and best[c.name]["factor"] in claimed and c.name in codes:
                row = matrix[codes.index(c.name)]
                scores = {
                    f: row[i] / entropy[f] for i, f in enumerate(factors) if f not in claimed and entropy.get(f, 0) > 0
                }
                if scores:
                    f = max(scores, key=scores.__getitem__)
                    best[c.name] = {"factor": f, "mi": row[factors.index(f)], "normalised_mi": scores[f]}
    matched = [(c.name, best[c.name]) for c in spec.continuous_codes() if c.name in best]
    labels: dict[str, str] = {}
    for factor in dict.fromkeys(m["factor"] for _, m in matched):
        ranked = sorted((m for m in matched if m[1]["factor"] == factor), key=lambda m: -m[1]["normalised_mi"])
        for rank, (name, _) in enumerate(ranked, start=1):
            labels[name] = factor if rank == 1 else f"{factor} {rank}"
    return labels


def export_checkpoint(
    checkpoint: str | Path,
    model_id: str,
    *,
    models_dir: str | Path = "models",
    title: str | None = None,
    data_dir: str | None = None,
    labels: list[str] | None = None,
    command: str | None = None,
    evaluation: dict[str, Any] | None = None,
    weights: str = "fp32",
    compare_with: str | None = None,
    split: str = "test",
    force: bool = False,
    progress: Progress = quiet,
) -> Path:
    """Checkpoint -> models/<id>/ with both ONNX files and manifest.json (evaluates on ``split`` first unless
    ``evaluation`` is given). An existing models/<id>/ is replaced only with ``force``. ``progress``: a line per
    stage (the evaluation's minutes)."""
    check_model_id(model_id)
    if title is not None:  # checked now, not after the evaluation's minutes
        try:
            display_text(title, "--title", TITLE_MAX)
        except SpecError as e:
            raise ExportError(str(e)) from None
    if compare_with is not None:
        check_model_id(compare_with, "--compare-with")
        if compare_with == model_id:
            raise ExportError(f"--compare-with {compare_with!r} is the model itself")
        if not (Path(models_dir) / compare_with / MANIFEST_FILE).is_file():  # a pair may be exported in either order
            note(f"--compare-with {compare_with}: no such model in {models_dir} yet; the page shows it once there")
    check_destination(models_dir, model_id, force)
    ck = ckpt_io.load(checkpoint)
    G, D, _ = ckpt_io.load_networks(ck)
    round_weights(G, weights)  # evaluate exactly the weights that ship
    round_weights(D, weights)
    spec = G.spec
    code_labels = parse_code_labels(spec, labels or [])
    cfg = ck["config"]
    dc = cfg["data"]
    progress(f"loading {dc['name']} (step {ck['step']:,} checkpoint)")
    data = load_eval_data(dc, data_dir, split, allow_download=False)
    # the recognizer serves real images: its BN statistics are those of real data
    D = calibrated_copy(D, data, progress=progress)
    if weights != "fp32":  # each Conv+BN as the file stores it: folded, then on the stored grid
        D = fold_conv_batchnorm(D)
        round_weights(D, weights)
    if evaluation is None:
        evaluation = evaluate_model(
            G,
            D,
            data,
            generated_classes=True,
            code_effects=True,
            classifier_cache=classifier_cache_dir(),
            calibrated=True,
            progress=progress,
        )
    cat_map = {c.name: evaluation.get(c.name, {}).get("category_to_class") for c in spec.categorical_codes()}
    orders = category_order(spec, cat_map)
    # an explicit --label wins over the factor a code matches (data sets with ground-truth factors)
    for name, text in {**factor_labels(spec, evaluation), **code_labels}.items():
        spec = spec.with_text(name, label=text)
    classes = data.train.classes
    for code in spec.categorical_codes():
        # class names as category labels only where the evaluation mapped the categories one-to-one onto them
        one_to_one = sorted(cat_map.get(code.name) or []) == list(range(code.categories))
        if classes and len(classes) == code.categories and one_to_one:
            spec = spec.with_text(code.name, labels=list(classes))
    G.spec = D.spec = spec
    progress(f"writing {Path(models_dir) / model_id}: generator and recognizer as ONNX, manifest.json")
    return write_model_folder(
        G,
        D,
        spec,
        Path(models_dir) / model_id,
        model_id=model_id,
        title=model_id if title is None else title,
        dataset=ck.get("dataset", dc["name"]),
        drawing=dataset_info(dc["name"]).drawing,
        compare_with=compare_with,
        metrics=evaluation,
        category_order=orders,
        weights=weights,
        provenance={
            "command": command,
            "train_command": ck.get("command"),
            "resumed_by": ck.get("resumed_by", []),
            # the machine of each training command (training.machine; the last ones when the run began before they
            # were recorded) and of this export, which measured the evaluation figures
            "machines": ck.get("machines", []),
            "exported_on": machine.describe(),
            "init_from": ck.get("init_from"),
            "restarts": read_restarts(ck)[0],
            "precision": ck.get("precision"),  # "auto" resolved per machine
            "config": cfg,
            "seed": cfg["train"]["seed"],
            "step": ck["step"],
            "epoch": ck.get("epoch"),
            # which weights G ships: the moving average the run kept (train.ema_half_life) or the trained ones
            "generator": ckpt_io.generator_weights(ck),
            "evaluated_on": data.split,
            "commit": git_commit(),
            "model_args": ck["model_args"],
        },
    )


def write_model_folder(
    G: nn.Module,
    D: nn.Module,
    spec: LatentSpec,
    folder: str | Path,
    *,
    model_id: str,
    title: str,
    dataset: str,
    drawing: Polarity,
    compare_with: str | None = None,
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    category_order: dict[str, list[int]] | None = None,
    weights: str = "fp32",
) -> Path:
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
        orders = category_order or {}
        image = export_networks(G, D, spec, tmp, orders, weights)
        Manifest(
            id=model_id,
            title=title,
            dataset=dataset,
            image=ImageShape(**image),
            spec=spec.to_dict(),  # the same JSON as the ONNX files' metadata
            category_order=orders,
            drawing=drawing,
            compare_with=compare_with,
            weights=weights,
            files=Manifest.file_entries(tmp),
            metrics=metrics or {},
            provenance=provenance or {},
        ).write(tmp)
        replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def exchange_paths(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``). False where the C library or the
    file system cannot (then nothing moved)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28, musl >= 1.2.3
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2  # <fcntl.h>, <linux/fs.h>
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a kernel or file system without the flag
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_folder(new: Path, folder: Path) -> None:
    """``new`` becomes ``folder``, and the old folder is deleted after. The two are swapped in one step where the
    system can (``exchange_paths``), so ``folder`` always holds a complete model: with two renames (the old folder
    aside, then the new one in), a kill between them left no ``folder`` at all, the served model gone, with its files
    under a hidden name nothing looked at. Elsewhere the old folder goes aside into a fresh hidden name (never one a
    killed export left, which made every later rename fail) and the gap between the renames remains."""
    if not folder.exists():
        os.rename(new, folder)
        return
    if exchange_paths(new, folder):
        shutil.rmtree(new)  # now the old model
        return
    old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
    os.rename(folder, old)  # onto an empty folder, which rename(2) replaces
    os.rename(new, folder)
    shutil.rmtree(old)
