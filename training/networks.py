"""Generator, discriminator trunk and heads (D's real/fake logit, Q's code posterior).

Architectures, selected by name with keyword widths so a checkpoint rebuilds them from its stored arguments:
- ``mnist``: the paper's MNIST network (Chen et al., 2016, Appendix C, Table 1). G: FC1024-BN-ReLU,
  FC7x7x128-BN-ReLU, upconv64 (4x4, s2)-BN-ReLU, upconv1 (4x4, s2). D: conv64 (4x4, s2)-lReLU,
  conv128 (4x4, s2)-BN-lReLU, FC1024-BN-lReLU; D head FC1; Q head FC128-BN-lReLU-FC. ``fc`` and ``ch`` scale
  the widths (1024 and 64 in the paper) so a leaner variant fits the shipping budget.
- ``dcgan``: DCGAN-style conv nets for 32x32 (SVHN) or 64x64 (CelebA, chairs, faces) colour or grey images,
  as in the paper's Tables 2-5: G from a 4x4 feature map doubling up to the image size, D mirroring it.
- ``dsprites``: InfoGAN-CR's dSprites networks (Lin et al., ICML 2020; fjxmlzn/InfoGAN-CR,
  ``InfoGAN-CR_*/gan/network.py``): G: FC128-ReLU-BN, FC4x4x64-ReLU-BN, upconv64/32/32 (4x4, s2)-lReLU-BN each,
  upconv1 (4x4, s2) to 64x64; D/Q: conv32-32-64-64 (4x4, s2)-lReLU, FC128-lReLU, no BatchNorm, spectral
  normalisation on every layer (``sn``); D head FC1; Q head FC128-lReLU-FC. Their order is activation then BN
  in G, and lReLU slope 0.2 (carpedm20's ``lrelu``), both kept. ``style_late`` (``_StyleLateBody``) keeps the
  categorical codes out of G's FC layers: they enter as class-conditional BatchNorm scale and shift (and, with
  ``style_map``, a learned 4x4 map per category added to the FC output; with ``style_fade``, the first FC layer's
  input too, fading out over the run's first images).

Any architecture gets the contrastive regularizer's head (``cr_codes`` > 0, ``ContrastiveHead``) on D.

Both networks work in [-1, 1] image space (tanh output); the ONNX export maps to and from [0, 1].
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from .latent import LatentSpec

LRELU = 0.1  # leaky-ReLU slope in D (paper, Appendix C)


class Generator(nn.Module):
    def __init__(self, spec: LatentSpec, body: nn.Module, noise_scale: float = 1.0):
        super().__init__()
        self.spec = spec
        self.body = body
        self.noise_scale = float(noise_scale)  # z is scaled inside G, so every caller still feeds the prior's z

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """z (N, noise.dim), c (N, c_dim) -> images (N, C, H, W) in [-1, 1]."""
        if self.noise_scale != 1.0:
            z = z * self.noise_scale
        return self.body(torch.cat([z, c], dim=1))


class Discriminator(nn.Module):
    """Shared trunk with two heads: D's logit and Q's raw code posterior (spec.q_dim values per image).

    Q shares the trunk (paper, Sec. 5): its information loss must reach the trunk too, so ``forward`` returns
    both heads from one trunk pass and the loss decides which terms backpropagate where.
    """

    def __init__(
        self,
        spec: LatentSpec,
        trunk: nn.Module,
        features: int,
        q_hidden: int = 128,
        *,
        q_norm: bool = True,
        slope: float = LRELU,
        sn: bool = False,
    ):
        super().__init__()
        self.spec = spec
        self.trunk = trunk
        self.d_head = _sn(nn.Linear(features, 1), sn)
        self.q_head = nn.Sequential(
            _sn(nn.Linear(features, q_hidden), sn),
            *([nn.BatchNorm1d(q_hidden)] if q_norm else []),
            nn.LeakyReLU(slope),
            _sn(nn.Linear(q_hidden, max(spec.q_dim, 1)), sn),
        )
        self.cr_head: ContrastiveHead | None = None  # set by build_networks when the loss has a CR term

    def forward(self, *xs: torch.Tensor, pair: torch.Tensor | None = None):
        """x (N, C, H, W) in [-1, 1] -> (D logit (N,), Q output (N, q_dim)); several batches -> one pair each.
        ``pair`` (N, 2C, H, W), two images stacked on channels: the CR head's logits (N, #codes) come last.

        Real and fake batches go through the trunk separately (their own BatchNorm statistics, as in the
        paper's implementation) but in one ``forward`` call, which is what DistributedDataParallel expects
        (the CR head too, so all of D's parameters see one backward).
        """
        outs: list = []
        for x in xs:
            h = self.trunk(x)
            outs.append((self.d_head(h).squeeze(1), self.q_head(h)))
        if pair is not None:
            outs.append(self.cr_head(pair))
        return outs[0] if len(outs) == 1 else tuple(outs)


class ContrastiveHead(nn.Module):
    """InfoGAN-CR's contrastive-regularizer discriminator (``CrDiscriminator``): a pair of images stacked on the
    channel axis -> one logit per regularised code, saying which code the two images share. Its own conv stack
    (not D's trunk): conv32-32-64-64... (4x4, s2)-lReLU 0.2 down to 4x4, FC128-lReLU, FC #codes, spectral
    normalisation on all but the last layer, as in their code."""

    def __init__(self, channels: int, resolution: int, n_codes: int, sn: bool = True):
        super().__init__()
        # each conv (4x4, stride 2, pad 1) takes a side s to s // 2; halve while the result stays >= 4 px, so 64 -> 4
        # (their four layers), 32 -> 4, and a side that is no power of two stops above 4: 28 -> 14 -> 7
        side, n_down = resolution, 0
        while side >= 8:
            side, n_down = side // 2, n_down + 1
        widths = [32 * 2 ** (i // 2) for i in range(n_down)]  # 64x64: 32, 32, 64, 64 (their CrDiscriminator)
        layers: list[nn.Module] = []
        w_in = 2 * channels
        for w in widths:
            layers += [_sn(nn.Conv2d(w_in, w, 4, 2, 1), sn), nn.LeakyReLU(0.2)]
            w_in = w
        fc_in = w_in * side * side
        layers += [nn.Flatten(), _sn(nn.Linear(fc_in, 128), sn), nn.LeakyReLU(0.2), nn.Linear(128, n_codes)]
        self.net = nn.Sequential(*layers)

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        return self.net(pair)


def _sn(layer: nn.Module, on: bool) -> nn.Module:
    """Marks a layer for spectral normalisation (Miyato et al., 2018), as InfoGAN-CR's D uses; ``build_networks``
    applies it after ``init_weights``, because registering it runs 15 power iterations on the weight as it is then:
    on the default init those would leave u, v stale for the initialised weight, and a fresh D in eval mode (no
    iteration per forward) would divide by a far too small sigma."""
    layer.spectral_norm = on
    return layer


def bake_spectral_norm(module: nn.Module) -> None:
    """Replace each spectrally normalised weight by its value now (W / sigma from the stored power-iteration
    vectors, what eval mode computes): the same function as a plain layer, for inference and export (ONNX has no
    ``vdot``; weight rounding writes plain weights). Training needs the parametrisation: bake loaded copies only."""
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            was = m.training
            m.eval()
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
            m.train(was)


def apply_spectral_norm(module: nn.Module) -> None:
    for m in module.modules():
        if getattr(m, "spectral_norm", False) and not parametrize.is_parametrized(m, "weight"):
            nn.utils.parametrizations.spectral_norm(m)


# ---- the paper's MNIST architecture ---------------------------------------------------------------------


def _mnist_nets(
    spec: LatentSpec, channels: int, resolution: int, fc: int = 1024, ch: int = 64
) -> tuple[nn.Module, nn.Module]:
    if resolution != 28:
        raise ValueError(f"the 'mnist' architecture is for 28x28 images, got resolution {resolution}")
    s = 7  # 28 / 2 / 2
    g = nn.Sequential(
        nn.Linear(spec.input_dim, fc),
        nn.BatchNorm1d(fc),
        nn.ReLU(),
        nn.Linear(fc, s * s * 2 * ch),
        nn.BatchNorm1d(s * s * 2 * ch),
        nn.ReLU(),
        nn.Unflatten(1, (2 * ch, s, s)),
        nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1),
        nn.BatchNorm2d(ch),
        nn.ReLU(),
        nn.ConvTranspose2d(ch, channels, 4, 2, 1),
        nn.Tanh(),
    )
    trunk = nn.Sequential(
        nn.Conv2d(channels, ch, 4, 2, 1),
        nn.LeakyReLU(LRELU),
        nn.Conv2d(ch, 2 * ch, 4, 2, 1),
        nn.BatchNorm2d(2 * ch),
        nn.LeakyReLU(LRELU),
        nn.Flatten(),
        nn.Linear(s * s * 2 * ch, fc),
        nn.BatchNorm1d(fc),
        nn.LeakyReLU(LRELU),
    )
    return g, Discriminator(spec, trunk, fc)


# ---- DCGAN-style architecture for 32x32 and 64x64 -------------------------------------------------------


def _dcgan_nets(
    spec: LatentSpec, channels: int, resolution: int, ch: int = 64, fc: int = 0
) -> tuple[nn.Module, nn.Module]:
    n_up = int(math.log2(resolution)) - 2  # 4x4 -> resolution
    if resolution < 16 or 2 ** (n_up + 2) != resolution:
        raise ValueError(f"the 'dcgan' architecture needs a power-of-two resolution >= 16, got {resolution}")
    widths = [ch * 2**i for i in range(n_up)]  # D: ch, 2ch, 4ch, ... ; G mirrors them
    top = widths[-1]
    g_layers: list[nn.Module] = [
        nn.Linear(spec.input_dim, 4 * 4 * top),
        nn.BatchNorm1d(4 * 4 * top),
        nn.ReLU(),
        nn.Unflatten(1, (top, 4, 4)),
    ]
    for w_in, w_out in zip(widths[::-1][:-1], widths[::-1][1:], strict=False):
        g_layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1), nn.BatchNorm2d(w_out), nn.ReLU()]
    g_layers += [nn.ConvTranspose2d(widths[0], channels, 4, 2, 1), nn.Tanh()]
    d_layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(LRELU)]
    for w_in, w_out in zip(widths[:-1], widths[1:], strict=False):
        d_layers += [nn.Conv2d(w_in, w_out, 4, 2, 1), nn.BatchNorm2d(w_out), nn.LeakyReLU(LRELU)]
    d_layers += [nn.Flatten()]
    features = top * 4 * 4
    if fc:
        d_layers += [nn.Linear(features, fc), nn.BatchNorm1d(fc), nn.LeakyReLU(LRELU)]
        features = fc
    return nn.Sequential(*g_layers), Discriminator(spec, nn.Sequential(*d_layers), features)


# ---- InfoGAN-CR's dSprites networks (64x64) --------------------------------------------------------------


class _CategoryNorm(nn.Module):
    """BatchNorm without its own affine, followed by a scale and shift chosen by the categorical codes: the
    class-conditional BatchNorm of conditional GANs (de Vries et al., 2017; Miyato & Koyama, 2018). ``onehot``
    (N, K) holds the categorical codes' one-hot columns (several codes add their rows); features (N, C, H, W) ->
    same shape."""

    def __init__(self, features: int, categories: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(features, affine=False)
        # per-category gain offset and shift (K, C); N(0, 0.02) as init_weights draws BN scales, around gain 1
        self.gain = nn.Parameter(torch.randn(categories, features) * 0.02)
        self.shift = nn.Parameter(torch.zeros(categories, features))

    def forward(self, h: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        gain, shift = 1.0 + onehot @ self.gain, onehot @ self.shift
        return self.norm(h) * gain[:, :, None, None] + shift[:, :, None, None]


class _StyleLateBody(nn.Module):
    """The dSprites generator with the categorical codes kept out of the layers that read the continuous codes.

    The plain body feeds one FC layer with [z, one-hot, continuous], so each category can give the continuous codes
    their own meaning: on the rendered chairs each style had its own rotation of the code space (per-style R² of
    azimuth on the codes 0.91-0.98, over all chairs 0.13; docs/training/chairs3d.md), which FactorVAE and MIG
    count as entangled. Here the FC layers see only [z, continuous] (``style_fade`` aside) and make one 4x4 map
    for every category, and the category enters only as each later BatchNorm's scale and shift
    (``_CategoryNorm``), so a code moves the same features whatever the style; the style selects and weighs
    channels, not directions of the code space. Measured on the chairs: azimuth and light line up across styles,
    but the categorical code merges two styles (docs/training/chairs3d.md, "The style enters late").
    Input: the Generator's [z, c] (N, input_dim); output (N, channels, 64, 64) in [-1, 1]."""

    def __init__(
        self,
        spec: LatentSpec,
        channels: int,
        fc: int,
        ch: int,
        slope: float,
        style_map: bool = False,
        style_fade: int = 0,
    ):
        super().__init__()
        cat_cols: list[int] = []
        rest = list(range(spec.noise.dim))
        for code, s in spec.c_slices():
            cols = range(spec.noise.dim + s.start, spec.noise.dim + s.stop)
            (cat_cols if code.kind == "categorical" else rest).extend(cols)
        if not cat_cols:
            raise ValueError("'style_late' needs a categorical code in the latent spec")
        self.register_buffer("cat_cols", torch.tensor(cat_cols), persistent=False)
        self.register_buffer("rest_cols", torch.tensor(rest), persistent=False)
        k = len(cat_cols)
        self.fc = nn.Sequential(
            nn.Linear(len(rest), fc), nn.ReLU(), nn.BatchNorm1d(fc), nn.Linear(fc, 4 * 4 * 2 * ch), nn.ReLU()
        )
        self.unflatten = nn.Unflatten(1, (2 * ch, 4, 4))
        # ``style_fade`` N > 0: the style also feeds the first FC layer, as in the plain body, with a weight that falls
        # linearly from 1 to 0 over the run's first N images (``set_images``, called by the training loop each step):
        # the plain body separated the chairs' styles by epoch 5 and the style-late one merged two of them, so the
        # style gets the plain path while it forms and the codes the style-free one after. A buffer, so checkpoints
        # and the ONNX export carry the weight the run had reached (0 after N images: the path is gone).
        self.style_fade = int(style_fade)
        self.style_fc = nn.Linear(k, fc, bias=False) if style_fade else None
        self.register_buffer("style_fc_scale", torch.ones(()) if style_fade else None)
        # ``style_map``: each category also adds its own 4x4 map to the FC layers' output, before the first norm: a
        # coarse shape per style (a stool is tall, a bench wide) that gains and shifts alone build slowly; it is
        # added, so the FC layers still never see the style. N(0, 0.2): about the FC output's spread at init.
        self.style_map = nn.Parameter(torch.randn(k, 2 * ch * 16) * 0.2) if style_map else None
        widths = [2 * ch, 2 * ch, ch, ch]  # 4x4, 8x8, 16x16, 32x32
        self.norms = nn.ModuleList(_CategoryNorm(w, k) for w in widths)
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in pairs)
        self.act = nn.LeakyReLU(slope)
        self.out = nn.ConvTranspose2d(ch, channels, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = x.index_select(1, self.cat_cols)
        h = self.fc[0](x.index_select(1, self.rest_cols))
        if self.style_fc is not None:
            h = h + self.style_fc_scale * self.style_fc(onehot)
        h = self.fc[1:](h)
        if self.style_map is not None:
            h = h + onehot @ self.style_map
        h = self.norms[0](self.unflatten(h), onehot)
        for up, norm in zip(self.ups, self.norms[1:], strict=True):
            h = norm(self.act(up(h)), onehot)
        return torch.tanh(self.out(h))

    def set_images(self, images: int) -> None:
        """The training loop's images seen so far: sets the style's FC weight of ``style_fade`` (a no-op without)."""
        if self.style_fade:
            self.style_fc_scale.fill_(max(0.0, 1.0 - images / self.style_fade))


def _dsprites_nets(
    spec: LatentSpec,
    channels: int,
    resolution: int,
    fc: int = 128,
    ch: int = 32,
    sn: int = 1,
    style_late: int = 0,
    style_map: int = 0,
    style_fade: int = 0,
) -> tuple[nn.Module, nn.Module]:
    if resolution != 64:
        raise ValueError(f"the 'dsprites' architecture is for 64x64 images, got resolution {resolution}")
    slope = 0.2
    g = (
        _StyleLateBody(spec, channels, fc, ch, slope, bool(style_map), style_fade)
        if style_late
        else nn.Sequential(
            nn.Linear(spec.input_dim, fc),
            nn.ReLU(),
            nn.BatchNorm1d(fc),
            nn.Linear(fc, 4 * 4 * 2 * ch),
            nn.ReLU(),
            nn.BatchNorm1d(4 * 4 * 2 * ch),
            nn.Unflatten(1, (2 * ch, 4, 4)),
            nn.ConvTranspose2d(2 * ch, 2 * ch, 4, 2, 1),
            nn.LeakyReLU(slope),
            nn.BatchNorm2d(2 * ch),  # 8x8
            nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1),
            nn.LeakyReLU(slope),
            nn.BatchNorm2d(ch),  # 16x16
            nn.ConvTranspose2d(ch, ch, 4, 2, 1),
            nn.LeakyReLU(slope),
            nn.BatchNorm2d(ch),  # 32x32
            nn.ConvTranspose2d(ch, channels, 4, 2, 1),
            nn.Tanh(),  # 64x64; theirs is sigmoid in [0, 1], ours [-1, 1]
        )
    )
    on = bool(sn)
    d_layers: list[nn.Module] = []
    w_in = channels
    for w in (ch, ch, 2 * ch, 2 * ch):  # 32, 16, 8, 4
        d_layers += [_sn(nn.Conv2d(w_in, w, 4, 2, 1), on), nn.LeakyReLU(slope)]
        w_in = w
    d_layers += [nn.Flatten(), _sn(nn.Linear(w_in * 16, fc), on), nn.LeakyReLU(slope)]
    return g, Discriminator(spec, nn.Sequential(*d_layers), fc, fc, q_norm=False, slope=slope, sn=on)


ARCHITECTURES = {"mnist": _mnist_nets, "dcgan": _dcgan_nets, "dsprites": _dsprites_nets}


def build_networks(
    spec: LatentSpec,
    *,
    arch: str,
    channels: int,
    resolution: int,
    noise_scale: float = 1.0,
    cr_codes: int = 0,
    **widths: Any,
) -> tuple[Generator, Discriminator]:
    """Build (G, D) from the latent spec, the image shape and the architecture's keyword widths; ``cr_codes`` > 0
    adds the contrastive regularizer's head (``D.cr_head``) with that many outputs.

    A checkpoint stores exactly these arguments (``model_args``), so loading needs nothing else.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    body, d = ARCHITECTURES[arch](spec, channels, resolution, **widths)
    if cr_codes:
        d.cr_head = ContrastiveHead(channels, resolution, cr_codes)
    g = Generator(spec, body, noise_scale)
    init_weights(g)
    init_weights(d)
    apply_spectral_norm(d)
    return g, d


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al., 2016): N(0, 0.02) weights, BN scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # a spectrally normalised layer's weight is computed from its stored original: initialise that
            weight = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            with torch.no_grad():
                nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
