"""Synthetic checkpoints in the authors' exact file format (weights by the parity recipe)."""

from __future__ import annotations

import argparse
import json
import math
import zlib
from pathlib import Path

import torch

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "official-a"


def official_keys() -> list[dict]:
    return json.loads((FIXTURE_DIR / "official_keys.json").read_text())["keys"]


def _gain(key: str) -> float:
    if key.startswith(("vgg.", "feature2vector.")):
        return 2.0
    if "modulation" in key:
        return 4.0
    if key.startswith("outc.2."):
        return 0.25
    return 1.0


def recipe_tensor(key: str, shape: list[int], salt: str = "") -> torch.Tensor:
    """The fixture README's deterministic weight for one entry."""
    g = torch.Generator().manual_seed(zlib.crc32((salt + key).encode()))
    if key.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var"):
        return 0.5 + torch.rand(shape, generator=g)
    if key.endswith("running_mean"):
        return 0.1 * torch.randn(shape, generator=g)
    if key.endswith(".weight") and len(shape) == 1:
        return 1 + 0.1 * torch.randn(shape, generator=g)
    if key.endswith(".bias"):
        return 0.05 * torch.randn(shape, generator=g)
    if key.endswith("SDFT.weight"):
        return torch.randn(shape, generator=g)
    fan_in = math.prod(shape[1:])
    return torch.randn(shape, generator=g) * math.sqrt(_gain(key) / fan_in)


def official_state_dicts(
    salt: str = "", classifier: bool = True, small_classifier: bool = False
) -> dict[str, dict[str, torch.Tensor]]:
    """Both state dicts with every entry the authors' file has, aliases sharing storage."""
    nets: dict[str, dict[str, torch.Tensor]] = {"colorEncoder": {}, "colorUNet": {}}
    for entry in official_keys():
        key, shape = entry["key"], entry["shape"]
        if key.startswith("vgg.vgg_feature."):
            continue
        if key.startswith("vgg.vgg_model.classifier."):
            if not classifier:
                continue
            if small_classifier:
                shape = [min(s, 8) for s in shape]
            nets[entry["net"]][key] = torch.zeros(shape) if small_classifier else torch.empty(shape)
            continue
        nets[entry["net"]][key] = recipe_tensor(key, shape, salt)
    encoder = nets["colorEncoder"]
    for key in list(encoder):
        if key.startswith("vgg.vgg_model.features."):
            encoder[key.replace("vgg.vgg_model.features.", "vgg.vgg_feature.")] = encoder[key]
    # Keep the authors' key order (aliases sit where official_keys.json puts them).
    order = {e["key"]: i for i, e in enumerate(official_keys())}
    return {
        net: dict(sorted(s.items(), key=lambda kv: order.get(kv[0], 0))) for net, s in nets.items()
    }


def write_official_checkpoint(
    path: Path,
    *,
    module_prefix: bool = False,
    small_classifier: bool = True,
    salt: str = "",
    tamper: dict | None = None,
) -> Path:
    """Write ``{"colorEncoder", "colorUNet", "g_optim", "args"}`` like the authors' trainer.

    ``tamper`` maps (net, key) to a tensor (or ``None`` to delete the entry) to make bad files.
    """
    nets = official_state_dicts(salt, small_classifier=small_classifier)
    for (net, key), value in (tamper or {}).items():
        if value is None:
            nets[net].pop(key)
        else:
            nets[net][key] = value
    if module_prefix:
        nets = {net: {f"module.{k}": v for k, v in s.items()} for net, s in nets.items()}
    params = [torch.zeros(3), torch.zeros(2, 2)]
    optimizer = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.99))
    for p in params:
        p.grad = torch.ones_like(p)
    optimizer.step()
    args = argparse.Namespace(
        batch=8, iter=45000, lr=1e-4, size=256, datasets="ImageNet", ckpt=None, local_rank=0
    )
    torch.save({**nets, "g_optim": optimizer.state_dict(), "args": args}, path)
    return path
