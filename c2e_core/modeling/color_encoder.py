"""The colour encoder: a VGG-style convolution stack and ``feature2vector`` to a 512-d embedding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: VGG-19 convolution counts per stage; the stack ends at relu5_2 (torchvision index 31).
VGG19_STAGE_CONVS = (2, 2, 4, 4, 2)


class VGGBackbone(nn.Module):
    """VGG-19 ``features`` up to relu5_2 in torchvision's index layout (0..31).

    ``widths`` are the stage widths (VGG-19: 64, 128, 256, 512, 512); output stride 16.
    """

    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512, 512)):
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for stage, (width, convs) in enumerate(zip(widths, VGG19_STAGE_CONVS, strict=True)):
            if stage > 0:
                layers.append(nn.MaxPool2d(2, 2))
            for _ in range(convs):
                layers += [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                in_channels = width
        self.features = nn.Sequential(*layers)
        self.out_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def feature_to_vector(
    in_channels: int, hidden: int, mlp_hidden: int, embed_dim: int
) -> nn.Sequential:
    """The authors' ``feature2vector`` (checkpoint indices 0, 2, 4, 6, 9, 11, 13)."""
    act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden, 4, stride=2, padding=2), act(),
        nn.Conv2d(hidden, hidden, 3, padding=1), act(),
        nn.Conv2d(hidden, hidden, 4, stride=2, padding=2), act(),
        nn.Conv2d(hidden, hidden, 3, padding=1), act(),
        nn.AdaptiveAvgPool2d(1),
        nn.Conv2d(hidden, mlp_hidden, 1), act(),
        nn.Conv2d(mlp_hidden, mlp_hidden, 1), act(),
        nn.Conv2d(mlp_hidden, embed_dim, 1),
    )  # fmt: skip


class ColorEncoder(nn.Module):
    """Reference RGB in [0, 1] ``[B,3,H,W]`` -> colour embedding ``[B, embed_dim, 1, 1]``.

    ImageNet normalisation happens inside (constants are non-persistent buffers).
    """

    def __init__(
        self,
        backbone: nn.Module,
        backbone_channels: int,
        hidden: int = 512,
        mlp_hidden: int = 256,
        embed_dim: int = 512,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        self.backbone = backbone
        self.feature2vector = feature_to_vector(backbone_channels, hidden, mlp_hidden, embed_dim)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb - self.mean.to(rgb.dtype)) / self.std.to(rgb.dtype)
        return self.feature2vector(self.backbone(x))
