"""Colour management: embedded ICC profiles converted to sRGB and back, checked against LittleCMS
(Pillow's ImageCms) with real Adobe RGB (1998) and Display P3 profiles (``tests/icc_profiles``)."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from c2e_core.files import colour_profiles
from c2e_core.files.colour_profiles import ProfileWarning, from_srgb, to_srgb
from c2e_core.files.images import (
    ImageWriteError,
    decode_png16,
    encode_png16,
    from_array,
    read_image,
    write_image,
)
from tests import icc_profiles

RGB_PROFILES = {
    "adobe-rgb": icc_profiles.adobe_rgb,
    "display-p3": icc_profiles.display_p3,
    "srgb-table": icc_profiles.srgb_table,
}
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _levels(values: np.ndarray, top: int = 255) -> np.ndarray:
    return np.floor(np.asarray(values, np.float64) * top + 0.5).astype(np.int64)


def _cube(step: int = 5) -> np.ndarray:
    """uint8 ``[1, N, 3]``: a grid through the RGB cube, its corners and edges included."""
    axis = np.r_[np.arange(0, 255, step), 255]
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)
    return grid.reshape(1, -1, 3).astype(np.uint8)


def littlecms(data: bytes, pixels: np.ndarray, *, inverse: bool = False, mode: str = "RGB"):
    """LittleCMS's 8-bit conversion of ``pixels`` between the profile ``data`` and sRGB."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
    ends = ((SRGB, "RGB"), (profile, mode)) if inverse else ((profile, mode), (SRGB, "RGB"))
    transform = ImageCms.buildTransform(
        ends[0][0], ends[1][0], ends[0][1], ends[1][1], ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    return np.asarray(ImageCms.applyTransform(Image.fromarray(pixels), transform)).astype(int)


def quiet_to_srgb(rgb, data, *, is_gray=False, bit_depth=8):
    """:func:`to_srgb`, failing the test on any :class:`ProfileWarning`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProfileWarning)
        return to_srgb(rgb, data, is_gray=is_gray, bit_depth=bit_depth, source="test.png")


def warned_to_srgb(rgb, data, *, is_gray=False, bit_depth=8):
    """:func:`to_srgb` and the messages of the :class:`ProfileWarning` s it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = to_srgb(rgb, data, is_gray=is_gray, bit_depth=bit_depth, source="test.png")
    return result, [str(w.message) for w in caught if w.category is ProfileWarning]


# --------------------------------------------------------------------------- the profiles


@pytest.mark.parametrize(
    "make, description, space",
    [
        (icc_profiles.adobe_rgb, "Adobe RGB (1998) test", "RGB"),
        (icc_profiles.display_p3, "Display P3 test", "RGB"),
        (icc_profiles.srgb_table, "sRGB table test", "RGB"),
        (icc_profiles.gray_gamma, "Gray gamma 2.2 test", "GRAY"),
        (icc_profiles.lut_rgb, "Adobe RGB LUT test", "RGB"),
    ],
)
def test_littlecms_reads_the_test_profiles(make, description, space):
    profile = ImageCms.ImageCmsProfile(io.BytesIO(make())).profile
    assert profile.profile_description == description
    assert profile.xcolor_space.strip() == space == colour_profiles.colour_space(make())


def test_the_adobe_rgb_colorants_are_those_of_the_published_profile():
    """Adobe's primaries adapted to D50 with Bradford, as in Adobe's own profile (and in
    icc-profiles-free's compatibleWithAdobeRGB1998.icc) to the 4th decimal."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profiles.adobe_rgb())).profile
    np.testing.assert_allclose(profile.red_colorant[0], (0.6097, 0.3111, 0.0195), atol=6e-5)
    np.testing.assert_allclose(profile.green_colorant[0], (0.2053, 0.6257, 0.0609), atol=6e-5)
    np.testing.assert_allclose(profile.blue_colorant[0], (0.1492, 0.0632, 0.7446), atol=6e-5)


# --------------------------------------------------------------------------- against LittleCMS


@pytest.mark.parametrize("name", sorted(RGB_PROFILES))
def test_conversions_agree_with_littlecms_on_8bit_values_within_one_level(name):
    """Measured on this 52^3 grid: at most 1 level both ways, 98.4-100 % of values identical
    (LittleCMS's 8-bit transforms work in 1.14 fixed point)."""
    data, pixels = RGB_PROFILES[name](), _cube()
    srgb, kept = quiet_to_srgb(pixels / np.float32(255), data)
    assert kept == data
    diff = np.abs(_levels(srgb) - littlecms(data, pixels))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.98
    back = np.abs(_levels(from_srgb(pixels / np.float32(255), data)) - littlecms(
        data, pixels, inverse=True))  # fmt: skip
    assert back.max() <= 1 and (back == 0).mean() > 0.98


@pytest.mark.parametrize("name", ["adobe-rgb", "display-p3"])
def test_16bit_values_convert_to_a_float64_reference_within_half_a_level(name):
    """The reference is built from LittleCMS's reading of the profile's colorants, in float64:
    no 8-bit step anywhere."""
    data = RGB_PROFILES[name]()
    profile = ImageCms.ImageCmsProfile(io.BytesIO(data)).profile
    to_xyz = np.array(
        [profile.red_colorant[0], profile.green_colorant[0], profile.blue_colorant[0]]
    ).T
    srgb_to_xyz = icc_profiles.colorants(icc_profiles.SRGB_PRIMARIES)
    rng = np.random.default_rng(3)
    samples = rng.integers(0, 65536, (64, 64, 3)).astype(np.uint16)
    x = samples / 65535.0
    if name == "adobe-rgb":  # the gamma as stored: u8Fixed8
        linear = x ** (round(icc_profiles.ADOBE_GAMMA * 256) / 256)
    else:  # the curve's parameters as stored: s15Fixed16
        g, a, b, c, d = (round(p * 65536) / 65536 for p in icc_profiles.SRGB_PARA)
        linear = np.where(x >= d, (a * x + b) ** g, c * x)
    expected = np.clip(linear @ np.linalg.solve(srgb_to_xyz, to_xyz).T, 0, 1)
    expected = np.where(
        expected <= 0.0031308, expected * 12.92, 1.055 * expected ** (1 / 2.4) - 0.055
    )
    got, _ = quiet_to_srgb((samples / np.float32(65535)).astype(np.float32), data, bit_depth=16)
    assert np.abs(got - expected).max() * 65535 < 0.5


@pytest.mark.parametrize("name", sorted(RGB_PROFILES))
def test_srgb_goes_to_the_profile_and_back_unchanged(name):
    data = RGB_PROFILES[name]()
    srgb = np.random.default_rng(5).random((32, 32, 3), dtype=np.float32)
    back, _ = quiet_to_srgb(from_srgb(srgb, data), data, bit_depth=32)
    error = np.abs(back - srgb)
    # A 16-bit level is 1.5e-5. The largest errors are near-zero channels of colours on sRGB's
    # red-blue edge, which the profile's colorants (16-bit fixed point) put a hair outside it.
    assert error.max() < 6e-5 and np.mean(error < 1.5e-5) > 0.999


def test_a_gray_profile_converts_gray_to_neutral_srgb_like_littlecms():
    data, values = icc_profiles.gray_gamma(), np.arange(256, dtype=np.uint8)[None]
    rgb = np.repeat((values / np.float32(255))[..., None], 3, axis=2)
    srgb, kept = quiet_to_srgb(rgb, data, is_gray=True)
    assert kept is None  # a colorized gray image is colour: its output is sRGB
    assert np.ptp(srgb, axis=2).max() == 0
    assert np.abs(_levels(srgb) - littlecms(data, values, mode="L")).max() <= 1


# --------------------------------------------------------------------------- curves


@pytest.mark.parametrize(
    "tag",
    [
        icc_profiles.curv_gamma(1.8),
        icc_profiles.para(0, [2.2]),
        icc_profiles.para(1, [2.2, 1.05, -0.05]),
        icc_profiles.para(2, [2.2, 1.05, -0.05, 0.01]),
        icc_profiles.para(3, icc_profiles.SRGB_PARA),
        icc_profiles.para(4, [2.4, 0.9, 0.1, 0.08, 0.05, 0.001, 0.002]),
        icc_profiles.curv_table(np.linspace(0, 1, 300) ** 2.2),
    ],
    ids=["gamma", "para0", "para1", "para2", "para3", "para4", "table"],
)
def test_each_curve_kind_is_inverted_exactly(tag):
    curve = colour_profiles._curve(tag)
    x = np.linspace(0, 1, 4097, dtype=np.float32)
    y = curve.forward(x)
    assert np.all(np.diff(y) >= 0)
    np.testing.assert_allclose(curve.forward(curve.inverse(y)), y, atol=2e-6)


def test_a_table_with_flat_runs_keeps_black_and_white_and_inverts_its_slopes():
    """A log-like table, black for its first entries and white for its last ones."""
    table = np.clip((np.linspace(0, 1, 256) - 0.1) * 1.6, 0, 1)
    curve = colour_profiles._curve(icc_profiles.curv_table(table))
    assert curve.inverse(np.float32([0.0]))[0] == 0 and curve.inverse(np.float32([1.0]))[0] == 1
    y = np.linspace(0.001, 0.999, 999, dtype=np.float32)
    np.testing.assert_allclose(curve.forward(curve.inverse(y)), y, atol=1e-5)


# --------------------------------------------------------------------------- fallbacks


def test_a_lookup_table_profile_goes_through_littlecms_both_ways():
    """Values as LittleCMS gives them at 8 bits; they are those of the same space as a matrix
    profile, up to LittleCMS's 8-bit grid (a few levels at worst near the sRGB gamut's edge)."""
    data, pixels = icc_profiles.lut_rgb(both_ways=True), _cube(15)
    (converted, kept), messages = warned_to_srgb(pixels / np.float32(255), data)
    assert kept == data and messages == []  # 8-bit in, 8-bit precision: nothing to say
    np.testing.assert_array_equal(_levels(converted), littlecms(data, pixels))
    srgb = converted[:, ::7]
    np.testing.assert_array_equal(_levels(from_srgb(srgb, data)), littlecms(
        data, _levels(srgb).astype(np.uint8), inverse=True))  # fmt: skip
    matrix, _ = quiet_to_srgb(pixels / np.float32(255), icc_profiles.adobe_rgb())
    assert np.median(np.abs(converted - matrix)) * 255 < 0.5
    (_, kept), messages = warned_to_srgb(pixels / np.float32(255), data, bit_depth=16)
    assert kept == data
    assert messages == [
        "test.png: its ICC profile 'Adobe RGB LUT test' is not a matrix/TRC one, so c2e "
        "converts it with LittleCMS at 8 bits per channel: this 16-bit image loses precision"
    ]


def test_an_input_only_profile_converts_to_srgb_and_says_the_output_is_srgb():
    data = icc_profiles.lut_rgb(both_ways=False)
    rgb = np.random.default_rng(8).random((8, 8, 3), dtype=np.float32)
    (converted, kept), messages = warned_to_srgb(rgb, data)
    assert kept is None and not np.allclose(converted, rgb, atol=0.01)
    assert messages == [
        "test.png: its ICC profile 'Adobe RGB LUT test' converts colours to sRGB but not back; "
        "the output is sRGB, without the profile"
    ]


def _damaged(data: bytes, offset: int, patch: bytes) -> bytes:
    return data[:offset] + patch + data[offset + len(patch) :]


ADOBE = icc_profiles.adobe_rgb()
_TRC_OFFSET = ADOBE.index(b"curv")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"garbage" * 30, "cannot be used (not an ICC profile)"),
        (ADOBE[:140], "cannot be used (truncated tag table)"),
        (_damaged(ADOBE, 132 + 4, b"\x7f\xff\xff\xff"), "lies outside the profile"),
        (_damaged(ADOBE, _TRC_OFFSET + 12, b"\0\0"), "cannot be used (a 'curv' gamma of 0)"),
        (_damaged(ADOBE, _TRC_OFFSET, b"abcd"), "cannot be used (a curve of type 'abcd')"),
        (_damaged(ADOBE, 16, b"CMYK"), "is for CMYK data, not RGB"),
        (icc_profiles.gray_gamma(), "is for GRAY data, not RGB"),
    ],
    ids=["garbage", "truncated", "tag-outside", "gamma-0", "curve-type", "cmyk", "gray-for-rgb"],
)
def test_an_unusable_profile_is_ignored_with_a_clear_message(data, reason):
    rgb = np.random.default_rng(9).random((4, 4, 3), dtype=np.float32)
    (converted, kept), messages = warned_to_srgb(rgb, data)
    assert converted is rgb and kept is None
    assert len(messages) == 1 and reason in messages[0] and messages[0].startswith("test.png: ")
    assert messages[0].endswith("the colours are taken as sRGB and the output has no profile")


def test_an_rgb_profile_on_a_gray_image_is_ignored():
    gray = np.full((4, 4, 3), 0.5, np.float32)
    (converted, kept), messages = warned_to_srgb(gray, ADOBE, is_gray=True)
    assert converted is gray and kept is None
    assert len(messages) == 1 and "is for RGB data, not gray" in messages[0]


# --------------------------------------------------------------------------- files


ADOBE_PIXELS = np.random.default_rng(11).integers(0, 256, (12, 10, 3), dtype=np.uint8)
ADOBE_PIXELS16 = np.random.default_rng(12).integers(0, 65536, (12, 10, 3), dtype=np.uint16)


def _png16(path, samples, icc):
    path.write_bytes(encode_png16(samples, icc_profile=icc))


def _tiff(path, samples, icc):
    tifffile.imwrite(path, samples, photometric="rgb", iccprofile=icc)


@pytest.mark.parametrize(
    "name, samples, save",
    [
        ("a.png", ADOBE_PIXELS, lambda p, a, icc: Image.fromarray(a).save(p, icc_profile=icc)),
        ("a16.png", ADOBE_PIXELS16, _png16),
        ("a.tif", ADOBE_PIXELS, _tiff),
        ("a16.tif", ADOBE_PIXELS16, _tiff),
        ("af.tif", ADOBE_PIXELS16 / np.float32(65535), _tiff),
    ],
)  # fmt: skip
def test_read_image_converts_an_adobe_rgb_file_to_srgb(tmp_path, name, samples, save):
    data = icc_profiles.adobe_rgb()
    save(tmp_path / name, samples, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProfileWarning)
        image = read_image(tmp_path / name)
    assert image.icc_profile == data and image.rgb.dtype == np.float32
    expected, _ = quiet_to_srgb(from_array(samples).rgb, data, bit_depth=image.bit_depth)
    np.testing.assert_allclose(image.rgb, expected, atol=1e-6)
    if samples.dtype == np.uint8:  # and as LittleCMS converts the same pixels
        assert np.abs(_levels(image.rgb) - littlecms(data, samples)).max() <= 1


@pytest.mark.parametrize(
    "suffix, options", [(".jpg", {"quality": 100}), (".webp", {"lossless": True})]
)
def test_read_image_converts_a_display_p3_file_to_srgb_like_littlecms(tmp_path, suffix, options):
    data, path = icc_profiles.display_p3(), tmp_path / f"p3{suffix}"
    Image.fromarray(ADOBE_PIXELS).save(path, icc_profile=data, **options)
    decoded = np.asarray(Image.open(path).convert("RGB"))  # the file's own (lossy) values
    image = read_image(path)
    assert image.icc_profile == data
    assert np.abs(_levels(image.rgb) - littlecms(data, decoded)).max() <= 1


def test_alpha_and_exif_orientation_are_kept_with_a_profile(tmp_path):
    data = icc_profiles.adobe_rgb()
    rgba = np.random.default_rng(13).integers(0, 256, (6, 9, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png", icc_profile=data)
    image = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(image.alpha, rgba[:, :, 3])
    assert image.icc_profile == data
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgba[:, :, :3]).save(tmp_path / "r.jpg", icc_profile=data, exif=exif)
    rotated = read_image(tmp_path / "r.jpg")
    assert (rotated.height, rotated.width) == (9, 6) and rotated.icc_profile == data


def test_a_gray_image_with_a_gray_profile_reads_as_neutral_srgb(tmp_path):
    data = icc_profiles.gray_gamma(2.2)
    gray = np.random.default_rng(14).integers(0, 65536, (8, 8), dtype=np.uint16)
    Image.fromarray(gray).save(tmp_path / "g.png", icc_profile=data)
    image = read_image(tmp_path / "g.png")
    assert image.is_gray and image.bit_depth == 16 and image.icc_profile is None
    linear = (gray / 65535.0) ** (round(2.2 * 256) / 256)
    expected = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    np.testing.assert_allclose(image.rgb, np.repeat(expected[..., None], 3, axis=2), atol=1e-6)


def test_a_profile_that_does_not_fit_the_file_is_ignored_naming_it(tmp_path):
    Image.fromarray(ADOBE_PIXELS[:, :, 0], "L").save(tmp_path / "g.png", icc_profile=ADOBE)
    with pytest.warns(ProfileWarning, match="g.png: its ICC profile is for RGB data, not gray"):
        image = read_image(tmp_path / "g.png")
    np.testing.assert_array_equal(image.rgb[:, :, 0], ADOBE_PIXELS[:, :, 0] / np.float32(255))
    assert image.icc_profile is None


def test_an_iccp_chunk_that_does_not_decompress_is_ignored_like_pillow_does(tmp_path):
    png = encode_png16(ADOBE_PIXELS16, icc_profile=ADOBE)
    start = png.index(b"iCCP") + 4 + len(b"ICC Profile\0\0")
    broken = png[:start] + b"\xff" * 8 + png[start + 8 :]
    crc_at = png.index(b"IDAT") - 8
    body = broken[png.index(b"iCCP") : crc_at]
    broken = broken[:crc_at] + struct.pack(">I", zlib.crc32(body)) + broken[crc_at + 4 :]
    (tmp_path / "b.png").write_bytes(broken)
    image = read_image(tmp_path / "b.png")
    assert image.icc_profile is None
    np.testing.assert_array_equal(image.rgb, ADOBE_PIXELS16 / np.float32(65535))


def test_from_array_takes_a_profile_too():
    image = from_array(ADOBE_PIXELS, icc_profile=ADOBE)
    assert image.icc_profile == ADOBE
    assert np.abs(_levels(image.rgb) - littlecms(ADOBE, ADOBE_PIXELS)).max() <= 1
    assert from_array(ADOBE_PIXELS).icc_profile is None


@pytest.mark.parametrize(
    "name, depth",
    [("o.png", 8), ("o16.png", 16), ("o.tif", 8), ("o16.tif", 16), ("of.tif", 32),
     ("o.jpg", 8), ("o.webp", 8)],
)  # fmt: skip
def test_write_image_embeds_the_profile_in_every_format(tmp_path, name, depth):
    data = icc_profiles.display_p3()
    write_image(tmp_path / name, ADOBE_PIXELS / np.float32(255), bit_depth=depth, icc_profile=data)
    if name.endswith(".tif"):
        with tifffile.TiffFile(tmp_path / name) as tif:
            assert tif.pages[0].tags[34675].value == data
    else:  # other readers find it too, the 16-bit PNG encoder's iCCP chunk included
        assert Image.open(tmp_path / name).info["icc_profile"] == data
    assert read_image(tmp_path / name).icc_profile == data


def test_write_image_refuses_a_profile_that_does_not_fit_the_samples(tmp_path):
    with pytest.raises(ImageWriteError, match="an ICC profile for RGB data cannot describe GRAY"):
        write_image(tmp_path / "g.png", np.zeros((4, 4)), icc_profile=ADOBE)
    with pytest.raises(ImageWriteError, match="for GRAY data cannot describe RGB"):
        write_image(tmp_path / "g.webp", np.zeros((4, 4)), icc_profile=icc_profiles.gray_gamma())
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- colorizing


@pytest.fixture(scope="module")
def colorizer():
    from c2e_core.inference.pipeline import Colorizer
    from tests.conftest import tiny_model

    return Colorizer(tiny_model(), device="cpu", size=64)


def _photo(height: int = 40, width: int = 48) -> np.ndarray:
    """A smooth colour 'photo' in sRGB, float in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width])[:, None, None]
    return np.stack([0.2 + 0.7 * x, 0.3 + 0.5 * y, 0.8 - 0.6 * x * y], axis=2).astype(np.float32)


def test_a_colorized_profiled_target_comes_back_in_its_profile(tmp_path, colorizer):
    """Strength 0 keeps the target's colours: the result is the file's own values again, and
    the saved file carries the profile's bytes."""
    data = icc_profiles.adobe_rgb()
    adobe = _levels(from_srgb(_photo(), data)).astype(np.uint8)
    Image.fromarray(adobe).save(tmp_path / "t.png", icc_profile=data)
    result = colorizer.colorize(tmp_path / "t.png", reference=tmp_path / "t.png", strength=0)
    assert result.icc_profile == data
    assert np.abs(result.to_array().astype(int) - adobe).max() <= 1
    result.save(tmp_path / "out.png")
    saved = Image.open(tmp_path / "out.png")
    assert saved.info["icc_profile"] == data
    assert np.abs(np.asarray(saved).astype(int) - adobe).max() <= 1
    colour = colorizer.colorize(tmp_path / "t.png", reference=_photo()[::-1])
    assert np.abs(colour.to_array().astype(int) - adobe).max() > 10  # it did colorize


def test_arrays_stay_srgb_and_pil_images_bring_their_profile(colorizer):
    from c2e_core.inference.pipeline import as_image

    photo = _levels(_photo()).astype(np.uint8)
    result = colorizer.colorize(photo, reference=photo, strength=0)
    assert result.icc_profile is None
    assert np.abs(result.to_array().astype(int) - photo).max() <= 1
    pil = Image.fromarray(photo)
    pil.info["icc_profile"] = ADOBE
    image = as_image(pil)
    assert image.icc_profile == ADOBE
    assert np.abs(_levels(image.rgb) - littlecms(ADOBE, photo)).max() <= 1


def _c2e(*args, home):
    env = {**os.environ, "C2E_HOME": str(home), "C2E_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run([sys.executable, "-m", "c2e_core", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.integration
def test_the_cli_keeps_each_targets_profile_and_says_what_it_cannot_keep(tmp_path, tiny_weights):
    adobe, p3 = icc_profiles.adobe_rgb(), icc_profiles.display_p3()
    photo = _photo()
    adobe8 = _levels(from_srgb(photo, adobe)).astype(np.uint8)
    p3_16 = _levels(from_srgb(photo, p3), 65535).astype(np.uint16)
    Image.fromarray(adobe8).save(tmp_path / "adobe.png", icc_profile=adobe)
    (tmp_path / "p3.png").write_bytes(encode_png16(p3_16, icc_profile=p3))
    Image.fromarray(adobe8).save(tmp_path / "broken.png", icc_profile=b"not a profile" * 20)
    Image.fromarray(adobe8).save(tmp_path / "scanner.png", icc_profile=icc_profiles.lut_rgb(False))
    tifffile.imwrite(tmp_path / "adobe16.tif", _levels(from_srgb(photo, adobe), 65535).astype(
        np.uint16), photometric="rgb", iccprofile=adobe)  # fmt: skip
    out = tmp_path / "out"
    result = _c2e("colorize", *(tmp_path / n for n in ("adobe.png", "p3.png", "broken.png",
                  "scanner.png")), "-r", tmp_path / "adobe.png", "--output-dir", out,
                  "--strength", "0", "--weights", tiny_weights, home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("c2e: warning:")]
    assert warned == [  # once each, though the pre-check reads every target too
        f"c2e: warning: {tmp_path / 'broken.png'}: its ICC profile cannot be used (not an ICC "
        "profile); it is ignored: the colours are taken as sRGB and the output has no profile",
        f"c2e: warning: {tmp_path / 'scanner.png'}: its ICC profile 'Adobe RGB LUT test' "
        "converts colours to sRGB but not back; the output is sRGB, without the profile",
    ]
    got = Image.open(out / "adobe.png")
    assert got.info["icc_profile"] == adobe
    assert np.abs(np.asarray(got).astype(int) - adobe8).max() <= 1
    got16 = decode_png16((out / "p3.png").read_bytes())[0]
    assert Image.open(out / "p3.png").info["icc_profile"] == p3
    assert np.abs(got16.astype(int) - p3_16).max() <= 1
    assert "icc_profile" not in Image.open(out / "broken.png").info
    assert np.abs(np.asarray(Image.open(out / "broken.png")).astype(int) - adobe8).max() <= 1
    scanner = np.asarray(Image.open(out / "scanner.png")).astype(int)
    assert "icc_profile" not in Image.open(out / "scanner.png").info
    assert np.abs(scanner - _levels(photo)).max() <= 3  # sRGB now (LittleCMS's 8 bits)

    result = _c2e("colorize", tmp_path / "adobe16.tif", "-r", tmp_path / "adobe.png", "-o",
                  tmp_path / "out16.tif", "--strength", "0", "--weights", tiny_weights,
                  home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr
    with tifffile.TiffFile(tmp_path / "out16.tif") as tif:
        assert tif.pages[0].tags[34675].value == adobe
        written = tif.pages[0].asarray().astype(int)
    assert np.abs(written - tifffile.imread(tmp_path / "adobe16.tif")).max() <= 1
