"""training/networks.py: InfoGAN-CR's 64x64 dSprites networks and the contrastive regularizer's head."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from training.config import load_config
from training.loop import model_args
from training.networks import ContrastiveHead, bake_spectral_norm, build_networks, init_weights


def _dsprites(**kw):
    torch.manual_seed(0)
    spec = load_config("dsprites").spec
    return spec, *build_networks(spec, arch="dsprites", channels=1, resolution=64, **kw)


def test_dsprites_networks_have_infogan_crs_layers():
    """G: FC128, FC4x4x64, up-convolutions 64-32-32-1 to 64x64; D/Q: convolutions 32-32-64-64 (4x4, s2), FC128, no
    BatchNorm; Q head FC128 -> Q's columns (fjxmlzn/InfoGAN-CR, gan/network.py)."""
    spec, G, D = _dsprites()
    g_lin = [m.out_features for m in G.modules() if isinstance(m, nn.Linear)]
    g_up = [m.out_channels for m in G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert g_lin == [128, 4 * 4 * 64] and g_up == [64, 32, 32, 1]
    convs = [m for m in D.trunk.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert [m.out_features for m in D.trunk.modules() if isinstance(m, nn.Linear)] == [128]
    assert [m.out_features for m in D.q_head.modules() if isinstance(m, nn.Linear)] == [128, spec.q_dim]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    z, c = spec.sample(6)
    x = G(z, c)
    assert x.shape == (6, 1, 64, 64) and x.abs().max() <= 1
    d, q = D(x)
    assert d.shape == (6,) and q.shape == (6, spec.q_dim)
    with pytest.raises(ValueError, match="64x64"):
        build_networks(spec, arch="dsprites", channels=1, resolution=32)


def test_d_is_spectrally_normalised_from_its_first_forward():
    """Every D layer is spectrally normalised (InfoGAN-CR's D), on the initialised weights (N(0, 0.02)): a fresh D in
    eval mode (no power iteration per forward) already divides by the right sigma. Against registering the norm
    before init_weights (15 power iterations on PyTorch's default init, then the weight replaced), the FC layer's
    normalised weight had spectral norm 40 and the CR head's cross-entropy came out ~8e5 nats."""
    _, _, D = _dsprites()
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert layers and all(parametrize.is_parametrized(m, "weight") for m in layers)
    first = D.trunk[0].parametrizations.weight.original.detach()
    assert abs(float(first.std()) - 0.02) < 0.004
    D.eval()
    with torch.no_grad():
        for fc in (D.trunk[9], D.q_head[0], D.d_head):
            assert float(torch.linalg.matrix_norm(fc.weight, ord=2)) == pytest.approx(1.0, abs=0.05)
        assert float(torch.linalg.matrix_norm(D.trunk[9].parametrizations.weight.original, ord=2)) < 0.9


def test_cr_head_reads_pairs_and_rides_in_the_checkpoint():
    spec, G, D = _dsprites(cr_codes=5)
    assert isinstance(D.cr_head, ContrastiveHead)
    x = G(*spec.sample(4))
    pair = torch.cat([x, x], dim=1)
    (d, q), cr = D(x, pair=pair)
    assert cr.shape == (4, 5) and d.shape == (4,)
    assert D(x)[1].shape == q.shape  # no pair: (D logit, Q) as before
    # rebuilt from the same arguments, the state dict loads (what checkpoint.load_networks does)
    _, _, D2 = _dsprites(cr_codes=5)
    D2.load_state_dict(D.state_dict())
    assert _dsprites()[2].cr_head is None


@pytest.mark.parametrize(("channels", "resolution"), [(1, 28), (3, 32), (1, 48), (1, 64), (3, 64)])
def test_cr_head_reads_pairs_at_every_resolution_a_data_set_has(channels, resolution):
    """The head halves each side while it stays >= 4 px and sizes its FC from what is left: MNIST's 28 px (28 -> 14
    -> 7, no power of two) as well as 32 and 64 (-> 4, InfoGAN-CR's four layers at 64)."""
    head = ContrastiveHead(channels, resolution, 3)
    assert head(torch.zeros(2, 2 * channels, resolution, resolution)).shape == (2, 3)
    convs = [m for m in head.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == {28: 2, 32: 3, 48: 3, 64: 4}[resolution]


def test_model_args_carry_cr_codes_only_for_the_cr_config():
    cr, plain = load_config("dsprites"), load_config("dsprites-infogan")
    assert model_args(cr, 1, 64)["cr_codes"] == 5
    assert "cr_codes" not in model_args(plain, 1, 64) and "cr_codes" not in model_args(load_config("mnist"), 1, 28)


def test_init_weights_still_initialises_plain_layers():
    lin = nn.Sequential(nn.Linear(400, 400))
    init_weights(lin)
    assert abs(float(lin[0].weight.std()) - 0.02) < 0.002 and float(lin[0].bias.abs().max()) == 0


def test_baked_spectral_norm_is_the_same_function_with_plain_weights():
    """checkpoint.load_networks bakes the norm (bake_spectral_norm) so ONNX export (no aten::vdot in opset 17) and
    weight rounding (which writes m.weight) see plain layers computing what the trained D computes in eval mode."""
    spec, _, D = _dsprites(cr_codes=5)
    D.train()
    x = torch.rand(8, 1, 64, 64) * 2 - 1
    for _ in range(3):
        D(x)  # power iterations move u, v away from their initial values
    D.eval()
    before = D(x)[1].detach()
    bake_spectral_norm(D)
    assert not any(parametrize.is_parametrized(m) for m in D.modules())
    assert torch.allclose(D(x)[1], before, atol=1e-6)


def _chairs_late(**widths):
    """The chairs3d spec and its style-late (G, D), seeded; ``widths`` adds style_map / style_fade."""
    torch.manual_seed(0)
    spec = load_config("chairs3d").spec
    return spec, *build_networks(spec, arch="dsprites", channels=1, resolution=64, style_late=1, **widths)


def _with_style(c: torch.Tensor, k: int) -> torch.Tensor:
    """``c`` with every row's style one-hot (the chairs3d spec's first four columns) set to style ``k``."""
    c_k = c.clone()
    c_k[:, :4] = torch.nn.functional.one_hot(torch.full((len(c),), k), 4).float()
    return c_k


def test_style_late_generator_reads_the_style_only_in_its_norms():
    """``style_late``: the FC layers see [z, continuous codes] and never the style's one-hot, so the 4x4 map they
    produce is the same for every style; the style still changes the image, through the norms' scale and shift."""
    spec, G, _ = _chairs_late()
    G.eval()
    z, c = spec.sample(4)
    seen = []
    hook = G.body.unflatten.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    styles = []
    for k in range(4):
        styles.append(G(z, _with_style(c, k)).detach())
    assert len(seen) == 4 and all(torch.equal(seen[0], s) for s in seen[1:])  # the map before the first norm
    assert all((styles[0] - s).abs().max() > 1e-6 for s in styles[1:])  # ignores the style; the image does not
    # a continuous code reaches the FC layers (with the hook still on: the map the moved code gave)
    c_moved = c.clone()
    c_moved[:, 4] = -c_moved[:, 4]
    G(z, c_moved)
    hook.remove()
    assert len(seen) == 5 and seen[-1].shape == (4, 64, 4, 4)
    assert not torch.equal(seen[-1], seen[0])  # the moved code changed the FC layers' output
    assert [m.out_features for m in G.modules() if isinstance(m, nn.Linear)] == [128, 4 * 4 * 64]
    assert G.body.fc[0].in_features == spec.noise.dim + 4  # z and the four continuous codes, no one-hot


def test_style_late_generator_trains_exports_and_needs_a_categorical_code(tmp_path):
    spec, G, _ = _chairs_late()
    z, c = spec.sample(8)
    G(z, c).mean().backward()
    norm = G.body.norms[1]
    assert norm.gain.grad is not None and norm.gain.grad.abs().sum() > 0  # the style's scale learns
    _, G2, _ = _chairs_late()
    G2.load_state_dict(G.state_dict())  # rebuilt from the same arguments (checkpoint.load_networks)
    G.eval()
    path = tmp_path / "g.onnx"
    torch.onnx.export(G, (z, c), str(path), input_names=["z", "c"], output_names=["x"], dynamo=False)
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"z": z.numpy(), "c": c.numpy()})
    assert abs(got[0] - G(z, c).detach().numpy()).max() < 1e-5
    dsprites = load_config("dsprites").spec  # no categorical code
    with pytest.raises(ValueError, match="categorical code"):
        build_networks(dsprites, arch="dsprites", channels=1, resolution=64, style_late=1)


def test_init_weights_leaves_norms_without_affine_alone():
    bn = nn.Sequential(nn.BatchNorm2d(8, affine=False), nn.BatchNorm1d(8))
    init_weights(bn)  # raised AttributeError on the weightless norm
    assert bn[0].weight is None and abs(float(bn[1].weight.mean()) - 1.0) < 0.05


def test_style_map_adds_one_coarse_map_per_style_to_the_style_free_fc_output():
    """``style_map``: the 4x4 map before the first norm is the FC layers' output (the same for every style) plus the
    style's own learned map, which trains."""
    spec, G, _ = _chairs_late(style_map=1)
    G.eval()
    z, c = spec.sample(4)
    seen = []
    hook = G.body.norms[0].register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    for k in (0, 2):
        G(z, _with_style(c, k)).mean().backward()
    hook.remove()
    want = (G.body.style_map[0] - G.body.style_map[2]).detach().reshape(64, 4, 4)
    assert torch.allclose(seen[0] - seen[1], want.expand(4, -1, -1, -1), atol=1e-6)
    assert G.body.style_map.grad[[0, 2]].abs().sum() > 0 and G.body.style_map.grad[[1, 3]].abs().sum() == 0


def test_style_fade_gives_the_style_the_fc_path_then_takes_it_away():
    """``style_fade`` N: the style's one-hot also feeds the first FC layer with weight 1 - images / N (not below 0),
    so the 4x4 map depends on the style early in a run and not after N images."""
    spec, G, _ = _chairs_late(style_fade=1000)
    G.eval()
    z, c = spec.sample(4)

    def fc_maps():
        seen = []
        hook = G.body.unflatten.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
        for k in (0, 3):
            G(z, _with_style(c, k))
        hook.remove()
        return seen

    a, b = fc_maps()
    assert (a - b).abs().max() > 1e-4  # images 0: the style reaches the FC layers
    G.body.set_images(500)
    assert float(G.body.style_fc_scale) == 0.5
    G.body.set_images(1000)
    a, b = fc_maps()
    assert float(G.body.style_fc_scale) == 0.0 and torch.equal(a, b)
    G.body.set_images(5000)
    assert float(G.body.style_fc_scale) == 0.0
    assert "body.style_fc_scale" in G.state_dict()  # a checkpoint keeps the weight the run reached
