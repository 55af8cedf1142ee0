"""Image generation from the prior, with some codes fixed (/generate) or one code swept (/traverse, Fig. 2)."""

from __future__ import annotations

import secrets

import numpy as np
from fastapi import APIRouter, Response

from spec.latent import LatentSpec

from ...core.images import pngs_base64
from ...schemas import Error, GenerateRequest, GenerateResponse, TraverseRequest, TraverseResponse
from ..deps import RegistryDep, resolve_model
from ..responses import json_body, json_response, validated_json

router = APIRouter(tags=["generate"])

ERRORS = {
    404: {"model": Error, "description": "unknown model"},
    408: {"model": Error, "description": "the body did not arrive in time (api/limits.py)"},
    413: {"model": Error, "description": "a body over the JSON size limit (api/limits.py)"},
    415: {"model": Error, "description": "a content type other than application/json"},
    422: {"model": Error, "description": "a value that does not fit the model's spec"},
    503: {"model": Error, "description": "models still loading"},
}


def fresh_seed() -> int:
    # below 2**53 so the page's JavaScript numbers hold it exactly and can send it back
    return secrets.randbits(53)


def draw(spec: LatentSpec, n: int, seed: int, given: dict[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Prior draw of z and every code, then the given codes overwritten: the draw never depends on which codes
    are given, so with one seed a fixed code changes nothing else."""
    z, values = spec.sample_seeded(seed, n)
    for name, v in given.items():
        values[name] = np.full(n, v, dtype=np.float64)
    return z, values


@router.post("/generate", response_model=GenerateResponse, responses=ERRORS)
async def generate(req: GenerateRequest, registry: RegistryDep) -> Response:
    """n images from the prior; `codes` fixes some codes for all of them, `z` fixes the noise."""
    # async: the checks run on the event loop (microseconds); drawing, the model run, PNG and JSON run in the
    # model's batch thread (Model.generate_async), shared with the concurrent requests: one thread hop per batch,
    # not a thread-pool hop and a blocked thread per request
    model = resolve_model(registry, req.model)
    spec = model.spec
    given = spec.check_codes(req.codes)
    fixed_z = None if req.z is None else spec.noise.check(req.z, req.n)
    drawn: dict = {}

    def prepare() -> tuple[np.ndarray, np.ndarray]:
        # a fresh seed reads os.urandom (a system call): here, not on the loop
        seed = fresh_seed() if req.seed is None else req.seed
        z, values = draw(spec, req.n, seed, given)
        if fixed_z is not None:
            z = fixed_z
        drawn.update(seed=seed, z=z, values=values)
        return z, spec.encode_np(values)

    def finish(images: np.ndarray) -> bytes:
        return json_body(
            GenerateResponse,
            {
                "model": model.id,
                "seed": drawn["seed"],
                "images": pngs_base64(images),
                "z": drawn["z"].tolist(),
                "codes": spec.rows(drawn["values"]),
            },
        )

    return json_response(await model.generate_async(req.n, prepare, finish))


@router.post("/traverse", response_model=TraverseResponse, responses=ERRORS)
def traverse(req: TraverseRequest, registry: RegistryDep) -> Response:
    """A rows x cols grid: each row one prior sample, each column one value of `code` (all K for a categorical)."""
    model = resolve_model(registry, req.model)
    spec = model.spec
    code = spec.code(req.code, "code")
    given = spec.check_codes(req.codes)
    sweep = code.sweep(req.low, req.high, req.cols)
    cols = len(sweep)
    seed = fresh_seed() if req.seed is None else req.seed
    z, values = draw(spec, req.rows, seed, given)
    # row-major grid: row r repeats sample r across the columns
    z = np.repeat(z, cols, axis=0)
    values = {name: np.repeat(v, cols) for name, v in values.items()}
    values[code.name] = np.tile(np.asarray(sweep, dtype=np.float64), req.rows)
    images = model.generate(z, spec.encode_np(values))
    return validated_json(
        TraverseResponse,
        {
            "model": model.id,
            "code": code.name,
            "rows": req.rows,
            "cols": cols,
            "values": [code.output(v) for v in sweep],
            "images": pngs_base64(images),
            "seed": seed,
        },
    )
