from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from c2e_core.files import images
from c2e_core.files.images import (
    ImageData,
    ImageReadError,
    ImageWriteError,
    decode_png16,
    encode_png16,
    from_array,
    pil_image_from,
    read_image,
    to_array,
    write_image,
)

RNG = np.random.default_rng(1234)


def _u8(*shape: int) -> np.ndarray:
    return RNG.integers(0, 256, size=shape, dtype=np.uint8)


def _u16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 65536, size=shape, dtype=np.uint16)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------- 8-bit Pillow kinds


def test_read_rgb_png_exact(tmp_path):
    arr = _u8(5, 7, 3)
    Image.fromarray(arr).save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    assert (img.mode, img.bit_depth, img.is_gray, img.alpha) == ("RGB", 8, False, None)
    assert img.rgb.dtype == np.float32 and (img.height, img.width) == (5, 7)
    np.testing.assert_array_equal(img.rgb, arr.astype(np.float32) / 255)


def test_read_gray_png_replicates_channels(tmp_path):
    arr = _u8(4, 6)
    Image.fromarray(arr, "L").save(tmp_path / "g.png")
    img = read_image(str(tmp_path / "g.png"))
    assert (img.mode, img.is_gray, img.bit_depth) == ("L", True, 8)
    for c in range(3):
        np.testing.assert_array_equal(img.rgb[:, :, c], arr / np.float32(255))


def test_read_la_and_rgba_alpha_untouched(tmp_path):
    la = _u8(4, 5, 2)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    img = read_image(tmp_path / "la.png")
    assert img.mode == "LA" and img.is_gray
    assert img.alpha is not None and img.alpha.dtype == np.uint8
    np.testing.assert_array_equal(img.alpha, la[:, :, 1])
    np.testing.assert_array_equal(img.rgb[:, :, 1], la[:, :, 0] / np.float32(255))

    rgba = _u8(4, 5, 4)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    img = read_image(tmp_path / "rgba.png")
    assert img.mode == "RGBA" and not img.is_gray
    np.testing.assert_array_equal(img.alpha, rgba[:, :, 3])
    np.testing.assert_array_equal(img.rgb, rgba[:, :, :3] / np.float32(255))


def test_read_palette_with_and_without_transparency(tmp_path):
    idx = np.array([[0, 1, 2], [2, 1, 0]], dtype=np.uint8)
    pal = [255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9)
    im = Image.fromarray(idx, "P")
    im.putpalette(pal)
    im.save(tmp_path / "p.png")
    im.save(tmp_path / "pt.png", transparency=bytes([255, 0, 128]))
    plain = read_image(tmp_path / "p.png")
    assert plain.mode == "P" and plain.alpha is None and not plain.is_gray
    np.testing.assert_array_equal(plain.rgb[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(plain.rgb[0, 2], [0, 0, 1])
    trans = read_image(tmp_path / "pt.png")
    assert trans.mode == "P" and trans.alpha is not None
    np.testing.assert_array_equal(trans.alpha, np.array([[255, 0, 128], [128, 0, 255]]))
    np.testing.assert_array_equal(trans.rgb, plain.rgb)


def test_read_gif_palette_transparency(tmp_path):
    idx = np.array([[0, 1], [1, 0]], dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette([10, 20, 30, 200, 100, 50] + [0] * 750)
    im.save(tmp_path / "t.gif", transparency=1)
    img = read_image(tmp_path / "t.gif")
    assert img.alpha is not None
    np.testing.assert_array_equal(img.alpha, np.array([[255, 0], [0, 255]]))
    np.testing.assert_allclose(img.rgb[0, 0], np.array([10, 20, 30]) / 255)


def test_read_cmyk_jpeg_converts_to_rgb(tmp_path):
    cmyk = np.zeros((16, 32, 4), dtype=np.uint8)
    cmyk[:, 16:, 0] = 255  # right half: full cyan -> (0, 1, 1)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.jpg", quality=100)
    img = read_image(tmp_path / "c.jpg")
    assert img.mode == "CMYK" and img.rgb.shape == (16, 32, 3) and img.alpha is None
    np.testing.assert_allclose(img.rgb[8, 4], [1, 1, 1], atol=0.03)
    np.testing.assert_allclose(img.rgb[8, 28], [0, 1, 1], atol=0.03)


def test_exif_orientation_6_rotates_jpeg(tmp_path):
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:10, :20] = 255  # bright top-left quadrant
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=100)
    img = read_image(tmp_path / "o.jpg")
    assert img.rgb.shape == (40, 20, 3)
    # Orientation 6: displayed rotated 90 degrees clockwise, top-left goes to top-right.
    assert img.rgb[5, 15].mean() > 0.9 and img.rgb[5, 5].mean() < 0.1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_numpy_orientation_matches_pillow(orientation):
    from PIL import ImageOps

    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    im = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(images._orient(arr, orientation), expected)


# --------------------------------------------------------------------------- 16-bit / float


def test_read_16bit_gray_png(tmp_path):
    arr = _u16(6, 5)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    img = read_image(tmp_path / "g16.png")
    assert img.bit_depth == 16 and img.is_gray and img.mode.startswith("I")
    np.testing.assert_allclose(img.rgb[:, :, 0], arr / 65535.0, atol=1e-7)
    np.testing.assert_array_equal(img.rgb[:, :, 0], img.rgb[:, :, 2])


@pytest.mark.parametrize("channels,mode", [(3, "RGB;16"), (4, "RGBA;16"), (2, "LA;16")])
def test_read_16bit_colour_png_full_precision(tmp_path, channels, mode):
    arr = _u16(9, 11, channels)
    (tmp_path / "c16.png").write_bytes(encode_png16(arr))
    img = read_image(tmp_path / "c16.png")
    assert img.bit_depth == 16 and img.mode == mode
    colour = arr[:, :, :1] if channels == 2 else arr[:, :, :3]
    np.testing.assert_allclose(img.rgb, np.broadcast_to(colour, (9, 11, 3)) / 65535.0, atol=1e-7)
    if channels in (2, 4):
        assert img.alpha is not None and img.alpha.dtype == np.uint16
        np.testing.assert_array_equal(img.alpha, arr[:, :, -1])
    else:
        assert img.alpha is None


def _reference_png16(arr: np.ndarray, interlace: bool, seed: int) -> bytes:
    """Independent slow PNG encoder: random filter type per row, optional Adam7."""
    rng = np.random.default_rng(seed)
    h, w, c = arr.shape
    bpp = 2 * c
    passes = [(0, 0, 1, 1)] if not interlace else list(images._ADAM7)
    raw = bytearray()
    for x0, y0, dx, dy in passes:
        sub = arr[y0::dy, x0::dx]
        if sub.size == 0:
            continue
        rows = [bytes(sub[y].astype(">u2").tobytes()) for y in range(sub.shape[0])]
        prev = bytes(len(rows[0]))
        for row in rows:
            ft = int(rng.integers(0, 5))
            out = bytearray([ft])
            for i, v in enumerate(row):
                a = row[i - bpp] if i >= bpp else 0
                b = prev[i]
                cc = prev[i - bpp] if i >= bpp else 0
                if ft == 0:
                    pred = 0
                elif ft == 1:
                    pred = a
                elif ft == 2:
                    pred = b
                elif ft == 3:
                    pred = (a + b) // 2
                else:
                    p = a + b - cc
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                out.append((v - pred) & 255)
            raw += out
            prev = row
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, int(interlace))
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            images._png_chunk(b"IHDR", ihdr),
            images._png_chunk(b"IDAT", zlib.compress(bytes(raw))),
            images._png_chunk(b"IEND", b""),
        ]
    )


@pytest.mark.parametrize("interlace", [False, True])
def test_png16_decoder_all_filters_and_adam7(interlace):
    arr = _u16(13, 11, 3)
    arr[4:9, 2:7] = 40000  # flat patch so Paeth/Average take every branch
    decoded, colour_type, _ = decode_png16(_reference_png16(arr, interlace, seed=7))
    assert colour_type == 2
    np.testing.assert_array_equal(decoded, arr)


def test_png16_decoder_matches_pillow_on_pillow_file(tmp_path):
    ramp = (np.arange(64 * 48, dtype=np.uint32) * 21).reshape(48, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "p.png")
    decoded, _, _ = decode_png16((tmp_path / "p.png").read_bytes())
    np.testing.assert_array_equal(decoded[:, :, 0], np.asarray(Image.open(tmp_path / "p.png")))


def test_png16_exif_orientation(tmp_path):
    arr = _u16(4, 6, 3)
    data = encode_png16(arr)
    exif = Image.Exif()
    exif[0x0112] = 8
    iend = data.rindex(b"IEND") - 4
    data = data[:iend] + images._png_chunk(b"eXIf", exif.tobytes()) + data[iend:]
    (tmp_path / "o.png").write_bytes(data)
    img = read_image(tmp_path / "o.png")
    assert img.rgb.shape == (6, 4, 3)
    np.testing.assert_allclose(img.rgb, np.rot90(arr, k=1) / 65535.0, atol=1e-7)


def test_png16_trns_colour_key_becomes_alpha():
    arr = _u16(3, 4, 3)
    arr[1, 2] = (1, 2, 3)
    data = encode_png16(arr)
    iend = data.rindex(b"IEND") - 4
    data = data[:iend] + images._png_chunk(b"tRNS", struct.pack(">3H", 1, 2, 3)) + data[iend:]
    decoded, _, _ = decode_png16(data)
    assert decoded.shape == (3, 4, 4)
    assert decoded[1, 2, 3] == 0 and (decoded[:, :, 3] == 0).sum() == 1


def test_read_float_gray_tiff_pillow(tmp_path):
    arr = RNG.random((5, 6), dtype=np.float32)
    arr[0, 0] = 1.5  # out of range -> clipped
    Image.fromarray(arr).save(tmp_path / "f.tif")
    img = read_image(tmp_path / "f.tif")
    assert (img.mode, img.bit_depth, img.is_gray) == ("F", 32, True)
    expected = np.clip(arr, 0, 1)
    np.testing.assert_array_equal(img.rgb[:, :, 0], expected)


def test_read_float_rgba_tiff_alpha_untouched(tmp_path):
    arr = RNG.random((5, 6, 4), dtype=np.float32)
    tifffile.imwrite(tmp_path / "f.tiff", arr, photometric="rgb", extrasamples=("unassalpha",))
    img = read_image(tmp_path / "f.tiff")
    assert (img.mode, img.bit_depth, img.is_gray) == ("RGBA;F", 32, False)
    np.testing.assert_array_equal(img.rgb, arr[:, :, :3])
    assert img.alpha is not None and img.alpha.dtype == np.float32
    np.testing.assert_array_equal(img.alpha, arr[:, :, 3])


def test_read_16bit_rgb_tiff_full_precision(tmp_path):
    arr = _u16(5, 4, 3)
    tifffile.imwrite(tmp_path / "c.tif", arr, photometric="rgb")
    img = read_image(tmp_path / "c.tif")
    assert (img.mode, img.bit_depth) == ("RGB;16", 16)
    np.testing.assert_allclose(img.rgb, arr / 65535.0, atol=1e-7)


# --------------------------------------------------------------------------- read errors


def test_missing_file_error_names_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.png") as info:
        read_image(tmp_path / "nope.png")
    assert "\n" not in str(info.value) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "name,payload",
    [
        ("junk.png", b"this is not an image at all"),
        ("empty.jpg", b""),
        ("cut.png", None),  # truncated real PNG
        ("cut16.png", "png16"),  # truncated 16-bit PNG (own decoder)
    ],
)
def test_corrupt_file_error_names_file(tmp_path, name, payload):
    if payload is None:
        Image.fromarray(_u8(64, 64, 3)).save(tmp_path / "full.png")
        payload = (tmp_path / "full.png").read_bytes()[:200]
    elif payload == "png16":
        payload = encode_png16(_u16(8, 8, 3))[:60]
    (tmp_path / name).write_bytes(payload)
    with pytest.raises(ImageReadError, match=name) as info:
        read_image(tmp_path / name)
    assert "\n" not in str(info.value)


def test_unsupported_tiff_sample_type(tmp_path):
    tifffile.imwrite(tmp_path / "u32.tif", np.zeros((3, 3, 3), np.uint32), photometric="rgb")
    with pytest.raises(ImageReadError, match="u32.tif"):
        read_image(tmp_path / "u32.tif")


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


# --------------------------------------------------------------------------- arrays


@pytest.mark.parametrize(
    "dtype,depth,maxval", [(np.uint8, 8, 255), (np.uint16, 16, 65535), (np.float32, 32, 1)]
)
def test_from_array_shapes(dtype, depth, maxval):
    base = (RNG.random((3, 4, 4)) * maxval).astype(dtype)
    gray = from_array(base[:, :, 0])
    assert gray.is_gray and gray.alpha is None and gray.bit_depth == depth
    np.testing.assert_allclose(gray.rgb[:, :, 2], base[:, :, 0] / maxval, atol=1e-7)
    assert from_array(base[:, :, :1]).is_gray
    la = from_array(base[:, :, :2])
    assert la.is_gray and la.alpha is not None and la.alpha.dtype == dtype
    np.testing.assert_array_equal(la.alpha, base[:, :, 1])
    rgb = from_array(base[:, :, :3])
    assert not rgb.is_gray and rgb.alpha is None
    np.testing.assert_allclose(rgb.rgb, base[:, :, :3] / maxval, atol=1e-7)
    rgba = from_array(base)
    np.testing.assert_array_equal(rgba.alpha, base[:, :, 3])
    assert from_array(base, has_alpha=False).alpha is None


def test_from_array_float64_and_errors():
    img = from_array(np.full((2, 2, 3), 2.0))
    assert img.rgb.dtype == np.float32 and img.rgb.max() == 1.0 and img.bit_depth == 32
    with pytest.raises(ValueError):
        from_array(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError):
        from_array(np.zeros((2, 2, 3), np.int32))
    with pytest.raises(ValueError):
        from_array(np.zeros((2, 2, 3), np.uint8), has_alpha=True)
    with pytest.raises(ValueError):
        from_array(np.zeros((2, 2, 2), np.uint8), has_alpha=False)


def test_to_array_rounding_and_truncation():
    img = from_array(np.zeros((1, 3, 3), np.uint8))
    rgb = np.zeros((1, 3, 3), np.float32)
    rgb[0, 0] = 0.5  # 127.5 -> 128 rounded, 127 truncated
    rgb[0, 1] = 2.0  # clipped
    rgb[0, 2] = 0.2
    out = to_array(img, rgb, np.uint8)
    assert out.dtype == np.uint8 and out.shape == (1, 3, 3)
    np.testing.assert_array_equal(out[0, :, 0], [128, 255, 51])
    np.testing.assert_array_equal(
        to_array(img, rgb, np.uint8, truncate=True)[0, :, 0], [127, 255, 51]
    )
    assert to_array(img, rgb, np.uint16)[0, 0, 0] == 32768
    np.testing.assert_array_equal(
        to_array(img, rgb, np.float32)[0, :, 0], np.float32([0.5, 1.0, 0.2])
    )
    with pytest.raises(ValueError):
        to_array(img, np.zeros((2, 2, 3)), np.uint8)


def test_to_array_alpha_pass_through_and_scaling():
    alpha16 = np.array([[0, 1, 257, 65535]], dtype=np.uint16)
    img = from_array(np.concatenate([_u16(1, 4, 3), alpha16[:, :, None]], axis=2))
    rgb = img.rgb
    out16 = to_array(img, rgb, np.uint16)
    assert out16.dtype == np.uint16
    np.testing.assert_array_equal(out16[:, :, 3], alpha16)
    np.testing.assert_array_equal(to_array(img, rgb, np.uint8)[:, :, 3], [[0, 0, 1, 255]])
    np.testing.assert_allclose(to_array(img, rgb, np.float32)[:, :, 3], alpha16 / 65535.0)
    alpha8 = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    img8 = from_array(np.concatenate([_u8(1, 4, 3), alpha8[:, :, None]], axis=2))
    np.testing.assert_array_equal(
        to_array(img8, img8.rgb, np.uint16)[:, :, 3], alpha8.astype(np.uint16) * 257
    )


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png16_write_read_bit_exact(tmp_path, channels):
    arr = _u16(7, 9, channels)
    colour = arr[:, :, 0] if channels == 1 else arr[:, :, :3]
    alpha = arr[:, :, 3] if channels == 4 else None
    write_image(tmp_path / "o.png", colour.astype(np.float32) / 65535, alpha, bit_depth=16)
    img = read_image(tmp_path / "o.png")
    assert img.bit_depth == 16 and _files(tmp_path) == ["o.png"]
    back = to_array(img, img.rgb, np.uint16)
    np.testing.assert_array_equal(
        back[:, :, :3], np.broadcast_to(colour[..., None], (7, 9, 3)) if channels == 1 else colour
    )
    if alpha is not None:
        assert img.alpha.dtype == np.uint16
        np.testing.assert_array_equal(img.alpha, alpha)
    # Pillow agrees on what the file holds (it reads the high bytes of 16-bit colour PNGs).
    with Image.open(tmp_path / "o.png") as im:
        assert im.size == (9, 7)


def test_png8_and_tiff_roundtrips(tmp_path):
    arr = _u8(6, 5, 4)
    write_image(tmp_path / "o.png", arr[:, :, :3], arr[:, :, 3])
    img = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(to_array(img, img.rgb, np.uint8), arr)
    write_image(tmp_path / "o8.tif", arr[:, :, :3], arr[:, :, 3])
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o8.tif"), arr)
    arr16 = _u16(6, 5, 3)
    write_image(tmp_path / "o16.tiff", arr16, bit_depth=16)
    img = read_image(tmp_path / "o16.tiff")
    np.testing.assert_array_equal(to_array(img, img.rgb, np.uint16), arr16)
    flt = RNG.random((6, 5, 3), dtype=np.float32)
    write_image(tmp_path / "of.tif", flt, bit_depth=32)
    img = read_image(tmp_path / "of.tif")
    assert img.bit_depth == 32
    np.testing.assert_array_equal(img.rgb, flt)


def test_lossy_formats(tmp_path):
    flat = np.full((16, 16, 3), 0.4, np.float32)
    write_image(tmp_path / "o.jpg", flat)
    np.testing.assert_allclose(read_image(tmp_path / "o.jpg").rgb, flat, atol=2 / 255)
    alpha = np.full((16, 16), 77, np.uint8)
    write_image(tmp_path / "o.webp", flat, alpha)
    img = read_image(tmp_path / "o.webp")
    np.testing.assert_allclose(img.rgb, flat, atol=3 / 255)
    np.testing.assert_array_equal(img.alpha, alpha)


def test_write_validation_happens_before_writing(tmp_path):
    rgb = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(ImageWriteError, match=r"o\.bmpx"):
        write_image(tmp_path / "o.bmpx", rgb)
    with pytest.raises(ImageWriteError, match="alpha"):
        write_image(tmp_path / "o.jpg", rgb, np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageWriteError, match="bit depth"):
        write_image(tmp_path / "o.jpg", rgb, bit_depth=16)
    with pytest.raises(ImageWriteError):
        write_image(tmp_path / "o.png", np.zeros((4, 4, 5), np.float32))
    with pytest.raises(ImageWriteError, match="not found"):
        write_image(tmp_path / "missing" / "o.png", rgb)
    assert _files(tmp_path) == []


def test_atomic_write_cleans_up_on_encoder_failure(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("encoder exploded")

    monkeypatch.setattr(images, "encode_png16", boom)
    with pytest.raises(RuntimeError, match="exploded"):
        write_image(tmp_path / "o.png", np.zeros((4, 4, 3), np.float32), bit_depth=16)
    assert _files(tmp_path) == []


def test_atomic_write_keeps_old_file_on_partial_failure(tmp_path, monkeypatch):
    dest = tmp_path / "o.png"
    write_image(dest, np.zeros((4, 4, 3), np.float32))
    before = dest.read_bytes()
    real_save = Image.Image.save

    def partial_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as fh:
            fh.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", partial_save)
    with pytest.raises(ImageWriteError, match="No space left") as info:
        write_image(dest, np.ones((4, 4, 3), np.float32))
    assert "o.png" in str(info.value)
    monkeypatch.setattr(Image.Image, "save", real_save)
    assert _files(tmp_path) == ["o.png"] and dest.read_bytes() == before


def test_written_file_respects_umask(tmp_path):
    write_image(tmp_path / "o.png", np.zeros((2, 2, 3), np.float32))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_pil_image_from_modes():
    rgb = np.zeros((2, 3, 3), np.float32)
    assert pil_image_from(rgb).mode == "RGB"
    assert pil_image_from(rgb, np.full((2, 3), 65535, np.uint16)).getpixel((0, 0)) == (0, 0, 0, 255)
    assert pil_image_from(rgb[:, :, 0]).mode == "L"
    assert isinstance(from_array(np.zeros((2, 2), np.uint8)), ImageData)


def test_trns_colour_key_in_8bit_rgb_and_gray_png(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "rgb.png", transparency=(1, 2, 3))
    img = read_image(tmp_path / "rgb.png")
    np.testing.assert_array_equal(img.alpha, [[0, 255], [255, 255]])
    gray = np.zeros((2, 2), np.uint8)
    gray[1, 1] = 9
    Image.fromarray(gray).save(tmp_path / "g.png", transparency=9)
    img = read_image(tmp_path / "g.png")
    assert img.is_gray
    np.testing.assert_array_equal(img.alpha, [[255, 255], [255, 0]])


def test_quantise_in_row_slices_equals_one_pass(monkeypatch):
    """Quantising works through the rows in slices (no float copy of a huge image)."""
    from c2e_core.files import images

    x = np.random.default_rng(3).random((37, 11, 3), dtype=np.float32) * 1.2 - 0.1
    x[0, 0, 0], x[5, 5, 1] = np.nan, np.inf
    whole = images.quantise(x, np.uint16)
    monkeypatch.setattr(images, "STRIP_PIXELS", 50)
    np.testing.assert_array_equal(images.quantise(x, np.uint16), whole)
    expected = np.floor(np.clip(np.nan_to_num(x, nan=0.0), 0, 1) * 65535 + 0.5).astype(np.uint16)
    np.testing.assert_array_equal(whole, expected)
