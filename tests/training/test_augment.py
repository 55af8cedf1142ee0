"""The nuisance transforms behind loss.invariance: identity at zero, background kept, differentiable, validated."""

import pytest
import torch

from training.augment import NuisanceAugment
from training.config import load_config
from training.latent import mnist_spec
from training.loss import InfoGANLoss
from training.networks import build_networks


def _digits(n=8):
    g = torch.Generator().manual_seed(0)
    x = -torch.ones(n, 1, 28, 28)
    x[:, :, 8:20, 12:16] = torch.rand(n, 1, 12, 4, generator=g)  # a bright bar on the -1 background
    return x


def test_zero_ranges_are_the_identity():
    x = _digits()
    torch.manual_seed(0)
    assert torch.allclose(NuisanceAugment()(x), x, atol=1e-5)


def test_transforms_change_images_but_keep_the_background_and_range():
    x = _digits()
    torch.manual_seed(0)
    y = NuisanceAugment(rotate=15, shear=0.3, scale=0.15, translate=2)(x)
    assert y.shape == x.shape
    assert (y - x).abs().amax(dim=(1, 2, 3)).min() > 0.1  # every image moved
    assert torch.allclose(y[:, :, :2, :], torch.full_like(y[:, :, :2, :], -1.0), atol=1e-5)  # corners stay background
    assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5


def test_contrast_is_a_per_image_gain_above_the_background_after_the_same_geometry():
    x = _digits()
    torch.manual_seed(0)
    plain = NuisanceAugment(scale=0.15, translate=2)(x)
    torch.manual_seed(0)
    y = NuisanceAugment(scale=0.15, translate=2, contrast=0.5)(x)
    assert torch.allclose(y[:, :, :2, :], torch.full_like(y[:, :, :2, :], -1.0), atol=1e-5)  # background kept
    assert y.min() >= -1 - 1e-5 and y.max() <= 1 + 1e-5
    lit = (plain + 1 > 0.05) & (y + 1 < 2 - 1e-4)  # object pixels the clamp at white left alone
    gains = [((y[i] + 1)[lit[i]] / (plain[i] + 1)[lit[i]]) for i in range(len(x))]
    for g in gains:  # one gain per image, within the range
        assert g.numel() and (g.max() - g.min()) < 1e-4 and 0.5 - 1e-4 <= g.mean() <= 1.5 + 1e-4
    assert torch.tensor([g.mean() for g in gains]).std() > 0.05  # the gain differs between images
    x.requires_grad_(True)
    NuisanceAugment(contrast=0.5)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_draws_come_from_the_global_generator_so_resumes_repeat_them():
    aug = NuisanceAugment(rotate=10, translate=1)
    torch.manual_seed(3)
    a = aug(_digits())
    torch.manual_seed(3)
    assert torch.equal(a, aug(_digits()))


def test_bad_ranges_and_unknown_keys_are_refused_with_the_key_named():
    with pytest.raises(ValueError, match="rotat"):
        NuisanceAugment.from_config({"rotat": 10})
    with pytest.raises(ValueError, match="scale"):
        NuisanceAugment.from_config({"scale": 1.5})
    with pytest.raises(ValueError, match="translate"):
        NuisanceAugment.from_config({"translate": -1})
    with pytest.raises(ValueError, match="contrast"):
        NuisanceAugment.from_config({"contrast": 1.0})
    assert NuisanceAugment.from_config({}) is None
    with pytest.raises(ValueError, match="invariance"):
        load_config("mnist", ["loss.invariance={ spin = 3 }"])


def test_categorical_codes_are_read_from_the_transformed_copy_and_continuous_ones_are_not():
    torch.manual_seed(0)
    G, D = build_networks(mnist_spec(), arch="mnist", channels=1, resolution=28, fc=32, ch=8)
    for m in D.modules():  # PyTorch's default init: outputs large enough for the two reads to differ visibly
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.reset_parameters()
    spec = G.spec
    z, c = spec.sample(16)
    fake = G(z, c) + 1 + _digits(16)  # an untrained G draws a flat grey; the bars give the transforms work to do
    plain = InfoGANLoss(spec)
    inv = InfoGANLoss(spec, invariance=NuisanceAugment(rotate=15, shear=0.3, scale=0.15, translate=2))
    D.eval()  # fixed BatchNorm statistics, so passes over different batches compare like for like
    torch.manual_seed(1)
    out_inv = inv.generator_step(D, fake, c)
    torch.manual_seed(1)
    q_aug = D(inv.invariance(fake))[1]
    _, q = D(fake)
    nll, nll_aug = spec.info_losses(c, q), spec.info_losses(c, q_aug)
    gan = torch.nn.functional.binary_cross_entropy_with_logits(D(fake)[0], torch.ones(16))
    expected = gan + nll_aug["digit"] + 0.1 * (nll["c1"] + nll["c2"])
    assert torch.allclose(out_inv.loss, expected, atol=1e-5)
    assert not torch.allclose(out_inv.loss, plain.generator_step(D, fake, c).loss)
    # the D phase logs the paper's bound on untransformed images whatever the training term reads
    out_d = inv.discriminator_step(D, fake.detach(), fake, c)
    assert torch.allclose(out_d.stats["L_I/digit"], spec.code("digit").entropy() - nll["digit"], atol=1e-5)
    # and G learns through the transform
    grads = torch.autograd.grad(out_inv.loss, list(G.parameters()))
    assert all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
