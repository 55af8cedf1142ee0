"""The InfoGAN objective (Chen et al., 2016, Eq. 6): min_{G,Q} max_D V(D, G) - lambda * L_I(G, Q).

``InfoGANLoss`` is the only place that knows the terms; the loop calls ``discriminator_step`` and
``generator_step`` and applies the optimizers. Where the information gradient flows:
- the D phase adds lambda * (-log Q(c|G(z,c))) on detached fakes, so Q's head **and the shared trunk** learn
  to recognise codes (the trunk sees the gradient because Q's head sits on it; popular ports that detach the
  trunk's features for Q lose this and often merge two digits into one category);
- the G phase adds the same term without detaching, so G learns to make codes recognisable.
This is the split the reference implementation (openai/InfoGAN) uses: D's optimizer holds trunk + D head +
Q head, G's optimizer holds G.

The contrastive regularizer (InfoGAN-CR, Lin et al., ICML 2020, Sec. 4; fjxmlzn/InfoGAN-CR ``gan/infogan_cr.py``):
a pair of G's images shares the noise and the value of one code k, the other codes drawn independently
(``LatentSpec.shared_code_pairs``); D's CR head reads the pair (stacked on channels) and must name k. The head
minimises its cross-entropy alone (their ``crd_loss``, weight 1, its own parameters only: here in the D phase, on
detached pairs); G minimises ``cr_weight`` x the same cross-entropy through the head (their ``de_loss``), so it
makes each code's effect recognisable and distinct from the others'. Passing no pair leaves the objective as it was.

The real-data information term (``lambda_real``; not in the paper; the regularized information maximization of
IMSAT, Hu et al., ICML 2017, Eq. 5, on Q's categorical read): in the D phase, per categorical code, minus
``I(category; x) = H(mean_x p(.|x)) - mean_x H(p(.|x))`` over the real batch, p = Q's softmax on the real images D
reads anyway. It asks Q to sort *real* images into confident, equally used categories (the label-free score of
``evaluate``, made a training signal), so G's categories, which Q must read back, are pulled toward the data's own
balanced groups. 0 leaves the objective as it was.

The paired real-data term (``lambda_real_pair``; not in the paper; IIC, Ji et al., ICCV 2019, Eq. 1-3, on Q's
categorical read): per categorical code, minus ``I(q(x); q(T x))`` over the real batch, T the same nuisance transforms
as the invariant code's (``invariance``), the joint P = mean_x q(x) q(T x)^T symmetrised. Unlike ``lambda_real``,
which any balanced partition satisfies (brightness or fill as well as kind), it rewards only a partition that
survives the transforms, i.e. the same one the invariant code asks G to draw. Needs ``invariance``; 0 = off.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .augment import NuisanceAugment
from .latent import LatentSpec
from .networks import Discriminator


def real_information(logits: torch.Tensor) -> torch.Tensor:
    """I(category; x) in nats over a batch, from Q's logits (N, K): H(mean p) - mean H(p), differentiable."""
    logp = logits.log_softmax(dim=1)
    p = logp.exp()
    mean = p.mean(0)
    h_mean = -(mean * mean.clamp_min(1e-12).log()).sum()
    h_each = -(p * logp).sum(1).mean()
    return h_mean - h_each


def paired_information(logits: torch.Tensor, logits_t: torch.Tensor) -> torch.Tensor:
    """IIC's I(q(x); q(T x)) in nats over a batch (Ji et al., 2019, Eq. 3), from Q's logits (N, K) on the images and
    on their transformed copy: P = mean_n p_n p'_n^T (K, K), symmetrised; sum P log(P / (P_i P_j)), differentiable.
    At most ln K, reached by K equally used, confident groups that the transform does not change."""
    p, pt = logits.softmax(dim=1), logits_t.softmax(dim=1)
    # an outer product, not p.t() @ pt: under bf16 autocast a matmul would round P to 3 digits (MI went negative)
    joint = (p[:, :, None] * pt[:, None, :]).mean(0)
    joint = ((joint + joint.t()) / 2).clamp_min(1e-12)
    pi, pj = joint.sum(1, keepdim=True), joint.sum(0, keepdim=True)
    return (joint * (joint.log() - pi.log() - pj.log())).sum()


@dataclass
class LossOutput:
    loss: torch.Tensor
    stats: dict[str, torch.Tensor]  # detached scalars for logging


class InfoGANLoss:
    """lambda per code, from the loss setting its part names (``lambda_setting``): the paper uses 1 for categorical
    codes and a smaller value for continuous ones so that lambda * L_I stays on the scale of the GAN loss (Sec. 6).
    lambda = 0 gives the plain-GAN baseline of Fig. 1, whose Q is still trained (on the detached fakes) to predict c,
    but G ignores it."""

    def __init__(
        self,
        spec: LatentSpec,
        *,
        lambda_categorical: float = 1.0,
        lambda_continuous: float = 0.1,
        invariance: NuisanceAugment | None = None,
        lambda_real: float = 0.0,
        lambda_real_pair: float = 0.0,
    ):
        self.spec = spec
        self.lambda_real = float(lambda_real)
        self.lambda_real_pair = float(lambda_real_pair)
        if self.lambda_real_pair and invariance is None:
            raise ValueError("loss.lambda_real_pair needs loss.invariance (the transforms T of I(q(x); q(T x)))")
        settings = {"lambda_categorical": float(lambda_categorical), "lambda_continuous": float(lambda_continuous)}
        self.weights = {code.name: settings[code.lambda_setting] for code in spec.codes}
        self.q_weight_floor = 1.0 if max(settings.values()) == 0 else 0.0
        # Optional (not in the paper): codes whose part is ``nuisance_invariant`` are recovered from a transformed
        # copy of the image, so a category cannot stand for a style such as slant (training/augment.py says why).
        # None = the paper.
        self.invariance = invariance
        self.invariant = {c.name for c in spec.codes if c.nuisance_invariant} if invariance is not None else set()

    def _fakes(self, fake: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The batches Q reads: G's images, plus their transformed copy when some codes must be invariant."""
        return (fake,) if self.invariance is None else (fake, self.invariance(fake).to(fake.dtype))

    def _info(
        self, c: torch.Tensor, q: torch.Tensor, q_inv: torch.Tensor | None, *, for_q: bool
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Weighted -log Q(c|x) summed over codes, plus per-code L_I = H(c) - CE in nats for logging.

        q: Q's output on G's images (N, q_dim); q_inv: on their transformed copy, used for the invariant codes.
        L_I is always logged on the untransformed images, the paper's bound."""
        nll = self.spec.info_losses(c, q)
        nll_inv = self.spec.info_losses(c, q_inv) if q_inv is not None else nll
        total = q.new_zeros(())
        stats = {}
        for code in self.spec.codes:
            w = self.weights[code.name]
            term = nll_inv[code.name] if code.name in self.invariant else nll[code.name]
            # lambda = 0: Q still learns to predict c in the D phase (weight 1) so L_I can be measured at all
            total = total + (max(w, self.q_weight_floor) if for_q else w) * term
            stats[f"L_I/{code.name}"] = (code.entropy() - nll[code.name]).detach()
        return total, stats

    def discriminator_step(
        self,
        D: Discriminator,
        real: torch.Tensor,
        fake: torch.Tensor,
        c: torch.Tensor,
        pair: torch.Tensor | None = None,
        shared: torch.Tensor | None = None,
    ) -> LossOutput:
        """D phase: real (N, C, H, W), fake = G(z, c) detached, c (N, c_dim) the codes fake was made from; with the
        CR term, pair (M, 2C, H, W) two of G's images stacked on channels and shared (M,) the code they share."""
        reals = (real,) if not self.lambda_real_pair else (real, self.invariance(real).to(real.dtype))
        outs = D(*reals, *self._fakes(fake.detach()), pair=None if pair is None else pair.detach())
        cr_stats: dict[str, torch.Tensor] = {}
        cr_loss = None
        if pair is not None:
            *outs, cr_logits = outs
            cr_loss, cr_stats = _contrastive(cr_logits.float(), shared)
        (d_real, q_real), *outs = outs
        q_real_t = outs.pop(0)[1] if self.lambda_real_pair else None  # its D logit is unused: T x is no sample
        (d_fake, q_fake), *inv = outs
        # losses in fp32 whatever precision the networks ran in (bf16 autocast)
        d_real, d_fake, q_fake = d_real.float(), d_fake.float(), q_fake.float()
        gan = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy_with_logits(
            d_fake, torch.zeros_like(d_fake)
        )
        info, stats = self._info(c, q_fake, inv[0][1].float() if inv else None, for_q=True)
        stats.update(
            {
                "loss_D": gan.detach(),
                "D_real": torch.sigmoid(d_real).mean().detach(),
                "D_fake": torch.sigmoid(d_fake).mean().detach(),
                **cr_stats,
            }
        )
        total = gan + info + (cr_loss if cr_loss is not None else 0.0)
        for code, sl in self.spec.q_slices():  # the real-image terms, on each categorical code's read
            if code.kind != "categorical":
                continue
            if self.lambda_real:
                mi = real_information(q_real[:, sl].float())
                total = total - self.lambda_real * mi
                stats[f"I_real/{code.name}"] = mi.detach()
            if q_real_t is not None:
                mi = paired_information(q_real[:, sl].float(), q_real_t[:, sl].float())
                total = total - self.lambda_real_pair * mi
                stats[f"I_pair/{code.name}"] = mi.detach()
        return LossOutput(total, stats)

    def generator_step(
        self,
        D: Discriminator,
        fake: torch.Tensor,
        c: torch.Tensor,
        pair: torch.Tensor | None = None,
        shared: torch.Tensor | None = None,
        cr_weight: float = 0.0,
    ) -> LossOutput:
        """G phase: fake = G(z, c) with its graph; D's parameters are frozen by the caller. With ``pair`` (with its
        graph) and ``shared``, G's loss adds ``cr_weight`` x the CR head's cross-entropy."""
        fakes = self._fakes(fake)
        outs = D(*fakes, pair=pair)
        cr = None
        if pair is not None:
            outs, cr = (outs[0] if len(fakes) == 1 else outs[:-1]), outs[-1]
        (d_fake, q_fake), inv = (outs, None) if self.invariance is None else (outs[0], outs[1][1].float())
        d_fake, q_fake = d_fake.float(), q_fake.float()
        # non-saturating generator loss (Goodfellow et al., 2014, Sec. 3)
        gan = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        info, _ = self._info(c, q_fake, inv, for_q=False)
        stats = {"loss_G": gan.detach()}
        total = gan + info
        if cr is not None:
            cr_loss, _ = _contrastive(cr.float(), shared)
            total = total + cr_weight * cr_loss
            stats["loss_G_cr"] = cr_loss.detach()
        return LossOutput(total, stats)


def _contrastive(logits: torch.Tensor, shared: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The CR head's cross-entropy over the codes (nats; ln #codes at chance) and its accuracy, for logging."""
    loss = F.cross_entropy(logits, shared)
    acc = (logits.argmax(1) == shared).float().mean()
    return loss, {"loss_CR": loss.detach(), "CR_acc": acc.detach()}


@dataclass(frozen=True)
class CRSchedule:
    """The CR term's weight in G's loss as a function of images seen: ``early`` until ``late_from`` images, then
    ``late`` (InfoGAN-CR's dSprites run: 0, then 2.0 from step 288,000 of 322,560 at batch 64 -- 18.4 M images, the
    last 3 of 28 epochs; ``cr_coe_increase_batch`` in their config.py). While the weight is 0 the CR head is not
    trained at all: InfoGAN-CR trains it then but re-initialises it when the weight rises, so those steps are
    spent for nothing."""

    early: float = 0.0
    late: float | None = None  # None: ``early`` throughout
    late_from: int = 0  # images

    def weight(self, images: int) -> float:
        return self.late if self.late is not None and images >= self.late_from else self.early

    @property
    def used(self) -> bool:
        return self.early > 0 or bool(self.late)
