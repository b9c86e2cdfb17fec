"""The folder dataset: discovery, crops, determinism, bad files, loaders, Lab batches."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from c2e_core.data.folder import (
    CropRecipe,
    DatasetError,
    ImageFolderDataset,
    batch_to_lab,
    find_images,
    make_loader,
    set_loader_epoch,
)
from c2e_core.files.images import write_image

SIZE = 24


def _pattern(height: int, width: int, phase: float = 0.0) -> np.ndarray:
    """A smooth, asymmetric float RGB image in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / max(width - 1, 1)
    g = y / max(height - 1, 1)
    b = 0.5 + 0.5 * np.sin(x / 5.0 + y / 7.0 + phase)
    return np.stack([r, g, b], axis=2).astype(np.float32)


def _palette_image(path: Path) -> None:
    arr = np.zeros((40, 30), dtype=np.uint8)
    arr[:, 15:] = 1
    im = Image.fromarray(arr, mode="P")
    im.putpalette([255, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    im.save(path)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / ".hidden").mkdir()
    write_image(root / "a.jpg", _pattern(40, 56, 0.0))
    write_image(root / "sub" / "b.PNG", _pattern(50, 36, 1.0))
    write_image(root / "sub" / "deep" / "c16.png", _pattern(33, 47, 2.0), bit_depth=16)
    write_image(root / "sub" / "d.webp", _pattern(44, 44, 3.0))
    write_image(root / "e.tiff", _pattern(30, 64, 4.0), bit_depth=16)
    _palette_image(root / "f_palette.png")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 5)
    (root / "notes.txt").write_text("not an image")
    write_image(root / ".hidden" / "g.jpg", _pattern(32, 32))
    write_image(root / "._h.jpg", _pattern(32, 32))
    return root


def _rel(root: Path, paths: list[Path]) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


# --------------------------------------------------------------------------- discovery


def test_find_images_recursive_sorted_and_filtered(tree: Path) -> None:
    assert _rel(tree, find_images(tree)) == [
        "a.jpg",
        "corrupt.jpg",
        "e.tiff",
        "f_palette.png",
        "sub/b.PNG",
        "sub/d.webp",
        "sub/deep/c16.png",
    ]
    assert _rel(tree, find_images(tree, extensions=("PNG",))) == [
        "f_palette.png",
        "sub/b.PNG",
        "sub/deep/c16.png",
    ]


def test_find_images_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        find_images(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="no images"):
        find_images(tmp_path)
    with pytest.raises(DatasetError, match="not a folder"):
        find_images(tmp_path / "notes.txt")
    assert issubclass(DatasetError, ValueError)


# --------------------------------------------------------------------------- recipe


def test_crop_recipe_round_trip_and_validation() -> None:
    recipe = CropRecipe(size=128, mode="center", scale_range=(0.5, 0.9), hflip=True)
    assert CropRecipe.from_dict(recipe.to_dict()) == recipe
    assert CropRecipe.from_dict({}) == CropRecipe()
    assert CropRecipe.from_dict({"scale_range": [0.7, 1]}).scale_range == (0.7, 1.0)
    with pytest.raises(ValueError, match="bogus, colour"):
        CropRecipe.from_dict({"size": 64, "colour": 1, "bogus": 2})
    for bad in (
        {"size": 0},
        {"mode": "zoom"},
        {"scale_range": (0.0, 1.0)},
        {"scale_range": (0.9, 0.5)},
        {"scale_range": (0.5, 1.5)},
    ):
        with pytest.raises(ValueError):
            CropRecipe(**bad)


# --------------------------------------------------------------------------- items


def test_items_shape_dtype_range_and_formats(tree: Path) -> None:
    ds = ImageFolderDataset(tree, CropRecipe(size=SIZE), seed=1)
    assert len(ds) == 7
    names = [p.name for p in ds.paths]
    for i in range(len(ds)):
        rgb, skipped = ds[i]
        assert rgb.shape == (3, SIZE, SIZE) and rgb.dtype == torch.float32
        assert 0.0 <= float(rgb.min()) and float(rgb.max()) <= 1.0
        assert skipped == (1 if names[i] == "corrupt.jpg" else 0)
    # the palette image (red left half, blue right half) comes out in colour
    rgb, _ = ImageFolderDataset([tree / "f_palette.png"], CropRecipe(size=SIZE, mode="center"))[0]
    assert rgb[0, :, :4].mean() > 0.95 and rgb[2, :, :4].mean() < 0.05
    assert rgb[2, :, -4:].mean() > 0.95 and rgb[0, :, -4:].mean() < 0.05
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_16bit_precision_is_kept(tmp_path: Path) -> None:
    value = 1000 / 65535  # between two 8-bit codes
    write_image(tmp_path / "flat.png", np.full((20, 30, 3), value, np.float32), bit_depth=16)
    rgb, _ = ImageFolderDataset(tmp_path, CropRecipe(size=16, mode="center"))[0]
    assert torch.allclose(rgb, torch.full_like(rgb, value), atol=2e-6)


@pytest.mark.parametrize("height,width", [(48, 64), (64, 48), (50, 77), (40, 40)])
def test_center_mode_matches_authors_resize_and_center_crop(
    tmp_path: Path, height: int, width: int
) -> None:
    path = tmp_path / "gradient.png"
    src = (_pattern(height, width) * 255 + 0.5).astype(np.uint8)
    Image.fromarray(src).save(path)
    size = 32
    # torchvision Resize(size, LANCZOS) + CenterCrop(size) on the PIL image, written out.
    with Image.open(path) as im:
        w, h = im.size
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        resized = im.convert("RGB").resize((new_w, new_h), Image.Resampling.LANCZOS)
        left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
        expected = np.asarray(resized.crop((left, top, left + size, top + size))) / 255.0
    rgb, skipped = ImageFolderDataset([path], CropRecipe(size=size, mode="center"))[0]
    assert skipped == 0
    got = rgb.permute(1, 2, 0).numpy()
    np.testing.assert_allclose(got, expected, atol=1.5 / 255)


def test_random_mode_full_scale_on_square_equals_plain_resize(tmp_path: Path) -> None:
    write_image(tmp_path / "sq.png", _pattern(40, 40), bit_depth=16)
    full = CropRecipe(size=SIZE, mode="random", scale_range=(1.0, 1.0))
    center = CropRecipe(size=SIZE, mode="center")
    a, _ = ImageFolderDataset(tmp_path, full)[0]
    b, _ = ImageFolderDataset(tmp_path, center)[0]
    torch.testing.assert_close(a, b)


def test_random_crops_vary_and_hflip(tmp_path: Path) -> None:
    write_image(tmp_path / "sq.png", _pattern(40, 40), bit_depth=16)
    base, _ = ImageFolderDataset(tmp_path, CropRecipe(size=SIZE, mode="center"))[0]
    flip = ImageFolderDataset(
        tmp_path, CropRecipe(size=SIZE, scale_range=(1.0, 1.0), hflip=True), seed=5
    )
    flipped = 0
    for epoch in range(12):
        flip.set_epoch(epoch)
        out, _ = flip[0]
        if torch.equal(out, base.flip(-1)):
            flipped += 1
        else:
            assert torch.equal(out, base)
    assert 0 < flipped < 12
    ds = ImageFolderDataset(tmp_path, CropRecipe(size=SIZE, scale_range=(0.3, 0.7)))
    crops = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        crops.append(ds[0][0])
    assert all(not torch.equal(crops[0], c) for c in crops[1:])


# --------------------------------------------------------------------------- determinism


def test_same_seed_epoch_index_gives_identical_crops(tree: Path) -> None:
    recipe = CropRecipe(size=SIZE)
    a, b = ImageFolderDataset(tree, recipe, seed=7), ImageFolderDataset(tree, recipe, seed=7)
    for i in (0, 3, 6):
        assert torch.equal(a[i][0], b[i][0])
    a.set_epoch(1)
    assert a.epoch == 1
    assert not torch.equal(a[0][0], b[0][0])
    b.set_epoch(1)
    assert torch.equal(a[0][0], b[0][0])
    other = ImageFolderDataset(tree, recipe, seed=8)
    other.set_epoch(1)
    assert not torch.equal(a[0][0], other[0][0])
    with pytest.raises(ValueError):
        a.set_epoch(-1)
    with pytest.raises(ValueError):
        ImageFolderDataset(tree, recipe, seed=-1)


# --------------------------------------------------------------------------- bad files


def test_corrupt_file_is_skipped_counted_and_logged_once(
    tree: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ds = ImageFolderDataset(tree, CropRecipe(size=SIZE, mode="center"))
    bad = [p.name for p in ds.paths].index("corrupt.jpg")
    with caplog.at_level(logging.WARNING, logger="c2e_core.data"):
        rgb, skipped = ds[bad]
        again, skipped_again = ds[bad]
    assert skipped == skipped_again == 1
    assert torch.equal(rgb, ds[bad + 1][0])  # "center" mode: the next file's crop
    assert torch.equal(rgb, again)
    records = [r for r in caplog.records if r.name == "c2e_core.data"]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "corrupt.jpg" in records[0].getMessage()
    assert list(ds.bad_files) == [tree / "corrupt.jpg"]


def test_bad_last_file_wraps_around(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", _pattern(20, 20))
    (tmp_path / "z.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    ds = ImageFolderDataset(tmp_path, CropRecipe(size=8, mode="center"))
    rgb, skipped = ds[1]
    assert skipped == 1 and torch.equal(rgb, ds[0][0])


def test_all_files_unreadable_raises(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.png"):
        (tmp_path / name).write_bytes(b"garbage")
    ds = ImageFolderDataset(tmp_path, CropRecipe(size=8))
    with pytest.raises(DatasetError, match="none of the 2 image files"):
        ds[0]
    with pytest.raises(DatasetError):
        ImageFolderDataset([], CropRecipe(size=8))
    missing = ImageFolderDataset([tmp_path / "gone.png", tmp_path / "a.jpg"], CropRecipe(size=8))
    with pytest.raises(DatasetError, match="in the given list"):
        missing[1]


# --------------------------------------------------------------------------- loaders


def _epochs(loader, epochs) -> list[tuple[torch.Tensor, int]]:
    out = []
    for epoch in epochs:
        set_loader_epoch(loader, epoch)
        batches = list(loader)
        out.append((torch.cat([b[0] for b in batches]), sum(int(b[1].sum()) for b in batches)))
    return out


def test_loader_with_workers_is_reproducible_and_reports_skips(tree: Path) -> None:
    def run(workers: int, epochs) -> list[tuple[torch.Tensor, int]]:
        ds = ImageFolderDataset(tree, CropRecipe(size=SIZE), seed=3)
        loader = make_loader(ds, 3, workers=workers, seed=11, drop_last=False)
        assert loader.persistent_workers == (workers > 0)
        return _epochs(loader, epochs)

    first = run(2, [0, 1])
    second = run(2, [0, 1])
    for (x, sx), (y, sy) in zip(first, second, strict=True):
        assert torch.equal(x, y) and sx == sy == 1  # one corrupt file per epoch
        assert x.shape == (7, 3, SIZE, SIZE)
    # epoch 1 differs from epoch 0, even with persistent workers started in epoch 0
    assert not torch.equal(first[0][0], first[1][0])
    # the same data without workers, and when resuming directly at epoch 1
    serial = run(0, [0, 1])
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, serial, strict=True))
    resumed = run(0, [1])
    assert torch.equal(resumed[0][0], first[1][0])


def test_loader_shuffles_and_distributes(tree: Path) -> None:
    ds = ImageFolderDataset(tree, CropRecipe(size=SIZE))
    loader = make_loader(ds, 2, workers=0, seed=1)
    assert len(loader) == 3  # drop_last: 7 items, batches of 2
    order0 = list(loader.sampler)
    set_loader_epoch(loader, 1)
    assert sorted(order0) == list(range(7)) and list(loader.sampler) != order0
    assert ds.epoch == 1
    straight = make_loader(ds, 2, workers=0, seed=1, shuffle=False)
    assert list(straight.sampler) == list(range(7))
    parts = [
        list(make_loader(ds, 2, workers=0, seed=1, distributed=(2, r)).sampler) for r in (0, 1)
    ]
    assert len(parts[0]) == len(parts[1]) == 4
    assert set(parts[0]) | set(parts[1]) == set(range(7))
    with pytest.raises(ValueError):
        make_loader(ds, 2, workers=0, seed=1, distributed=(2, 2))


# --------------------------------------------------------------------------- Lab


def test_batch_to_lab_matches_skimage() -> None:
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    rgb = rng.random((3, 3, 10, 12), dtype=np.float32)
    rgb[0, :, 0, 0] = 0.0
    rgb[0, :, 0, 1] = 1.0
    l_norm, ab = batch_to_lab(torch.from_numpy(rgb))
    assert l_norm.shape == (3, 1, 10, 12) and ab.shape == (3, 2, 10, 12)
    assert l_norm.dtype == ab.dtype == torch.float32
    lab = np.stack([rgb2lab(img.transpose(1, 2, 0).astype(np.float64)) for img in rgb])
    lab = lab.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(l_norm.numpy(), (lab[:, :1] - 50) / 50, atol=1e-3)
    np.testing.assert_allclose(ab.numpy(), lab[:, 1:] / 110, atol=1e-3)
    with pytest.raises(ValueError):
        batch_to_lab(torch.zeros(3, 4, 4))
