"""How an exported model stores its weights: fp32, fp16 or int8 (``infogan export --weights``).

Two halves that must agree: ``round_weights`` puts a PyTorch module's weights on the grid the file will store (in
place, kept as fp32), so the evaluation measures exactly the weights that ship; ``store_weights`` then writes the
exported ONNX graph's large initializers in that format, with constant nodes in front that rebuild the fp32 tensor.
For int8 files ``store`` also adds the exact integer matrix product for small batches (``training/int8_matmul.py``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from spec.manifest import WEIGHT_FORMATS

from .int8_matmul import add_int8_matmul

# Fully connected weights of at least this many values go to the int8 grid (the paper's MNIST nets are ~97 % two
# FC layers, 6272 x 1024); smaller tensors stay fp16 (their bytes do not matter, their precision might).
INT8_MIN_ELEMENTS = 1024


class WeightFormatError(ValueError):
    pass


def check_format(weights: str) -> str:
    if weights not in WEIGHT_FORMATS:
        raise WeightFormatError(f"weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    return weights


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


def fold_conv_batchnorm(module: nn.Module) -> nn.Module:
    """A copy in eval mode with each Conv2d that a BatchNorm2d follows (in a Sequential) replaced by the one
    convolution computing both, and that BatchNorm by an identity: what torch.onnx.export's constant folding makes of
    the pair. Folded here, the folded weights are rounded (round_weights) and evaluated as the file will store them;
    left to the export, they were rounded after the evaluation (fp16/int8 logits off by up to ~1e-3)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    module = copy.deepcopy(module).eval()
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], nn.Conv2d) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return module


def round_weights(module: nn.Module, weights: str) -> None:
    """Put the module's weights on the grid the ONNX file will store (in place, kept as fp32), so PyTorch and
    ONNX Runtime compute the same function and the evaluation measures the weights that ship.

    int8: fully connected weights of >= INT8_MIN_ELEMENTS values go to a per-row int8 grid; everything else to
    fp16."""
    if check_format(weights) == "fp32":
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


def store_weights(model, weights: str, min_elements: int = INT8_MIN_ELEMENTS) -> None:
    """Store large fp32 initializers of an ONNX model compactly, each with plain nodes in front that rebuild the
    fp32 tensor: fp16 + Cast (half the bytes), or int8 + Cast + Mul by a per-row scale (a quarter) for tensors on
    the int8 grid. ONNX Runtime folds these constant nodes once at session start, so inference runs in fp32."""
    from onnx import TensorProto, helper, numpy_helper

    if check_format(weights) == "fp32":
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
            deq = name + "__deq"
            pre.append(helper.make_node("Cast", [name + "__int8"], [deq], to=TensorProto.FLOAT, name=name + "__cast"))
            pre.append(helper.make_node("Mul", [deq, name + "__scale"], [name], name=name + "__mul"))
        else:
            init.CopyFrom(numpy_helper.from_array(arr.astype("float16"), name + "__fp16"))
            pre.append(helper.make_node("Cast", [name + "__fp16"], [name], to=TensorProto.FLOAT, name=name + "__cast"))
    nodes = pre + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)


def store(model, weights: str) -> None:
    """An exported ONNX model's weights in the chosen format; int8 files also get the exact integer matrix product
    for one or two images through their large FC weights (``int8_matmul.add_int8_matmul``)."""
    store_weights(model, weights)
    if weights == "int8":
        add_int8_matmul(model)
