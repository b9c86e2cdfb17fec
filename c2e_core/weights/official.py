"""Import the authors' released Color2Embed checkpoint (``torch.save`` of a training state).

The file holds ``colorEncoder`` and ``colorUNet`` state dicts (with the unused VGG classifier,
conv5_3/conv5_4 and the ``vgg.vgg_feature`` aliases), the optimizer state ``g_optim`` and an
``argparse.Namespace`` of training options. It is read with ``torch.load(weights_only=True)``
and a one-entry allow-list (``argparse.Namespace``), so no pickled code can run, and converted
strictly into this project's own state dict layout.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import torch

from c2e_core.errors import CheckpointError, NotAnOfficialCheckpoint
from c2e_core.weights.build import (
    COLOR2EMBED,
    PRESETS,
    StateDictError,
    build_color2embed,
    load_state_strictly,
)
from c2e_core.weights.store import WeightsFile, load_failure, sha256_file, unsafe_objects

ENCODER_KEY = "colorEncoder"
UNET_KEY = "colorUNet"
#: Authors' VGG indices that the forward pass uses (conv layers up to conv5_2).
_USED_VGG = re.compile(r"^vgg\.vgg_model\.features\.(\d+)\.(weight|bias)$")
_LAST_USED_VGG_INDEX = 30
_IGNORED_ENCODER = (
    re.compile(r"^vgg\.vgg_feature\."),  # aliases of vgg.vgg_model.features
    re.compile(r"^vgg\.vgg_model\.classifier\."),  # the ImageNet classifier, never run
)


def read_official_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw checkpoint dict safely (``weights_only`` plus ``argparse.Namespace``)."""
    path = Path(path)
    if not path.is_file():
        raise NotAnOfficialCheckpoint(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # torch raises many types for foreign or damaged files
        refused = unsafe_objects(exc)
        if refused is not None:
            raise NotAnOfficialCheckpoint(f"{path}: refused unsafe content ({refused})") from None
        raise NotAnOfficialCheckpoint(
            f"{path}: not a readable PyTorch checkpoint ({load_failure(exc)})"
        ) from None
    if not isinstance(data, dict) or ENCODER_KEY not in data or UNET_KEY not in data:
        keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise NotAnOfficialCheckpoint(
            f"{path}: not a Color2Embed checkpoint (expected '{ENCODER_KEY}' and '{UNET_KEY}', "
            f"found {keys or 'nothing'})"
        )
    return data


def _strip_module_prefix(state: dict[str, Any]) -> dict[str, Any]:
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}


def official_to_project_state(
    encoder_state: dict[str, Any], unet_state: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """Map the authors' two state dicts onto :class:`~c2e_core.modeling.Color2Embed` names."""
    state: dict[str, torch.Tensor] = {}
    for key, tensor in _strip_module_prefix(encoder_state).items():
        if any(p.match(key) for p in _IGNORED_ENCODER):
            continue
        match = _USED_VGG.match(key)
        if match:
            if int(match.group(1)) <= _LAST_USED_VGG_INDEX:
                state[f"encoder.backbone.features.{match.group(1)}.{match.group(2)}"] = tensor
            continue  # conv5_3 / conv5_4: computed by the original, unused by its output
        state[f"encoder.{key}"] = tensor
    for key, tensor in _strip_module_prefix(unet_state).items():
        state[f"unet.{key}"] = tensor
    return state


def _json_safe(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return repr(value)


def convert_official_checkpoint(path: str | Path) -> WeightsFile:
    """Read and strictly convert an authors' checkpoint to the ``paper`` architecture.

    Raises :class:`CheckpointError` naming the first missing, unexpected or mis-shaped tensor.
    """
    return load_official_checkpoint(path)[0]


def load_official_checkpoint(path: str | Path) -> tuple[WeightsFile, torch.nn.Module]:
    """:func:`convert_official_checkpoint`, and the ``paper`` model it built and strictly
    loaded to check them (eval mode, CPU): built and loaded once."""
    path = Path(path)
    data = read_official_checkpoint(path)
    encoder_state, unet_state = data[ENCODER_KEY], data[UNET_KEY]
    if not isinstance(encoder_state, dict) or not isinstance(unet_state, dict):
        raise CheckpointError(f"{path}: '{ENCODER_KEY}'/'{UNET_KEY}' are not state dicts")
    state = official_to_project_state(encoder_state, unet_state)
    config = PRESETS["paper"]
    model = build_color2embed(config)
    expected = model.state_dict()
    for key, tensor in state.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is not a tensor")
    try:
        load_state_strictly(model, state)
    except StateDictError as exc:
        raise CheckpointError(f"{path}: {exc} (authors' checkpoint, paper architecture)") from None
    compact = {k: state[k].detach().to(expected[k].dtype).contiguous().clone() for k in expected}
    args = data.get("args")
    metadata = {
        "source": "official-checkpoint",
        "source_file": path.name,
        "source_sha256": sha256_file(path),
        "training_args": _json_safe(vars(args)) if isinstance(args, argparse.Namespace) else None,
    }
    weights = WeightsFile(COLOR2EMBED, config.to_dict(), compact, metadata, path=path)
    return weights, model
