"""The two ONNX graphs of a model folder, traced from (G, D) in eval mode.

- ``generator.onnx``: inputs ``z`` (N, noise dim) and ``c`` (N, code vector dim; layout from the spec: a categorical
  code one-hot, a continuous code one column), output ``images`` (N, C, H, W) in [0, 1].
- ``recognizer.onnx``: input ``images`` (N, C, H, W) in [0, 1]; outputs ``LatentSpec.output_names()`` (per code
  ``<name>.logits`` (N, K), or ``<name>.mean`` and ``<name>.std`` (N,)), then ``d_logit`` (N,).

Both batch dimensions are dynamic. The spec's JSON is stored in each file's metadata under ``SPEC_METADATA_KEY``,
identical to the manifest's ``spec``. A categorical code may be exported in another category order than the
checkpoint's (``orders``: exported index j is checkpoint category ``order[j]``), so index j shows class j.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spec.manifest import (
    GENERATOR_FILE,
    GENERATOR_INPUTS,
    GENERATOR_OUTPUT,
    RECOGNIZER_FILE,
    RECOGNIZER_INPUT,
    SPEC_METADATA_KEY,
)

from . import weight_storage
from .latent import LatentSpec

OPSET = 17


def input_columns(spec: LatentSpec, orders: dict[str, list[int]]) -> list[int]:
    """Column of the checkpoint's code vector c that each exported column reads: a code's columns in its exported
    order (``orders[name]``, default their own order), offset by where the code starts in c."""
    cols: list[int] = []
    for code, s in spec.c_slices():
        cols += [s.start + k for k in orders.get(code.name, range(code.c_dim))]
    return cols


class GeneratorGraph(nn.Module):
    """G with the code columns re-ordered and the image mapped from [-1, 1] to [0, 1]."""

    def __init__(self, G: nn.Module, spec: LatentSpec, orders: dict[str, list[int]]):
        super().__init__()
        self.G = G
        self.register_buffer("columns", torch.tensor(input_columns(spec, orders), dtype=torch.long))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        # exported column j -> checkpoint column columns[j]
        c_raw = torch.zeros_like(c).index_copy(1, self.columns, c)
        return (self.G(z, c_raw).clamp(-1, 1) + 1) * 0.5


class RecognizerGraph(nn.Module):
    """D's logit and Q's reading of every code (``code.predict``), Q's columns in the exported category order."""

    def __init__(self, D: nn.Module, spec: LatentSpec, orders: dict[str, list[int]]):
        super().__init__()
        self.D = D
        self.spec = spec
        # per code: the order of Q's raw columns (a code that is not re-ordered keeps its own)
        self.orders = {code.name: torch.tensor(orders.get(code.name, range(code.q_dim))) for code in spec.codes}

    def forward(self, images: torch.Tensor):
        d, q = self.D(images * 2 - 1)
        outs = []
        for code, s in self.spec.q_slices():
            outs += code.predict(code.permute(q[:, s], self.orders[code.name])).values()
        return (*outs, d)


def onnx_export(
    module: nn.Module,
    args: tuple,
    path: Path,
    input_names: list[str],
    output_names: list[str],
    spec_json: str,
    weights: str = "fp32",
) -> None:
    """torch.onnx.export with dynamic batch axes, then the weight storage and the spec in the metadata."""
    import onnx

    dynamic = {n: {0: "batch"} for n in input_names + output_names}
    torch.onnx.export(
        module,
        args,
        str(path),
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic,
        opset_version=OPSET,
        dynamo=False,
    )
    model = onnx.load(str(path))
    weight_storage.store(model, weights)
    entry = model.metadata_props.add()
    entry.key, entry.value = SPEC_METADATA_KEY, spec_json
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def read_spec_metadata(path: str | Path) -> dict[str, Any]:
    """The spec JSON stored in an ONNX file's metadata."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(meta[SPEC_METADATA_KEY])


def export_networks(
    G: nn.Module,
    D: nn.Module,
    spec: LatentSpec,
    folder: str | Path,
    orders: dict[str, list[int]] | None = None,
    weights: str = "fp32",
) -> dict[str, int]:
    """Write generator.onnx and recognizer.onnx for (G, D) into folder; returns the image shape
    {"channels", "height", "width"}.

    ``weights`` fp16/int8 rounds G's and D's weights to the stored grid first (in place, see
    ``weight_storage.round_weights``) and stores them so: the files shrink 2x/~4x and PyTorch (with the rounded
    weights) and ONNX Runtime still agree to fp32 rounding."""
    folder = Path(folder)
    orders = orders or {}
    weight_storage.round_weights(G, weights)
    weight_storage.round_weights(D, weights)
    folder.mkdir(parents=True, exist_ok=True)
    G.eval()
    D.eval()
    spec_json = json.dumps(spec.to_dict())
    z, c = spec.sample(2, torch.Generator().manual_seed(0))
    # wrappers in eval mode: the exporter restores the wrapper's mode afterwards, which would flip G and D to train
    gen = GeneratorGraph(G, spec, orders).eval()
    with torch.no_grad():
        sample = gen(z, c)
    onnx_export(gen, (z, c), folder / GENERATOR_FILE, list(GENERATOR_INPUTS), [GENERATOR_OUTPUT], spec_json, weights)
    rec = RecognizerGraph(D, spec, orders).eval()
    onnx_export(rec, (sample,), folder / RECOGNIZER_FILE, [RECOGNIZER_INPUT], spec.output_names(), spec_json, weights)
    _, ch, h, w = sample.shape
    return {"channels": ch, "height": h, "width": w}
