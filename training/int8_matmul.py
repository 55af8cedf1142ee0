"""An exact integer matrix product for small batches through the large int8-stored FC layers of an ONNX graph.

With ``--weights int8`` the export stores each large FC weight as int8 ``q`` (out, in) and a per-row fp32 scale
``s`` and rebuilds ``W = q * s`` in fp32 with constant nodes, which ONNX Runtime folds at session start, so
inference reads 4 bytes per weight. For one image that matrix-vector product is memory-bound: the paper's MNIST
generator streams its 6272 x 1024 layer (26 MB in fp32) per image, which on a 2-core AVX2 VM takes ~1 ms back to
back and ~2 ms inside the service (its own inference histogram), where other work runs between images and the
weights do not stay in the 32 MB L3. Reading the int8 weights instead is 4x fewer bytes, but ONNX Runtime's CPU
kernels that take int8 weights either quantise the activations (an error of ~1/254 of each row's range; pixels move
by up to 0.016) or run 10-20x slower in fp32 (``MatMulNBits`` with ``accuracy_level`` 0/1 on this CPU).

So this writes the activations as base-128 digits and multiplies the digits by ``q`` in exact integer arithmetic
(standard ``MatMulInteger``). For a non-negative input (the output of a Relu: the generator's FC 1024 -> 7x7x128):

    x_m >= 0 (one input row), a_m = max(x_m) / 127, u = x_m / a_m in [0, 127]
    u = d0 + d1 / 128 + d2 / 128^2 + d3 / 128^3 + r,  d_k = floor(128^k * frac) in 0..127,  r < 128^-3
    y_m = a_m * s * sum_k 128^-k (d_k @ q^T) + bias

Any other input (the recognizer's FC 7x7x128 -> 1024 reads a LeakyReLU) is split as x = relu(x) - relu(-x) and
both parts are digitised: eight digit rows per image instead of four, still one read of the weights.

Every step but the final fp32 combination is exact: floor, the fractional part and the multiplication by 128 are
exact in fp32; ``d_k @ q^T`` accumulates in int32 (|sum| <= 127 * 127 * in < 2^24 for in <= 1040, so the int32 ->
fp32 cast is exact too); the truncation r is 128^-3 / 127 < 4e-9 of the row's maximum, below fp32's 6e-8. The
result agrees with the fp32 ``Gemm`` to fp32 rounding (tests/training/test_export.py; against an fp64 product, on
64 random rows of a 6272 x 1024 layer, the largest error was 1.6e-5 here and 3.6e-5 for the fp32 ``Gemm``, on
outputs up to 127). Digits are 7-bit because AVX2's u8 x s8 multiply-add (``vpmaddubsw``)
saturates a pair sum at 32767: 2 * 127 * 127 = 32258 fits, 2 * 255 * 127 would not.

The four digit rows of each image go through ``MatMulInteger`` together, so the int8 weights are read once per
batch. That wins only for small batches (MLAS' u8 x s8 GEMM on AVX2 does no more multiply-adds per cycle than its
fp32 GEMM, and this path does 4 rows per image): an ``If`` on the batch size takes the integer path up to
``max_rows`` rows and the unchanged fp32 ``Gemm`` above. Measured on the 2-core AVX2 VM, the paper's MNIST
generator, whole ``run()`` medians (``python benchmarks/int8_matmul.py``): one image 1.37-1.50 -> 0.78-0.86 ms back
to back, 1.89-1.96 -> 1.33-1.36 ms after 2 ms of other work; two images x1.4-1.6; four x0.86-1.16, so the
threshold is 2. In the service, sequential one-image /generate p50 went from 5.59 to 5.00 ms (two servers
interleaved in one run). On a CUDA session ONNX Runtime's MatMulInteger kernel takes int8 x int8 only, so this
uint8 x int8 node runs on the CPU there (4 or 8 digit rows in, as many int32 rows back per image); not measured
(no GPU).
"""

from __future__ import annotations

import numpy as np

DIGITS = 4  # base-128 digits per activation: 28 bits, past fp32's 24-bit mantissa
MAX_ROWS = 2  # batch sizes up to this take the integer path (on the AVX2 VM it wins at 1-2 rows, ties at 4)
# Smaller layers keep only the fp32 Gemm (the paper's first FC, 74 x 1024, and Q's FC128): their fp32 weights (under
# 4 MB) can stay in cache, leaving the ~20 small nodes of the digit path little to save (not measured separately).
MIN_ELEMENTS = 1 << 20


def threshold_name(weight: str) -> str:
    """The int64 initializer holding the batch-size threshold of ``weight``'s If (``set_max_rows`` rewrites it)."""
    return f"{weight}__i8_max_rows"


def set_max_rows(model, max_rows: int) -> int:
    """Set every rewritten layer's threshold in place (0: every batch takes the fp32 Gemm); returns how many."""
    from onnx import numpy_helper

    names = {threshold_name(w) for w in rewritten_layers(model)}
    for init in model.graph.initializer:
        if init.name in names:
            init.CopyFrom(numpy_helper.from_array(np.array([max_rows], np.int64), init.name))
    return len(names)


def rewritten_layers(model) -> list[str]:
    """Weights whose Gemm ``add_int8_matmul`` replaced by an If (from the If nodes' names)."""
    return [n.name[: -len("__i8_if")] for n in model.graph.node if n.op_type == "If" and n.name.endswith("__i8_if")]


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def add_int8_matmul(model, max_rows: int = MAX_ROWS, min_elements: int | None = None) -> list[str]:
    """Rewrite, in place, every ``Gemm(x, W)`` whose W (at least ``min_elements`` values, default MIN_ELEMENTS) is
    rebuilt from an int8 initializer (``<W>__int8``, ``<W>__scale``, as ``weight_storage.store_weights`` writes
    them) into
    ``If(rows <= max_rows, integer path, Gemm)``. An x that comes from a Relu is digitised as it is; any other x
    (the recognizer's LeakyReLU) as its positive and negative parts, ``x = relu(x) - relu(-x)``, twice the digit
    rows through the same single read of the weights. Returns the rewritten weights' names."""
    from onnx import TensorProto, helper, numpy_helper

    min_elements = MIN_ELEMENTS if min_elements is None else min_elements
    g = model.graph
    producer = {o: n for n in g.node for o in n.output}
    inits = {i.name: i for i in g.initializer}
    nodes, added, done = [], [], []

    def const(name: str, value) -> str:
        added.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    for n in g.node:
        at = _attrs(n)
        w = n.input[1] if len(n.input) == 3 else ""
        q = inits.get(f"{w}__int8")
        if not (
            n.op_type == "Gemm"
            and at.get("transB") == 1
            and not at.get("transA", 0)
            and at.get("alpha", 1.0) == 1.0
            and at.get("beta", 1.0) == 1.0
            and q is not None
            and f"{w}__scale" in inits
            and int(np.prod(q.dims)) >= min_elements
        ):
            nodes.append(n)
            continue
        x, _, bias = n.input
        signed = getattr(producer.get(x), "op_type", None) != "Relu"
        out_dim, in_dim = (int(d) for d in q.dims)
        p = f"{w}__i8"
        # outer graph (constant-folded once): q^T (in, out) for MatMulInteger, the scale as a row; the condition
        nodes += [
            helper.make_node("Transpose", [f"{w}__int8"], [p + "_qT"], perm=[1, 0], name=p + "_qT"),
            helper.make_node("Transpose", [f"{w}__scale"], [p + "_s"], perm=[1, 0], name=p + "_s"),
            helper.make_node("Shape", [x], [p + "_rows"], start=0, end=1, name=p + "_rows"),
            helper.make_node(
                "LessOrEqual",
                [p + "_rows", const(threshold_name(w), np.array([max_rows], np.int64))],
                [p + "_small"],
                name=p + "_small",
            ),
        ]
        c127 = const(p + "_127", np.float32(127.0))
        c128 = const(p + "_128", np.float32(128.0))
        tiny = const(p + "_tiny", np.float32(1e-30))  # an all-zero row: u = 0 rather than 0 / 0
        place = const(
            p + "_place", (128.0 ** -np.arange(DIGITS, dtype=np.float64)).astype(np.float32).reshape(1, DIGITS, 1)
        )
        rows_k = const(p + "_rows_k", np.array([-1, in_dim], np.int64))
        rows_dn = const(p + "_rows_dn", np.array([-1, DIGITS, out_dim], np.int64))
        axis1 = const(p + "_axis1", np.array([1], np.int64))
        t, h = [], x
        if signed:  # (2M, in): the positive parts of the M rows, then their negative parts
            t += [
                helper.make_node("Relu", [x], [p + "pos"]),
                helper.make_node("Neg", [x], [p + "negx"]),
                helper.make_node("Relu", [p + "negx"], [p + "neg"]),
                helper.make_node("Concat", [p + "pos", p + "neg"], [p + "h"], axis=0),
            ]
            h = p + "h"
        t += [
            helper.make_node("ReduceMax", [h], [p + "max0"], axes=[1], keepdims=1),
            helper.make_node("Max", [p + "max0", tiny], [p + "max"]),
            helper.make_node("Div", [p + "max", c127], [p + "a"]),  # per-row step
            helper.make_node("Div", [h, p + "a"], [p + "u_raw"]),
            helper.make_node("Min", [p + "u_raw", c127], [p + "u0"]),
        ]  # in [0, 127]
        for k in range(DIGITS):
            t.append(helper.make_node("Floor", [p + f"u{k}"], [p + f"d{k}"]))
            if k < DIGITS - 1:
                t += [
                    helper.make_node("Sub", [p + f"u{k}", p + f"d{k}"], [p + f"f{k}"]),
                    helper.make_node("Mul", [p + f"f{k}", c128], [p + f"u{k + 1}"]),
                ]
        t += [
            helper.make_node("Concat", [p + f"d{k}" for k in range(DIGITS)], [p + "digits"], axis=1),
            helper.make_node("Reshape", [p + "digits", rows_k], [p + "digit_rows"]),  # row DIGITS*m + k = d_k(h_m)
            helper.make_node("Cast", [p + "digit_rows"], [p + "A"], to=TensorProto.UINT8),
            helper.make_node("MatMulInteger", [p + "A", p + "_qT"], [p + "acc"]),  # (DIGITS*rows, out) int32
            helper.make_node("Cast", [p + "acc"], [p + "acc_f"], to=TensorProto.FLOAT),
            helper.make_node("Reshape", [p + "acc_f", rows_dn], [p + "acc_3"]),
            helper.make_node("Mul", [p + "acc_3", place], [p + "acc_w"]),
            helper.make_node("ReduceSum", [p + "acc_w", axis1], [p + "sum"], keepdims=0),
            helper.make_node("Mul", [p + "sum", p + "a"], [p + "hq"]),
        ]  # h @ q^T
        if signed:
            t += [
                helper.make_node("Split", [p + "hq"], [p + "hq_pos", p + "hq_neg"], axis=0),
                helper.make_node("Sub", [p + "hq_pos", p + "hq_neg"], [p + "xq"]),
            ]
        t += [
            helper.make_node("Mul", [p + ("xq" if signed else "hq"), p + "_s"], [p + "y_s"]),
            helper.make_node("Add", [p + "y_s", bias], [p + "y_int"]),
        ]
        then_g = helper.make_graph(
            t, p + "_int", [], [helper.make_tensor_value_info(p + "y_int", TensorProto.FLOAT, None)]
        )
        gemm = helper.make_node("Gemm", [x, w, bias], [p + "y_fp32"], transB=1, name=p + "_gemm")
        else_g = helper.make_graph(
            [gemm], p + "_fp32", [], [helper.make_tensor_value_info(p + "y_fp32", TensorProto.FLOAT, None)]
        )
        nodes.append(
            helper.make_node(
                "If", [p + "_small"], list(n.output), then_branch=then_g, else_branch=else_g, name=p + "_if"
            )
        )
        done.append(w)
    if done:
        del g.node[:]
        g.node.extend(nodes)
        g.initializer.extend(added)
    return done
