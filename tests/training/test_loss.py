import torch

from training.latent import mnist_spec
from training.loss import InfoGANLoss
from training.networks import build_networks


def _nets():
    torch.manual_seed(0)
    return build_networks(mnist_spec(), arch="mnist", channels=1, resolution=28, fc=32, ch=8)


def test_information_gradient_reaches_trunk_and_q_head_in_the_d_phase():
    """The known defect of popular ports: Q's loss never updates the shared trunk. Here it must."""
    G, D = _nets()
    spec = G.spec
    loss = InfoGANLoss(spec)
    z, c = spec.sample(16)
    fake = G(z, c)
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    with_info = loss.discriminator_step(D, real, fake, c).loss
    trunk_grad = torch.autograd.grad(with_info, list(D.trunk.parameters()), retain_graph=True)
    q_grad = torch.autograd.grad(with_info, list(D.q_head.parameters()))
    # isolate the information term: its gradient on the trunk is non-zero
    (_, _), (_, q_fake) = D(real, fake.detach())
    info = sum(spec.info_losses(c, q_fake).values())
    info_trunk = torch.autograd.grad(info, list(D.trunk.parameters()))
    assert any(g.abs().sum() > 0 for g in info_trunk)
    assert all(g is not None for g in trunk_grad) and any(g.abs().sum() > 0 for g in q_grad)


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
    out = InfoGANLoss(spec, lambda_categorical=0.0, lambda_continuous=0.0).discriminator_step(D, torch.zeros(8, 1, 28, 28), G(z, c), c)
    grads = torch.autograd.grad(out.loss, list(D.q_head.parameters()))
    assert any(g.abs().sum() > 0 for g in grads)
    assert set(out.stats) >= {"L_I/digit", "L_I/c1", "L_I/c2", "loss_D"}
