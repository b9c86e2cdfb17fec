"""Training images from a folder: discovery, crops, a deterministic dataset and its loader.

Each item is ``(rgb, skipped)``: ``rgb`` a float32 ``[3, size, size]`` tensor in [0, 1] and
``skipped`` an ``int``, 1 when the requested file was unreadable and the next readable file (in
discovery order, wrapping around) was served in its place, else 0. The default collate turns a
batch into ``(rgb [B, 3, size, size], skipped [B] int64)``, so ``skipped.sum()`` reaches the
training loop even from DataLoader worker processes (a counter inside the dataset would not:
each worker holds its own copy). Summed over an epoch's batches (and ranks) it is the number of
unreadable files met that epoch; each one is also logged once per process on the
``c2e_core.data`` logger.

Randomness depends only on ``(seed, epoch, index)``, never on worker count or assignment, so a
resumed run sees the same crops. Lab conversion is left to :func:`batch_to_lab`, batched, on the
training device. Alpha is ignored; gray sources come out as gray RGB.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from c2e_core.errors import DatasetError
from c2e_core.files.images import ImageReadError, read_image
from c2e_core.modeling.color2embed import PAPER_SCALING, LabScaling
from c2e_core.modeling.colour import rgb_to_lab

__all__ = [
    "IMAGE_EXTENSIONS",
    "DatasetError",
    "CropRecipe",
    "ImageFolderDataset",
    "find_images",
    "crop_image",
    "batch_to_lab",
    "make_loader",
    "set_loader_epoch",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")
CROP_MODES = ("random", "center")

logger = logging.getLogger("c2e_core.data")


# --------------------------------------------------------------------------- discovery


def _normalise_extensions(extensions: Iterable[str]) -> frozenset[str]:
    exts = frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
    if not exts:
        raise ValueError("extensions must not be empty")
    return exts


def find_images(
    root: str | os.PathLike[str], extensions: Iterable[str] = IMAGE_EXTENSIONS
) -> list[Path]:
    """All image files under ``root``, recursively, sorted by relative path.

    Extensions match case-insensitively. Hidden folders and hidden files (names starting with
    ``.``, e.g. macOS ``._photo.jpg``) are skipped; symlinked folders are not followed. Raises
    :class:`DatasetError` if ``root`` is not a folder or holds no matching file.
    """
    base = Path(root)
    if not base.exists():
        raise DatasetError(f"image folder '{base}' not found")
    if not base.is_dir():
        raise DatasetError(f"'{base}' is not a folder")
    exts = _normalise_extensions(extensions)
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in exts:
                continue
            path = Path(dirpath) / name
            found.append((path.relative_to(base).as_posix(), path))
    if not found:
        wanted = ", ".join(sorted(exts))
        raise DatasetError(f"no images ({wanted}) found under '{base}'")
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


# --------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class CropRecipe:
    """How a training crop is cut from a photo.

    ``mode="random"``: a square whose side is ``s`` times the shorter side, ``s`` uniform in
    ``scale_range``, at a uniform random position, resized to ``size`` (Lanczos).
    ``mode="center"``: the authors' recipe, shorter side resized to ``size`` (Lanczos), then
    the centre ``size``² crop. ``hflip`` adds a random horizontal flip (p 0.5); the authors never
    augment the ground truth, so it is off by default.
    """

    size: int = 256
    mode: str = "random"
    scale_range: tuple[float, float] = (0.6, 1.0)
    hflip: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        if self.mode not in CROP_MODES:
            raise ValueError(f"mode must be one of {', '.join(CROP_MODES)}, got {self.mode!r}")
        scale = tuple(float(v) for v in self.scale_range)
        if len(scale) != 2 or not 0.0 < scale[0] <= scale[1] <= 1.0:
            raise ValueError(f"scale_range must be (low, high), 0 < low <= high <= 1, got {scale}")
        object.__setattr__(self, "scale_range", scale)
        object.__setattr__(self, "hflip", bool(self.hflip))

    def to_dict(self) -> dict[str, Any]:
        """Plain values (``scale_range`` as a list), fit for TOML / JSON."""
        return {
            "size": self.size,
            "mode": self.mode,
            "scale_range": list(self.scale_range),
            "hflip": self.hflip,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CropRecipe:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown crop recipe keys: {', '.join(unknown)}")
        values = dict(data)
        if "scale_range" in values:
            values["scale_range"] = tuple(values["scale_range"])
        return cls(**values)


def _resize_box(
    rgb: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """Lanczos-resample the ``box`` (left, top, right, bottom) of float ``[H, W, 3]`` to
    ``size`` (width, height), per channel in float32 (no 8-bit rounding), clipped to [0, 1]."""
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(rgb[:, :, c])).resize(
                size, Image.Resampling.LANCZOS, box=box
            )
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=2), 0.0, 1.0)


def crop_image(rgb: np.ndarray, recipe: CropRecipe, rng: np.random.Generator) -> np.ndarray:
    """Cut ``recipe``'s crop from float ``[H, W, 3]`` ``rgb``; float32 ``[size, size, 3]``.

    ``rng`` is drawn from only in ``"random"`` mode or with ``hflip``.
    """
    height, width = rgb.shape[:2]
    size = recipe.size
    if recipe.mode == "center":
        # torchvision Resize(size) + CenterCrop(size), as in the authors' training code.
        short, long = (width, height) if width <= height else (height, width)
        new_long = max(size, int(size * long / short))
        new_w, new_h = (size, new_long) if width <= height else (new_long, size)
        left = int(round((new_w - size) / 2.0))
        top = int(round((new_h - size) / 2.0))
        resized = _resize_box(rgb, (0.0, 0.0, float(width), float(height)), (new_w, new_h))
        out = resized[top : top + size, left : left + size]
    else:
        low, high = recipe.scale_range
        scale = float(rng.uniform(low, high))
        side = min(min(height, width), max(1, int(round(scale * min(height, width)))))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        box = (float(left), float(top), float(left + side), float(top + side))
        out = _resize_box(rgb, box, (size, size))
    if recipe.hflip and rng.random() < 0.5:
        out = out[:, ::-1]
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- dataset


class ImageFolderDataset(Dataset):
    """Crops of the images in a folder (or a list of files); items are ``(rgb, skipped)``.

    ``rgb``: float32 ``[3, size, size]`` in [0, 1]. ``skipped``: 1 if the file at ``index`` was
    unreadable and the next readable one (wrapping around) was served instead, else 0. The
    crop's randomness comes from ``numpy.random.default_rng((seed, epoch, index))`` with the
    *requested* index. Call :meth:`set_epoch` before each epoch; the epoch lives in shared
    memory, so persistent DataLoader workers see the change. Unreadable files are remembered
    and logged once per process; :class:`DatasetError` only if no file at all is readable.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        recipe: CropRecipe | None = None,
        seed: int = 0,
    ) -> None:
        if isinstance(root, (str, os.PathLike)):
            self.root: Path | None = Path(root)
            self.paths = find_images(self.root)
        else:
            self.root = None
            self.paths = [Path(p) for p in root]
            if not self.paths:
                raise DatasetError("the list of image files is empty")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.recipe = recipe if recipe is not None else CropRecipe()
        self.seed = seed
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._bad: dict[int, str] = {}  # index -> reason, per process

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def epoch(self) -> int:
        return int(self._epoch[0])

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops are served (visible to already-started workers)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self._epoch[0] = epoch

    @property
    def bad_files(self) -> dict[Path, str]:
        """Unreadable files met so far *in this process* (reason by path)."""
        return {self.paths[i]: reason for i, reason in self._bad.items()}

    def _read(self, index: int) -> np.ndarray | None:
        if index in self._bad:
            return None
        path = self.paths[index]
        try:
            image = read_image(path)
            if image.height < 1 or image.width < 1:
                raise ValueError("empty image")
        except (ImageReadError, OSError, ValueError) as exc:
            reason = str(exc) or type(exc).__name__
            if not isinstance(exc, ImageReadError):  # ImageReadError already names the file
                reason = f"cannot read image '{path}': {reason}"
            self._bad[index] = reason
            logger.warning("skipping unreadable training image: %s", reason)
            return None
        return image.rgb

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        n = len(self.paths)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        for step in range(n):
            rgb = self._read((index + step) % n)
            if rgb is not None:
                rng = np.random.default_rng((self.seed, self.epoch, index))
                crop = crop_image(rgb, self.recipe, rng)
                return torch.from_numpy(crop).permute(2, 0, 1).contiguous(), int(step > 0)
        where = f"under '{self.root}'" if self.root is not None else "in the given list"
        raise DatasetError(f"none of the {n} image files {where} could be read")


def batch_to_lab(rgb: Tensor, scaling: LabScaling = PAPER_SCALING) -> tuple[Tensor, Tensor]:
    """sRGB ``[B, 3, H, W]`` in [0, 1] -> the network's input L ``[B, 1, H, W]`` and its target
    ab ``[B, 2, H, W]`` in the model's ``scaling`` (the paper's: ``(L - 50) / 50``, ab / 110),
    float32 on ``rgb``'s device."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must have shape [B, 3, H, W], got {tuple(rgb.shape)}")
    lab = rgb_to_lab(rgb)
    return scaling.normalize_lightness(lab[:, :1]), scaling.output_from_ab(lab[:, 1:])


# --------------------------------------------------------------------------- loader


def make_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    workers: int,
    seed: int,
    shuffle: bool = True,
    drop_last: bool = True,
    distributed: tuple[int, int] | None = None,
) -> DataLoader:
    """A DataLoader whose order depends only on ``(seed, epoch)``.

    The sampler is always a :class:`DistributedSampler` (``num_replicas=1, rank=0`` unless
    ``distributed=(world_size, rank)``), so shuffling is reproducible per epoch and a resumed
    run sees the same order. The caller must call ``set_epoch(epoch)`` on **both** the dataset
    and ``loader.sampler`` before each epoch (:func:`set_loader_epoch` does both). Workers are
    persistent when ``workers > 0``; memory is pinned only when CUDA is available.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    world_size, rank = distributed if distributed is not None else (1, 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"distributed must be (world_size >= 1, 0 <= rank < world_size), got {distributed}"
        )
    sampler = DistributedSampler(
        dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
    )
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.cuda.is_available(),
        drop_last=drop_last,
        generator=generator,
    )


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Call ``set_epoch(epoch)`` on the loader's sampler and dataset (where they have one)."""
    for obj in (loader.sampler, loader.dataset):
        set_epoch = getattr(obj, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
