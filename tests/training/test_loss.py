import torch

from training.latent import mnist_spec
from training.loss import InfoGANLoss
from training.networks import build_networks


def _nets():
    torch.manual_seed(0)
    return build_networks(mnist_spec(), arch="mnist", channels=1, resolution=28, fc=32, ch=8)


def _flat(grads, params=None) -> torch.Tensor:
    """Gradients as one vector; a parameter the graph never reached (None, with allow_unused) counts as zeros."""
    params = params or [None] * len(grads)
    flat = [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params, strict=True)]
    return torch.cat(flat)


def test_information_term_reaches_the_shared_trunk_through_the_loss_in_the_d_phase():
    """The known defect of popular ports: Q's loss never updates the shared trunk (Q reads detached features).

    The trunk's gradient of ``InfoGANLoss.discriminator_step`` is compared under two information weights: without
    the term reaching the trunk both would be the GAN term's alone, equal. (lambda = 0 cannot serve as "without": in
    the D phase Q, and the trunk under it, still learn to read c with weight 1, so the lambda = 0 baseline's L_I can
    be measured.) The difference must be the term's own trunk gradient, times the weight's change, and material
    against the GAN term's."""
    G, D = _nets()
    spec = G.spec
    z, c = spec.sample(64)
    fake = G(z, c).detach()
    real = torch.rand(64, 1, 28, 28) * 2 - 1
    trunk = list(D.trunk.parameters())

    def trunk_grad(lam):
        out = InfoGANLoss(spec, lambda_categorical=lam, lambda_continuous=lam).discriminator_step(D, real, fake, c)
        return _flat(torch.autograd.grad(out.loss, trunk))

    low, high = trunk_grad(1.0), trunk_grad(3.0)
    (_, _), (_, q_fake) = D(real, fake)  # the information term alone, on the same batch
    info = _flat(torch.autograd.grad(sum(spec.info_losses(c, q_fake).values()), trunk, allow_unused=True), trunk)
    assert (high - low).norm() > 0.05 * low.norm(), "the information term does not reach the trunk"
    assert torch.allclose(high - low, 2 * info, rtol=1e-3, atol=1e-4 * float(info.abs().max()))
    q_grad = torch.autograd.grad(
        InfoGANLoss(spec).discriminator_step(D, real, fake, c).loss, list(D.q_head.parameters())
    )
    assert _flat(q_grad).abs().sum() > 0


def test_generator_phase_gets_the_information_term_unless_lambda_is_zero():
    G, D = _nets()
    spec = G.spec
    z, c = spec.sample(16)

    def g_grad(lam):
        fake = G(z, c)
        out = InfoGANLoss(spec, lambda_categorical=lam, lambda_continuous=lam).generator_step(D, fake, c)
        return torch.cat([g.flatten() for g in torch.autograd.grad(out.loss, list(G.parameters()))])

    gan_only = g_grad(0.0)
    with_info = g_grad(1.0)
    assert not torch.allclose(gan_only, with_info)


def test_lambda_zero_still_trains_q_in_the_d_phase():
    G, D = _nets()
    spec = G.spec
    z, c = spec.sample(8)
    loss = InfoGANLoss(spec, lambda_categorical=0.0, lambda_continuous=0.0)
    out = loss.discriminator_step(D, torch.zeros(8, 1, 28, 28), G(z, c), c)
    grads = torch.autograd.grad(out.loss, list(D.q_head.parameters()))
    assert any(g.abs().sum() > 0 for g in grads)
    assert set(out.stats) >= {"L_I/digit", "L_I/c1", "L_I/c2", "loss_D"}


def test_each_code_takes_the_lambda_its_part_names():
    """loss.lambda_categorical / lambda_continuous reach the codes through the parts (no branch on a code's kind)."""
    loss = InfoGANLoss(mnist_spec(), lambda_categorical=1.0, lambda_continuous=0.1)
    assert loss.weights == {"digit": 1.0, "c1": 0.1, "c2": 0.1} and loss.invariant == set()
