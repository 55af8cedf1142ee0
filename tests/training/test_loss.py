import pytest
import torch

from training.config import load_config
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


# ---- the contrastive regularizer (InfoGAN-CR) --------------------------------------------------------------------


def _cr_nets():
    torch.manual_seed(0)
    spec = load_config("dsprites").spec
    G, D = build_networks(spec, arch="dsprites", channels=1, resolution=64, cr_codes=len(spec.codes))
    return spec, G, D


def _pair(spec, G, n=16):
    z, c1, c2, k = spec.shared_code_pairs(n, torch.Generator().manual_seed(1))
    return torch.cat([G(z, c1), G(z, c2)], dim=1), k


def test_shared_code_pairs_share_the_noise_and_exactly_one_code():
    spec = _cr_nets()[0]
    z, c1, c2, k = spec.shared_code_pairs(500, torch.Generator().manual_seed(0))
    same = c1 == c2
    assert same.sum(1).eq(1).all()  # one code the same (the others uniform draws: equal with probability 0)
    assert torch.equal(same.float().argmax(1), k)
    assert set(k.tolist()) == set(range(len(spec.codes)))
    assert z.shape == (500, spec.noise.dim)


def test_pairs_with_differ_always_cross_the_categorical_code_unless_they_share_it():
    """loss.cr_differ = "style": a pair that shares a continuous code has two different styles (InfoGAN-CR's fresh
    draw gives the same style 1/4 of the time), a pair that shares the style has one; every pair still shares
    exactly one code, and without the option the pairs are the same draws as before."""
    spec = load_config("chairs3d").spec
    decode = spec.decode  # (N, c_dim) -> {name: values}
    z, c1, c2, k = spec.shared_code_pairs(2000, torch.Generator().manual_seed(0), differ="style")
    s1, s2 = decode(c1)["style"], decode(c2)["style"]
    shares_style = k == 0
    assert torch.equal(s1[shares_style], s2[shares_style])
    assert bool((s1[~shares_style] != s2[~shares_style]).all())
    assert set((s2 - s1).remainder(4)[~shares_style].tolist()) == {1, 2, 3}
    for i, code in enumerate(spec.codes[1:], start=1):
        same = decode(c1)[code.name] == decode(c2)[code.name]
        assert torch.equal(same, k == i)
    plain = spec.shared_code_pairs(2000, torch.Generator().manual_seed(0))
    assert (decode(plain[1])["style"] == decode(plain[2])["style"])[plain[3] != 0].float().mean().item() > 0.2


@pytest.mark.parametrize("name", ["c1", "nope", "size"])
def test_cr_differ_must_name_a_categorical_code(name):
    with pytest.raises(ValueError, match="loss.cr_differ must name a categorical code"):
        load_config("chairs3d", [f'loss.cr_differ="{name}"'])


def test_cr_head_learns_in_the_d_phase_only_from_its_own_cross_entropy():
    """The D phase with a pair adds the CR head's cross-entropy (weight 1, InfoGAN-CR's crd_loss); the trunk, D's and
    Q's heads get exactly the gradients they got without it, and the head gets a gradient."""
    spec, G, D = _cr_nets()
    z, c = spec.sample(16)
    fake = G(z, c).detach()
    real = torch.rand(16, 1, 64, 64) * 2 - 1
    pair, k = _pair(spec, G)
    loss = InfoGANLoss(spec, lambda_continuous=0.05)
    D.eval()  # the spectral norm's power iteration moves with each training forward: compare in eval mode
    with_cr = loss.discriminator_step(D, real, fake, c, pair, k)
    plain = loss.discriminator_step(D, real, fake, c)
    assert 0 < float(with_cr.stats["loss_CR"]) and 0 <= float(with_cr.stats["CR_acc"]) <= 1
    assert float((with_cr.loss - plain.loss).detach()) == pytest.approx(float(with_cr.stats["loss_CR"]), rel=1e-4)
    others = [p for n, p in D.named_parameters() if not n.startswith("cr_head")]
    g_cr = _flat(
        torch.autograd.grad(loss.discriminator_step(D, real, fake, c, pair, k).loss, others, allow_unused=True), others
    )
    g_plain = _flat(
        torch.autograd.grad(loss.discriminator_step(D, real, fake, c).loss, others, allow_unused=True), others
    )
    assert torch.allclose(g_cr, g_plain, atol=1e-6)
    head = list(D.cr_head.parameters())
    assert _flat(torch.autograd.grad(loss.discriminator_step(D, real, fake, c, pair, k).loss, head)).abs().sum() > 0


def test_generator_loss_adds_cr_weight_times_the_heads_cross_entropy():
    """G's loss = GAN + info + cr_weight x CE(CR head(pair), shared code) (InfoGAN-CR's de_loss), so G's gradient
    moves linearly with the weight and the pair's images get a gradient; weight 0 or no pair = the InfoGAN loss."""
    spec, G, D = _cr_nets()
    D.eval()
    D.requires_grad_(False)
    z, c = spec.sample(16)
    loss = InfoGANLoss(spec, lambda_continuous=0.05)
    params = list(G.parameters())

    def g_grad(weight, with_pair=True):
        torch.manual_seed(3)
        fake = G(z, c)
        pair, k = _pair(spec, G)
        out = loss.generator_step(D, fake, c, pair if with_pair else None, k, weight)
        return _flat(torch.autograd.grad(out.loss, params, allow_unused=True), params), out

    g0, out0 = g_grad(0.0)
    g1, out1 = g_grad(1.0)
    g3, _ = g_grad(3.0)
    g_none, _ = g_grad(2.0, with_pair=False)
    assert torch.allclose(g0, g_none, atol=1e-7)
    assert (g1 - g0).norm() > 1e-3 * g0.norm()
    assert torch.allclose(g3 - g0, 3 * (g1 - g0), rtol=1e-3, atol=1e-6 * float((g1 - g0).abs().max()) + 1e-9)
    assert float((out1.loss - out0.loss).detach()) == pytest.approx(float(out1.stats["loss_G_cr"]), rel=1e-4)


def test_cr_schedule_switches_at_late_from_images():
    from training.loss import CRSchedule

    s = CRSchedule(0.0, 2.0, 1000)
    assert [s.weight(i) for i in (0, 999, 1000, 10**9)] == [0.0, 0.0, 2.0, 2.0]
    assert CRSchedule(0.5).weight(10**9) == 0.5 and CRSchedule(0.5).used
    assert not CRSchedule().used and CRSchedule(0.0, 2.0, 5).used


def test_real_information_is_the_label_free_score_of_the_batch():
    from training.evaluate import label_free_score
    from training.loss import real_information

    confident_balanced = torch.eye(4).repeat(8, 1) * 50.0
    assert float(real_information(confident_balanced)) == pytest.approx(float(torch.log(torch.tensor(4.0))))
    assert float(real_information(torch.zeros(16, 4))) == pytest.approx(0.0, abs=1e-7)  # undecided
    assert float(real_information(torch.tensor([[50.0, 0, 0, 0]] * 16))) == pytest.approx(0.0, abs=1e-6)  # one
    logits = torch.randn(64, 10, generator=torch.Generator().manual_seed(0)) * 3
    assert float(real_information(logits)) == pytest.approx(label_free_score(logits), rel=1e-5)


def test_lambda_real_subtracts_q_s_information_on_real_images_in_the_d_phase_only():
    """loss.lambda_real: the D phase's loss is the paper's minus lambda_real x I(category; real x); its gradient reaches
    Q's head and the trunk; 0 leaves the D and G phases exactly as they were."""
    from training.loss import real_information

    G, D = _nets()
    spec = G.spec
    z, c = spec.sample(64)
    fake = G(z, c)
    real = torch.rand(64, 1, 28, 28) * 2 - 1
    plain = InfoGANLoss(spec).discriminator_step(D, real, fake, c)
    with_term = InfoGANLoss(spec, lambda_real=2.0).discriminator_step(D, real, fake, c)
    (_, q_real), _ = D(real, fake.detach())
    mi = real_information(q_real[:, :10].float())
    assert float(with_term.loss) == pytest.approx(float(plain.loss - 2.0 * mi), rel=1e-5)
    assert float(with_term.stats["I_real/digit"]) == pytest.approx(float(mi), rel=1e-5)
    assert "I_real/digit" not in plain.stats and not any(k.startswith("I_real/c") for k in with_term.stats)
    head = list(D.q_head.parameters())
    diff = _flat(torch.autograd.grad(with_term.loss, head)) - _flat(torch.autograd.grad(plain.loss, head))
    assert diff.abs().sum() > 0
    # the G phase does not see it
    g_plain = InfoGANLoss(spec).generator_step(D, fake, c).loss
    g_with = InfoGANLoss(spec, lambda_real=2.0).generator_step(D, fake, c).loss
    assert float(g_plain) == float(g_with)


def test_paired_information_rewards_only_groups_the_transform_keeps():
    """IIC's I(q(x); q(T x)): ln K for K confident, equally used groups that T keeps; 0 when T's groups are
    independent of x's (a partition the transform destroys), when Q is undecided, or when one group takes all."""
    from training.loss import paired_information

    k = 4
    labels = torch.arange(64) % k
    confident = torch.nn.functional.one_hot(labels, k).float() * 50
    ln_k = float(torch.log(torch.tensor(float(k))))
    assert float(paired_information(confident, confident)) == pytest.approx(ln_k, rel=1e-5)
    # the transformed copy lands in a group independent of the original's: balanced and confident, yet nothing shared
    shuffled = torch.nn.functional.one_hot((labels + torch.arange(64) // k) % k, k).float() * 50
    assert float(paired_information(confident, shuffled)) == pytest.approx(0.0, abs=1e-5)
    assert float(paired_information(torch.zeros(64, k), torch.zeros(64, k))) == pytest.approx(0.0, abs=1e-6)
    one = torch.tensor([[50.0, 0, 0, 0]] * 64)
    assert float(paired_information(one, one)) == pytest.approx(0.0, abs=1e-5)
    torch.manual_seed(0)
    a, b = torch.randn(64, k) * 3, torch.randn(64, k) * 3
    mi = float(paired_information(a, b))
    assert 0.0 <= mi <= ln_k and mi == pytest.approx(float(paired_information(b, a)), rel=1e-5)


def test_lambda_real_pair_subtracts_iic_information_of_real_and_transformed_real_in_the_d_phase_only():
    """loss.lambda_real_pair: the D phase's loss is the paper's minus lambda x I(q(real); q(T real)), T the invariance
    transform (here a deterministic flip, so both sides see the same T); the gradient reaches Q's head; the fakes' terms
    are unchanged; the G phase does not see it; without an invariance the option is refused."""
    from training.loss import paired_information

    G, D = _nets()
    spec = G.spec
    z, c = spec.sample(64)
    fake = G(z, c)
    real = torch.rand(64, 1, 28, 28) * 2 - 1

    def flip(x):
        return x.flip(3)

    plain = InfoGANLoss(spec, invariance=flip).discriminator_step(D, real, fake, c)
    with_term = InfoGANLoss(spec, invariance=flip, lambda_real_pair=2.0).discriminator_step(D, real, fake, c)
    (_, q_real), (_, q_flip) = D(real, flip(real))
    mi = paired_information(q_real[:, :10].float(), q_flip[:, :10].float())
    assert float(with_term.loss) == pytest.approx(float(plain.loss - 2.0 * mi), rel=1e-5)
    assert float(with_term.stats["I_pair/digit"]) == pytest.approx(float(mi), rel=1e-5)
    assert "I_pair/digit" not in plain.stats and not any(k.startswith("I_pair/c") for k in with_term.stats)
    for key in ("L_I/digit", "L_I/c1", "loss_D", "D_real", "D_fake"):  # the real copy shifts no other term
        assert float(with_term.stats[key]) == pytest.approx(float(plain.stats[key]), rel=1e-6), key
    head = list(D.q_head.parameters())
    diff = _flat(torch.autograd.grad(with_term.loss, head)) - _flat(torch.autograd.grad(plain.loss, head))
    assert diff.abs().sum() > 0
    g_plain = InfoGANLoss(spec, invariance=flip).generator_step(D, fake, c).loss
    g_with = InfoGANLoss(spec, invariance=flip, lambda_real_pair=2.0).generator_step(D, fake, c).loss
    assert float(g_plain) == float(g_with)
    with pytest.raises(ValueError, match="needs loss.invariance"):
        InfoGANLoss(spec, lambda_real_pair=1.0)
