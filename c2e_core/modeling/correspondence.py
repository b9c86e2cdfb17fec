"""Color2Embed with semantic correspondence: the project's extension of the paper's model.

The paper's network sees the target through a UNet trained from scratch and the reference through
one global colour embedding, so it cannot tell a face from a wall, nor which reference colour
belongs where. This variant adds, cheaply:

- **ImageNet features of the gray target** (a frozen EfficientNet-lite0 to block 10) feeding the
  content path at strides 8 and 16;
- **a correspondence** between those features and the same features of the gray reference:
  softmax attention at stride 8 warps the reference's colours onto the target and says how well
  each target position matched (a *confidence*). Each reference cell carries its mean ab and a
  local linear model ``ab = alpha * L + beta`` (a guided filter's, fitted on the reference), so the
  warped *prior* ``alpha * L + beta`` follows the target's own full-resolution lightness;
- the paper's **global colour embedding** ``z`` (from the reference's features and colours)
  modulating the decoder as in Color2Embed, which fills what the reference cannot match.

The decoder predicts a correction of the upsampled prior, so it starts from the warped colours
and learns where to sharpen them along the target's edges and where to trust ``z`` instead.
It is still one network call per target, and per reference one run of the reference network
for each orientation it is embedded in (below).

The reference may be turned or mirrored against the target (a photo scanned sideways; the
evaluation protocol's references are rotated 0-360 degrees), and the frozen features are not
invariant to that. With ``reference_orientations=8`` the reference is embedded in its eight
orientations (quarter turns of it and of its mirror image), and each target keeps the one its
features match best (:func:`choose_orientation`); turned copies must beat the upright and
mirrored ones by ``upright_margin``, so an upright reference stays upright.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from c2e_core.modeling.color2embed import LabScaling
from c2e_core.modeling.color_encoder import feature_to_vector
from c2e_core.modeling.colour import gray_from_lightness, rgb_to_lab
from c2e_core.modeling.efficientnet_lite import EffNetLite0Backbone
from c2e_core.modeling.unet import DoubleConv, Down, ModulatedDecoder, ResBlock

#: EfficientNet-lite0 blocks the correspondence and the content path use: 40 channels at
#: stride 8 and 112 at stride 16.
FEATURE_TAPS = (4, 10)
FEATURE_CHANNELS = (40, 112)
#: Their strides: the network's input sides are multiples of the larger.
FEATURE_STRIDES = (8, 16)
#: The texture block (24 channels at stride 4) that a model matching the target at stride 4
#: adds to the keys (``target_stride=4``).
FINE_TAP = 2
#: The target strides a model may match at: 8 (the reference cells' own) or 4.
TARGET_STRIDES = (8, 4)
#: Attention logit bias of reference tokens that hold no colour.
EMPTY_BIAS = -1e4
#: Regulariser of the cells' linear models, in ``((L - 50) / 50)²`` units (4 in L units²).
LINEAR_EPS = 4.0 / 2500.0
#: Channels a reference token carries: mean ab, alpha (2) and beta (2), all of ab / 110.
VALUE_CHANNELS = 6
#: The orientations a reference can be embedded in: index ``i`` is ``i % 4`` quarter turns
#: (counter-clockwise) of the reference, mirrored left-right first when ``i >= 4``.
ORIENTATIONS = 8
#: Orientations that keep the reference upright (as is, and its mirror image).
UPRIGHT = (0, 4)
#: One target token in this many (every fourth column of each row of cells) scores the
#: orientations: a global choice needs few.
SCORE_EVERY = 4


class ReferenceCode(NamedTuple):
    """What :meth:`CorrColor2Embed.embed` returns for a batch of references.

    ``N`` tokens: the reference's cells at stride 8, once for each orientation it is embedded
    in. ``z`` ``[B, E, 1, 1]``: the global colour embedding; ``keys`` ``[B, N, K]``: unit-length
    features of the gray reference at stride 8; ``values`` ``[B, N, 6]``: each cell's mean ab and
    its linear model of ab on lightness (alpha, beta; ab / 110 against ``(L - 50) / 50``);
    ``bias`` ``[B, N]``: added to the attention logits (very negative where the reference is
    empty, the log of its share when several references are blended); ``orientation``
    ``[B, N]``: the orientation (see :data:`ORIENTATIONS`) of the copy each token comes from,
    as a float like every tensor of the code (the runtime passes codes as float32 arrays).
    """

    z: Tensor
    keys: Tensor
    values: Tensor
    bias: Tensor
    orientation: Tensor

    def to(self, *args, **kwargs) -> ReferenceCode:
        return ReferenceCode(*(t.to(*args, **kwargs) for t in self))

    def float(self) -> ReferenceCode:
        return self.to(torch.float32)


def blend_reference_codes(
    codes: Sequence[ReferenceCode], weights: Sequence[float]
) -> ReferenceCode:
    """Several references as one: their tokens side by side (each token's attention logit
    raised by the log of its reference's share) and the weighted mean of their ``z``."""
    total = float(sum(weights))
    shares = [w / total for w in weights]
    z = sum(code.z * share for code, share in zip(codes, shares, strict=True))
    biased = [c._replace(bias=c.bias + math.log(max(s, 1e-12)))
              for c, s in zip(codes, shares, strict=True)]  # fmt: skip
    return ReferenceCode(z, *in_orientation_order(_tokens_side_by_side(biased)))


def _tokens_side_by_side(codes: Sequence[ReferenceCode]) -> list[Tensor]:
    """Every token tensor of ``codes`` (all fields but ``z``) joined along the tokens."""
    return [torch.cat(tensors, 1) for tensors in zip(*(code[1:] for code in codes), strict=True)]


def orient(rgb: Tensor, orientation: int) -> Tensor:
    """``[B, C, H, W]`` images in one of the :data:`ORIENTATIONS`."""
    if orientation >= 4:
        rgb = rgb.flip(-1)
    turns = orientation % 4  # as torch.rot90(rgb, turns, (-2, -1)), in ops ONNX exports
    if turns == 1:
        return rgb.transpose(-2, -1).flip(-2)
    if turns == 2:
        return rgb.flip(-2).flip(-1)
    if turns == 3:
        return rgb.transpose(-2, -1).flip(-1)
    return rgb


def key_taps(target_stride: int) -> tuple[int, ...]:
    """The EfficientNet-lite0 blocks a model matching at ``target_stride`` runs and keys on:
    :data:`FEATURE_TAPS`, and the texture block first at stride 4."""
    return FEATURE_TAPS if target_stride == 8 else (FINE_TAP, *FEATURE_TAPS)


def empty_penalty(bias: Tensor) -> Tensor:
    """``-3`` for the tokens that hold no colour (their ``bias`` is :data:`EMPTY_BIAS`), 0 for
    the others: added to cosine similarities (at most 1, a little more in float rounding) and
    clamped at -1, it puts every empty token at -1, as setting them to -1 would, with an
    addition instead of a masked fill
    (onnxruntime's ``Where`` over a ``[targets, tokens]`` matrix took 4 ms of the target
    network)."""
    return (bias < EMPTY_BIAS / 2).to(bias.dtype) * -3.0


def choose_orientation(
    target_keys: Tensor, code: ReferenceCode, count: int, upright_margin: float
) -> ReferenceCode:
    """Keep, per target, the tokens of the one reference orientation (of ``count``) whose
    features match the target best: the mean over target positions (one in
    :data:`SCORE_EVERY`) of the best cosine similarity, plus ``upright_margin`` for the
    :data:`UPRIGHT` ones. The code's tokens are in orientation order, ``count`` blocks of the
    same size (as :meth:`CorrColor2Embed.embed` and the blends make them); when several
    references are blended they turn together."""
    if count == 1:
        return code
    batch, tokens = target_keys.shape[0], code.keys.shape[1]
    # the blocks' size as -1 below: a size computed from a shape is a constant in an export
    if not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()):
        blocks = code.orientation.unflatten(1, (count, -1)) if tokens % count == 0 else None
        order = torch.arange(count, dtype=code.orientation.dtype)[None, :, None]
        if blocks is None or bool((blocks != order).any()):
            raise ValueError(f"this reference code was not made in {count} orientations")
    # in fp32 under autocast too: bf16's step near 0.5 is 0.004, a fifth of the margin
    sim = target_keys[:, ::SCORE_EVERY].float() @ code.keys.float().transpose(1, 2)  # [B, t, N]
    sim = sim + empty_penalty(code.bias)[:, None, :]
    best = sim.unflatten(-1, (count, -1)).amax(dim=-1).clamp_min(-1.0)  # [B, t, count]
    score = best.mean(dim=1)  # [B, count]
    bonus = [upright_margin if o in UPRIGHT else 0.0 for o in range(count)]
    chosen = (score + score.new_tensor(bonus)).argmax(dim=-1)  # [B]

    def take(t: Tensor) -> Tensor:  # one reference's code may serve a batch of targets
        if t.shape[0] == 1:  # the usual case (and the exported graph's): pick, copy nothing else
            return t[0].unflatten(0, (count, -1)).index_select(0, chosen)
        blocks = t.unflatten(1, (count, -1))
        index = chosen.view(batch, 1, *([1] * (blocks.dim() - 2)))
        return blocks.gather(1, index.expand_as(blocks[:, :1])).squeeze(1)

    return ReferenceCode(code.z, *(take(t) for t in code[1:]))


def in_orientation_order(tokens: Sequence[Tensor]) -> list[Tensor]:
    """Token tensors ``[B, N, ...]`` (the last: their orientations) stably sorted by
    orientation, as :func:`choose_orientation` takes them."""
    order = torch.sort(tokens[-1], dim=1, stable=True).indices

    def take(t: Tensor) -> Tensor:
        return t.gather(1, order.view(*order.shape, *([1] * (t.dim() - 2))).expand_as(t))

    return [take(t) for t in tokens]


def cell_colour_models(
    l_norm: Tensor, ab: Tensor, valid: Tensor, cell: int | tuple[int, int]
) -> tuple[Tensor, Tensor]:
    """Per ``cell`` x ``cell`` block (the sides are multiples of it), over the ``valid`` pixels:
    mean ab and the least-squares line ``ab = alpha * l + beta`` (regularised by
    :data:`LINEAR_EPS`, as a guided filter's); returns ``([B, 6, h, w]`` mean ab, alpha, beta``,
    [B, 1, h, w]`` valid share``)``."""
    lit = F.avg_pool2d(valid, cell)

    def mean(t: Tensor) -> Tensor:
        return F.avg_pool2d(t * valid, cell) / lit.clamp_min(1e-6)

    mean_l, mean_ab = mean(l_norm), mean(ab)
    var_l = (mean(l_norm * l_norm) - mean_l * mean_l).clamp_min(0)
    alpha = (mean(l_norm * ab) - mean_l * mean_ab) / (var_l + LINEAR_EPS)
    return torch.cat((mean_ab, alpha, mean_ab - alpha * mean_l), dim=1), lit


def linear_prior(prior: Tensor, l_norm: Tensor) -> Tensor:
    """The warped cells' lines (the prior at the target's matching stride) applied to the
    full-size lightness: ``alpha * l + beta``."""
    coefficients = F.interpolate(prior[:, 2:6], size=l_norm.shape[-2:], mode="bilinear",
                                 align_corners=False)  # fmt: skip
    alpha, beta = coefficients.split(2, dim=1)
    return alpha * l_norm + beta


def _centred_unit(features: Tensor) -> Tensor:
    """Features minus their per-image mean, L2-normalised over channels."""
    return F.normalize(features - features.mean(dim=(2, 3), keepdim=True), dim=1)


class Correspondence(nn.Module):
    """Softmax attention from target tokens to reference tokens: warped ab and confidence."""

    def __init__(self, key_channels: int, temperature: float = 0.02):
        super().__init__()
        #: A learned correction of the frozen features (starts at zero: plain features).
        self.key_proj = nn.Conv2d(key_channels, key_channels, 1)

        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.zero_init_()

    @torch.no_grad()
    def zero_init_(self) -> None:
        """Start with no correction: the attention sees the plain ImageNet features."""
        nn.init.zeros_(self.key_proj.weight)
        nn.init.zeros_(self.key_proj.bias)

    def keys(self, features: Tensor) -> Tensor:
        """``[B, K, h, w]`` features -> ``[B, h*w, K]`` unit keys."""
        keys = _centred_unit(features + self.key_proj(features))
        return keys.flatten(2).transpose(1, 2)

    def forward(self, target_keys: Tensor, code: ReferenceCode, shape: tuple[int, int]) -> Tensor:
        """``[B|1, N, K]`` reference tokens seen from ``[B, hw, K]`` target keys -> the warped
        values (mean ab, alpha, beta) and the confidence (best cosine similarity),
        ``[B, 7, h, w]``."""
        sim = target_keys @ code.keys.transpose(1, 2)  # [B, hw, N]
        logits = sim / self.log_temperature.exp() + code.bias[:, None, :]
        attention = torch.softmax(logits, dim=-1)
        prior = attention @ code.values  # [B, hw, 6]
        penalty = empty_penalty(code.bias).to(sim.dtype)  # bf16 stays bf16 under autocast
        confidence = (sim + penalty[:, None, :]).amax(dim=-1, keepdim=True)
        confidence = confidence.clamp_min(-1.0)  # -1 where the reference holds no colour
        out = torch.cat((prior, confidence), dim=-1).transpose(1, 2)
        return out.reshape(out.shape[0], VALUE_CHANNELS + 1, *shape)


class CorrUNet(ModulatedDecoder):
    """Content path and modulated decoder: L plus target features plus the prior -> ab / 110.

    ``widths`` are the five encoder widths; the fusions at strides 8 and 16 join the target's
    ImageNet features (and at 8 the prior and confidence) to the UNet's own.
    """

    def __init__(
        self,
        widths: Sequence[int] = (16, 32, 64, 128, 128),
        up_kernels: Sequence[int] = (3, 3, 5, 5),
        embed_dim: int = 128,
        skip_stride: int = 4,
        feature_channels: Sequence[int] = FEATURE_CHANNELS,
    ):
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        c8, c16 = feature_channels
        self.inc = DoubleConv(1, w0)
        self.down1 = Down(w0, w1)
        self.down2 = Down(w1, w2)
        self.down3 = Down(w2, w3)
        self.fuse8 = ResBlock(w3 + c8 + VALUE_CHANNELS + 1, w3)
        self.down4 = Down(w3, w4)
        self.fuse16 = ResBlock(w4 + c16, w4)
        self._build_decoder(widths, up_kernels, embed_dim, skip_stride)
        self.outc = nn.Sequential(
            nn.Conv2d(w0 + 2, w0, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w0, 2, 3, padding=1),
        )
        self.zero_init_()

    @torch.no_grad()
    def zero_init_(self) -> None:
        """Start as the identity of the prior: the correction's last convolution is zero."""
        nn.init.zeros_(self.outc[-1].weight)
        nn.init.zeros_(self.outc[-1].bias)

    def forward(
        self, l_norm: Tensor, f8: Tensor, f16: Tensor, prior8: Tensor, prior: Tensor, z: Tensor
    ) -> Tensor:
        """``prior8``: the warped values and confidence at stride 8; ``prior``: the full-size
        prior ab / 110 that the output corrects."""
        x1 = self.inc(l_norm)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.fuse8(torch.cat((self.down3(x3), f8, prior8), dim=1))
        x5 = self.fuse16(torch.cat((self.down4(x4), f16), dim=1))
        x = self._decode((x1, x2, x3, x4, x5), z)
        return (prior + self.outc(torch.cat((x, prior), dim=1))).clamp(-1.0, 1.0)


class CorrColor2Embed(LabScaling, nn.Module):
    """Color2Embed plus target semantics and a reference correspondence (see the module doc).

    Interface of every registered architecture: ``embed(reference_rgb) -> code``,
    ``predict_ab(l_norm, code) -> ab / 110``, ``blend_embeddings(codes, weights)``.
    """

    size_multiple = 16

    def __init__(
        self,
        features: EffNetLite0Backbone,
        correspondence: Correspondence,
        colour_head: nn.Module,
        unet: CorrUNet,
        embed_dim: int = 128,
        freeze_features: bool = True,
        reference_orientations: int = 1,
        upright_margin: float = 0.02,
        target_stride: int = 8,
    ):
        super().__init__()
        if reference_orientations not in (1, ORIENTATIONS):
            raise ValueError(f"reference_orientations must be 1 or {ORIENTATIONS}")
        if target_stride not in TARGET_STRIDES:
            raise ValueError(f"target_stride must be 8 or 4, not {target_stride!r}")
        #: 8: each target cell of 8x8 pixels matches the reference's cells; 4: each 4x4 one
        #: does, with the texture block in the keys (finer colour edges, 4x the attention).
        self.target_stride = int(target_stride)
        self.reference_orientations = reference_orientations
        self.upright_margin = float(upright_margin)
        self.features = features
        self.correspondence = correspondence
        self.colour_head = colour_head
        self.unet = unet
        self.embed_dim = embed_dim
        self.freeze_features = freeze_features
        if freeze_features:
            self.features.requires_grad_(False)

    def train(self, mode: bool = True) -> CorrColor2Embed:
        super().train(mode)
        if self.freeze_features:
            self.features.eval()  # frozen ImageNet statistics
        return self

    def _taps(self, gray_rgb: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """The frozen features at strides 8 and 16, and at 4 (the texture block) when this
        model matches at stride 4."""
        *fine, f8, f16 = self.features.taps(gray_rgb, key_taps(self.target_stride))
        return f8, f16, (fine[0] if fine else None)

    def _keys(self, f8: Tensor, f16: Tensor, f4: Tensor | None, stride: int) -> Tensor:
        """Matching features at ``stride`` (8 or 4): each block centred and unit-length, the
        coarser ones upsampled, the texture block (when there is one) average-pooled to 8."""
        size = f8.shape[-2:] if stride == 8 else f4.shape[-2:]

        def at_stride(t: Tensor) -> Tensor:
            if t.shape[-2:] == size:
                return t
            if t.shape[-1] > size[-1]:
                return F.avg_pool2d(t, t.shape[-1] // size[-1])
            return F.interpolate(t, size=size, mode="bilinear", align_corners=False)

        blocks = (f8, f16) if f4 is None else (f8, f16, f4)
        return torch.cat([_centred_unit(at_stride(t)) for t in blocks], dim=1)

    def _embed_oriented(
        self, gray: Tensor, values: Tensor, lit: Tensor, ab: Tensor | None, orientation: int
    ) -> ReferenceCode:
        """The code of the reference in one of the :data:`ORIENTATIONS`, from its gray image
        and its cells' colour models in that orientation (``z`` from ``ab`` only for the
        reference as it is, orientation 0; the others' is empty)."""
        f8, f16, f4 = self._taps(gray)
        z = f16.new_zeros(0)
        if ab is not None:
            # block means rather than adaptive pooling (the same for sides that are multiples
            # of 16): fixed kernels keep the network exportable at any input size
            ab16 = F.avg_pool2d(ab, FEATURE_STRIDES[1])
            z = self.colour_head(torch.cat((f16, ab16), dim=1))
        keys = self.correspondence.keys(self._keys(f8, f16, f4, FEATURE_STRIDES[0]))
        bias = torch.where(lit > 0.5, 0.0, EMPTY_BIAS).flatten(1)
        return ReferenceCode(z, keys, values.flatten(2).transpose(1, 2), bias,
                             torch.full_like(bias, float(orientation)))  # fmt: skip

    def embed(self, reference_rgb: Tensor) -> ReferenceCode:
        # the colour conversion and the cells' colour models once: turning or mirroring the
        # image turns or mirrors them (the sides are multiples of the cell), only the frozen
        # features must be computed again for each orientation
        lab = rgb_to_lab(reference_rgb.clamp(0, 1))
        l_norm, ab = self.normalize_lightness(lab[:, :1]), self.output_from_ab(lab[:, 1:])
        gray = gray_from_lightness(self.lightness_from_normalized(l_norm))
        # black fill (a rotated reference's corners, an empty canvas) offers no colour
        valid = (reference_rgb.amax(dim=1, keepdim=True) > 0).float()
        values, lit = cell_colour_models(l_norm, ab, valid, FEATURE_STRIDES[0])
        codes = [
            self._embed_oriented(orient(gray, o), orient(values, o), orient(lit, o),
                                 ab if o == 0 else None, o)  # fmt: skip
            for o in range(self.reference_orientations)
        ]
        if len(codes) == 1:
            return codes[0]
        return ReferenceCode(codes[0].z, *_tokens_side_by_side(codes))

    def predict_ab(self, l_norm: Tensor, code: ReferenceCode) -> Tensor:
        f8, f16, f4 = self._taps(gray_from_lightness(self.lightness_from_normalized(l_norm)))
        keys = self.correspondence.keys(self._keys(f8, f16, f4, self.target_stride))
        grid = f8.shape[-2:] if f4 is None else f4.shape[-2:]
        # the orientations are scored at the same places at either stride: at 4, the cell at
        # the top left of each 8x8 one
        scoring = keys if f4 is None else keys.unflatten(1, grid)[:, ::2, ::2].flatten(1, 2)
        code = choose_orientation(scoring, code, self.reference_orientations,
                                  self.upright_margin)  # fmt: skip
        prior = self.correspondence(keys, code, grid)
        # the decoder's fusion at stride 8 takes the prior there; its lines at the matching
        # stride give the full-size prior the decoder corrects
        prior8 = prior if f4 is None else F.avg_pool2d(prior, 2)
        return self.unet(l_norm, f8, f16, prior8, linear_prior(prior, l_norm), code.z)

    @staticmethod
    def blend_embeddings(codes: Sequence[ReferenceCode], weights: Sequence[float]) -> ReferenceCode:
        return blend_reference_codes(codes, weights)

    def forward(self, l_norm: Tensor, reference_rgb: Tensor) -> Tensor:
        return self.predict_ab(l_norm, self.embed(reference_rgb))


def build_colour_head(embed_dim: int, hidden: int, mlp_hidden: int) -> nn.Module:
    """The paper's ``feature2vector`` over the reference's stride-16 features and its ab."""
    return feature_to_vector(FEATURE_CHANNELS[1] + 2, hidden, mlp_hidden, embed_dim)
