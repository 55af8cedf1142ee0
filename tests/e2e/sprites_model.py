"""A tiny untrained 64x64 model on InfoGAN-CR's dSprites networks, with a made-up ``disentanglement`` block in its
manifest's metrics (the shape ``training/disentanglement.py`` writes), served beside the tiny MNIST models so the
browser tests see a model with ground-truth metrics and one without."""

from __future__ import annotations

from pathlib import Path

SPRITES_ID = "tiny-sprites"
SPRITES_BASELINE_ID = "tiny-sprites-gan"
SCORES = {"factor_vae": 0.713, "mig": 0.287, "sap": 0.052}
BASELINE_SCORES = {"factor_vae": 0.471, "mig": 0.094, "sap": 0.011}
SPRITES_FACTORS = ["shape", "scale", "orientation", "posX", "posY"]
SPRITES_CODES = ["c1", "c2", "c3", "c4", "c5"]
# c3 carries a label in the manifest: the page must show the label, not the best factor, beside its slider
SPRITES_LABELS = {"c3": "turn"}
# codes x factors, nats; one undefined entry (JSON null: a factor with zero entropy) the page must survive
SPRITES_MI = [
    [0.02, 0.05, 0.01, 2.10, 0.03],
    [0.01, 0.03, 0.02, 0.04, 1.95],
    [0.30, 0.02, 1.20, 0.01, 0.02],
    [0.04, 1.10, 0.03, 0.02, None],
    [0.01, 0.02, 0.02, 0.03, 0.01],
]
SPRITES_BEST = {"c1": "posX", "c2": "posY", "c3": "orientation", "c4": "scale", "c5": "shape"}


def disentanglement_block(scores: dict[str, float]) -> dict:
    entropy = {"shape": 1.0986, "scale": 1.7918, "orientation": 3.6889, "posX": 3.4657, "posY": 3.4657}
    best = {}
    for i, code in enumerate(SPRITES_CODES):
        f = SPRITES_BEST[code]
        mi = SPRITES_MI[i][SPRITES_FACTORS.index(f)]
        best[code] = {"factor": f, "mi": mi, "normalised_mi": round(mi / entropy[f], 4)}
    return {
        "factors": SPRITES_FACTORS,
        "codes": SPRITES_CODES,
        "factor_vae": {"score": scores["factor_vae"], "eval_accuracy": scores["factor_vae"], "num_active_codes": 5},
        "mig": {"score": scores["mig"], "per_factor": dict.fromkeys(SPRITES_FACTORS, scores["mig"])},
        "dci": {
            "disentanglement": 0.41,
            "completeness": 0.44,
            "informativeness_train": 0.9,
            "informativeness_test": 0.84,
        },
        "sap": {"score": scores["sap"]},
        "mi_matrix": SPRITES_MI,
        "factor_entropy": entropy,
        "best_factor": best,
    }


def build_sprites_model(
    folder: Path,
    model_id: str,
    seed: int,
    title: str = "Tiny sprites",
    compare_with: str | None = None,
    scores: dict[str, float] = SCORES,
) -> Path:
    """Export the model through the real export path (fc=16, ch=4: a few hundred KB of ONNX)."""
    import torch

    from training.export import write_model_folder
    from training.latent import Continuous, LatentSpec, Noise
    from training.networks import bake_spectral_norm, build_networks

    torch.manual_seed(seed)
    spec = LatentSpec(Noise(5, "uniform"), tuple(Continuous(c, label=SPRITES_LABELS.get(c)) for c in SPRITES_CODES))
    G, D = build_networks(spec, arch="dsprites", channels=1, resolution=64, fc=16, ch=4)
    bake_spectral_norm(D)  # plain weights for ONNX, as training/checkpoint.py does before an export
    return write_model_folder(
        G.eval(),
        D.eval(),
        spec,
        folder / model_id,
        model_id=model_id,
        title=title,
        dataset="dsprites",
        drawing="light-on-dark",
        compare_with=compare_with,
        metrics={"disentanglement": disentanglement_block(scores)},
        provenance={"command": "tests/e2e/sprites_model.py build_sprites_model", "seed": seed},
    )
