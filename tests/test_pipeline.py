"""The inference pipeline: parity with the authors' test script, sizes, batches, L kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from c2e_core.inference.pipeline import Colorizer, OptionError, working_shape
from c2e_core.inference.upsampling import apply_guided, guided_coefficients, resize
from c2e_core.modeling.colour import rgb_to_lab
from c2e_core.weights.build import build_color2embed
from c2e_core.weights.official import convert_official_checkpoint
from tests.conftest import assert_same_image, tiny_model
from tests.official_format import FIXTURE_DIR


def lightness(rgb: np.ndarray) -> np.ndarray:
    return rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float())[0].numpy()


@pytest.fixture(scope="module")
def fixture():
    return torch.load(FIXTURE_DIR / "fixture.pt", weights_only=True)


@pytest.fixture(scope="module")
def official_model(official_checkpoint):
    converted = convert_official_checkpoint(official_checkpoint)
    model = build_color2embed(converted.config)
    model.load_state_dict(converted.state_dict)
    return model


def test_official_pipeline_reproduces_the_authors_image(official_model, fixture):
    colorizer = Colorizer(official_model, device="cpu", compat="official")
    result = colorizer.colorize(
        fixture["target_rgb_uint8"].numpy(), reference=fixture["reference_rgb_uint8"].numpy()
    )
    out = result.to_array(np.uint8).astype(int)
    expected = fixture["rgb_out_uint8"].numpy().astype(int)
    assert out.shape == expected.shape
    diff = np.abs(out - expected)
    assert diff.max() <= 1
    assert (diff == 0).mean() >= 0.999


def test_official_embedding_matches_fixture(official_model, fixture):
    colorizer = Colorizer(official_model, device="cpu", compat="official")
    (z,) = colorizer.embed(fixture["reference_rgb_uint8"].numpy())
    assert np.abs(z - fixture["color_vector"].numpy()).max() <= 1e-4


@pytest.mark.parametrize(
    ("hw", "size", "compat", "expected"),
    [
        ((512, 512), 256, "official", (256, 256)),
        ((400, 600), 256, "official", (256, 256)),
        ((400, 600), 256, None, (208, 320)),
        ((100, 1000), 256, None, (80, 816)),
        ((37, 53), "native", None, (48, 64)),
    ],
)
def test_working_shape(hw, size, compat, expected):
    assert working_shape(*hw, size, compat) == expected


@pytest.mark.parametrize("shape", [(37, 53, 3), (300, 120, 3), (64, 64)])
@pytest.mark.parametrize("size", [64, "native"])
def test_any_size_keeps_resolution_and_lightness(shape, size):
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, size=shape, dtype=np.uint8)
    reference = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=size)
    result = colorizer.colorize(target, reference=reference)
    assert result.rgb.shape == (*shape[:2], 3)
    out = result.to_array(np.uint8)
    target_rgb = np.stack([target] * 3, -1) if target.ndim == 2 else target
    l_in = lightness(target_rgb.astype(np.float32) / 255)
    l_out = lightness(out.astype(np.float32) / 255)
    assert np.abs(l_out - l_in).max() < 0.5  # 8-bit rounding only


def test_output_has_colour_and_follows_the_reference():
    gray = np.tile(np.linspace(30, 220, 96, dtype=np.uint8), (96, 1))
    noise = np.random.default_rng(5).integers(0, 60, (64, 64, 1))
    red = (noise + np.array([190, 20, 20])).astype(np.uint8)
    blue = (noise + np.array([20, 20, 190])).astype(np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=64)
    a = colorizer.colorize(gray, reference=red).rgb
    b = colorizer.colorize(gray, reference=blue).rgb
    assert np.abs(a - b).mean() > 1e-3


def test_batch_equals_single_calls():
    rng = np.random.default_rng(1)
    targets = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    targets.append(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    reference = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=64, batch_size=4)
    batch = colorizer.colorize(targets, reference=reference)
    assert len(batch) == 4
    for target, result in zip(targets, batch, strict=True):
        single = colorizer.colorize(target, reference=reference)
        assert_same_image(result.rgb, single.rgb)


def test_embedding_cache_and_blend():
    rng = np.random.default_rng(2)
    ref_a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    ref_b = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=64)
    (z_a,) = code_a = colorizer.embed(ref_a)
    assert colorizer.embed(ref_a.copy()) is code_a  # cached by content
    (z_b,) = colorizer.embed(ref_b)
    (blend,) = colorizer.embed([ref_a, ref_b], weights=[3, 1])
    np.testing.assert_allclose(blend, 0.75 * z_a + 0.25 * z_b, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="weights"):
        colorizer.embed([ref_a, ref_b], weights=[1])


def test_clean_smooths_the_colours_after_the_network_and_keeps_the_rest():
    """``clean`` (1 unless asked otherwise, 0 in the authors' pipeline) changes only the
    predicted colours, after the network (another value calls no network), keeps L, and
    ``strength=0`` still returns the original."""
    rng = np.random.default_rng(5)
    target = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    calls = []
    predict = colorizer.networks.predict_ab
    colorizer.networks.predict_ab = lambda *a: calls.append(1) or predict(*a)
    plain = colorizer.colorize(target, reference=reference, clean=0.0)
    cleaned = colorizer.colorize(target, reference=reference, clean=1.0)
    assert_same_image(colorizer.colorize(target, reference=reference).rgb, cleaned.rgb)
    official = Colorizer(tiny_model(), device="cpu", size=32, compat="official")
    assert_same_image(official.colorize(target, reference=reference).rgb,
                      official.colorize(target, reference=reference, clean=0.0).rgb)
    assert len(calls) == 1
    assert np.abs(cleaned.rgb - plain.rgb).max() > 1e-3
    np.testing.assert_allclose(lightness(cleaned.rgb), lightness(plain.rgb), atol=0.5)
    kept = colorizer.colorize(target, reference=reference, clean=1.0, strength=0.0)
    assert np.abs(kept.rgb * 255 - target).max() <= 1
    with pytest.raises(OptionError, match="clean"):
        colorizer.colorize(target, reference=reference, clean=1.5)
    # the kept prediction is not changed by a cleanup: clean 0 again gives the first colours
    assert_same_image(colorizer.colorize(target, reference=reference, clean=0.0).rgb, plain.rgb)


def _spy_on_the_cleanup(monkeypatch) -> list[tuple[float, bool]]:
    """The pipeline's calls of ``clean_colours`` from now on, as (amount, palette) pairs."""
    import c2e_core.inference.pipeline as pipeline_module

    calls: list[tuple[float, bool]] = []
    clean_colours = pipeline_module.clean_colours

    def spy(ab, lightness, amount, *args, **kwargs):
        calls.append((amount, kwargs["palette"]))
        return clean_colours(ab, lightness, amount, *args, **kwargs)

    monkeypatch.setattr(pipeline_module, "clean_colours", spy)
    return calls


def test_keep_palette_off_gives_the_plain_cleanup(monkeypatch):
    """``keep_palette=False`` reaches the cleanup (its unit tests check what it does then),
    changes the colours without another network call, and changes nothing at clean 0."""
    rng = np.random.default_rng(6)
    target = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    asked = _spy_on_the_cleanup(monkeypatch)
    calls = []
    predict = colorizer.networks.predict_ab
    colorizer.networks.predict_ab = lambda *a: calls.append(1) or predict(*a)
    kept = colorizer.colorize(target, reference=reference)
    calm = colorizer.colorize(target, reference=reference, keep_palette=False)
    assert [palette for _, palette in asked] == [True, False] and len(calls) == 1
    assert np.abs(calm.rgb - kept.rgb).max() > 1e-3
    plain = colorizer.colorize(target, reference=reference, clean=0.0)
    assert_same_image(colorizer.colorize(target, reference=reference, clean=0.0,
                                         keep_palette=False).rgb, plain.rgb)  # fmt: skip
    with pytest.raises(OptionError, match="keep_palette must be true or false"):
        colorizer.colorize(target, reference=reference, keep_palette="no")


def test_clean_at_native_size_in_batches_and_under_a_mask():
    """Native size (sides not multiples of the grid's cell), a batch of two shapes (each as
    if alone), and a mask: nothing outside it changes."""
    rng = np.random.default_rng(8)
    targets = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((37, 53, 3), (29, 40, 3))]
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size="native", batch_size=2)
    together = colorizer.colorize(targets, reference=reference, clean=1.0)
    for target, result in zip(targets, together, strict=True):
        alone = Colorizer(tiny_model(), device="cpu", size="native")
        assert_same_image(result.rgb, alone.colorize(target, reference=reference, clean=1.0).rgb)
    mask = np.zeros(targets[0].shape[:2], np.float32)
    mask[10:20, 10:30] = 1.0
    masked = colorizer.colorize(targets[0], reference=reference, clean=1.0, mask=mask)
    outside = mask == 0
    assert np.abs(masked.rgb[outside] * 255 - targets[0][outside]).max() <= 1


def test_a_new_strength_reuses_the_networks_answer():
    """Colorizing the same target after the same reference again, with another strength or
    mask (a dialog's preview), calls the network once; the colours are those of a fresh call."""
    rng = np.random.default_rng(21)
    target = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    fresh = Colorizer(tiny_model(), device="cpu", size=32)
    expected = fresh.colorize(target, reference=reference, strength=0.4)
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    calls = []
    predict = colorizer.networks.predict_ab
    colorizer.networks.predict_ab = lambda *a: calls.append(1) or predict(*a)
    colorizer.colorize(target, reference=reference)
    again = colorizer.colorize(target, reference=reference, strength=0.4)
    assert len(calls) == 1
    assert_same_image(again.rgb, expected.rgb)
    other = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer.colorize(target, reference=other, strength=0.4)  # another reference: computed
    colorizer.colorize(target[::-1].copy(), reference=reference)  # another target: computed
    assert len(calls) == 3
    embeds = []
    embed = colorizer.networks.embed
    colorizer.networks.embed = lambda *a: embeds.append(1) or embed(*a)
    colorizer.forget()  # what benchmarks call to time the networks every run
    colorizer.colorize(target, reference=reference)
    assert (len(calls), len(embeds)) == (4, 1)
    colorizer.forget(references=False)  # the reference's code kept
    colorizer.colorize(target, reference=reference)
    assert (len(calls), len(embeds)) == (5, 1)


def test_a_new_strength_reuses_the_cleanup_too(monkeypatch):
    """The cleanup is kept with the network's answer: a strength or mask change reuses it, a
    new amount or palette setting computes one, and every result is a fresh call's."""
    rng = np.random.default_rng(22)
    target = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    asked = _spy_on_the_cleanup(monkeypatch)
    mask = np.zeros((48, 64), np.float32)
    mask[:20] = 1.0
    runs = [dict(), dict(strength=0.3), dict(mask=mask), dict(clean=0.5),
            dict(clean=0.5, strength=0.7), dict(keep_palette=False), dict(clean=0.5), dict()]
    results = [colorizer.colorize(target, reference=reference, **run) for run in runs]
    # the default, clean 0.5, without the palette step, then clean 0.5 still kept (two are
    # kept per image) and the default again
    assert [amount for amount, _ in asked] == [1.0, 0.5, 1.0, 1.0]
    for run, result in zip(runs, results, strict=True):
        fresh = Colorizer(tiny_model(), device="cpu", size=32)
        assert_same_image(result.rgb, fresh.colorize(target, reference=reference, **run).rgb)
    (kept,) = colorizer._predictions.values()
    assert not kept.ab.flags.writeable
    assert all(not ab.flags.writeable for ab in kept.cleaned.values())


def test_kept_cleanups_belong_to_their_image_in_batches_and_at_native_size():
    """At native size a 30-row and a 31-row target whose last row repeats pad to the same
    network input; each gets its own cleanup, in a batch and alone, as a fresh call's."""
    rng = np.random.default_rng(23)
    short = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    tall = np.concatenate([short, short[-1:]])  # 31 rows, padded like the 30-row one
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size="native", batch_size=2)
    first = colorizer.colorize(short, reference=reference)
    second = colorizer.colorize(tall, reference=reference)
    assert second.rgb.shape == (31, 40, 3)
    batch = colorizer.colorize([tall, short], reference=reference, strength=0.5)
    for image, alone, together in ((short, first, batch[1]), (tall, second, batch[0])):
        fresh = Colorizer(tiny_model(), device="cpu", size="native")
        assert_same_image(alone.rgb, fresh.colorize(image, reference=reference).rgb)
        assert_same_image(together.rgb,
                          fresh.colorize(image, reference=reference, strength=0.5).rgb)


def test_a_gray_target_takes_the_one_channel_lightness(monkeypatch):
    import c2e_core.inference.pipeline as pipeline_module

    used = []
    gray_to_lightness = pipeline_module.gray_to_lightness
    monkeypatch.setattr(pipeline_module, "gray_to_lightness",
                        lambda rows: used.append(rows.shape) or gray_to_lightness(rows))
    rng = np.random.default_rng(24)
    gray = np.repeat(rng.integers(0, 256, (24, 32, 1), dtype=np.uint8), 3, axis=2)
    reference = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    result = colorizer.colorize(gray, reference=reference)
    assert sum(shape[-2] for shape in used) == 24 and {shape[-1] for shape in used} == {32}
    np.testing.assert_allclose(lightness(result.rgb), lightness(gray / 255.0), atol=0.5)
    used.clear()
    tinted = gray.copy()
    tinted[::5, 0, 2] ^= 1  # a pixel off gray in every strip of rows: the three-channel path
    colorizer.colorize(tinted, reference=reference)
    assert not used


def test_alpha_passes_through_untouched():
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 65536, (40, 30, 4), dtype=np.uint16)
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    result = colorizer.colorize(rgba, reference=rgba[..., :3])
    out = result.to_array()
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


def test_mask_limits_the_result():
    rng = np.random.default_rng(4)
    target = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.float32)
    mask[:, 32:] = 1.0
    colorizer = Colorizer(tiny_model(), device="cpu", size=64)
    out = colorizer.colorize(target, reference=target, mask=mask).to_array(np.uint8).astype(int)
    assert np.abs(out[:, :32] - target[:, :32]).max() <= 1
    assert np.abs(out[:, 32:] - target[:, 32:]).max() > 1


def test_guided_upsampling_keeps_colour_off_the_other_side_of_an_edge():
    """A sharp luminance edge at full resolution; ab predicted at low resolution is blurred
    across it. Guided upsampling must leak less colour across the edge than bilinear."""
    high, low = 256, 64
    l_high = np.full((1, 1, high, high), 20.0, np.float32)
    l_high[..., :, 131:] = 80.0  # edge not aligned with the low-res grid
    l_low = resize(l_high, (low, low), antialias=True)
    ab_low = np.zeros((1, 2, low, low), np.float32)
    ab_low[:, 0] = (l_low[:, 0] > 50) * 60.0  # colour on the bright side only
    ab_low = torch.nn.functional.avg_pool2d(torch.from_numpy(ab_low), 3, 1, 1,
                                            count_include_pad=False).numpy()  # fmt: skip
    bilinear = resize(ab_low, (high, high), antialias=False)
    guided = apply_guided(guided_coefficients(ab_low, l_low / 100), l_high / 100, (high, high), 0)
    dark_side = np.broadcast_to(l_high < 50, (1, 2, high, high))
    leak_bilinear = np.abs(bilinear[dark_side]).mean()
    leak_guided = np.abs(guided[dark_side]).mean()
    assert leak_guided < 0.5 * leak_bilinear


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("shapes", [((1024, 768), (256, 192)), ((300, 257), (20, 17)),
                                    ((100, 80), (256, 208)), ((64, 48), (1024, 768))])  # fmt: skip
def test_numpy_resize_is_torchs_interpolate(shapes, antialias):
    """The pipeline's numpy resize computes torch's bilinear interpolate (shrink and enlarge,
    with and without antialiasing): the torch path's numbers, without torch."""
    (height, width), size = shapes
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(x), size=size, mode="bilinear", align_corners=False, antialias=antialias
    )
    np.testing.assert_allclose(resize(x, size, antialias), expected.numpy(), atol=1e-5, rtol=0)


def test_guided_filter_box_is_torchs_average_pool():
    from c2e_core.inference.upsampling import _box

    x = np.random.default_rng(1).random((1, 2, 37, 50), dtype=np.float32)
    expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), 5, stride=1, padding=2,
                                              count_include_pad=False)  # fmt: skip
    np.testing.assert_allclose(_box(x, 2), expected.numpy(), atol=1e-6, rtol=0)


def test_bad_options():
    model = tiny_model()
    with pytest.raises(ValueError, match="multiple of 16"):
        Colorizer(model, device="cpu", size=100)
    with pytest.raises(ValueError, match="compat"):
        Colorizer(model, device="cpu", compat="paper")
    colorizer = Colorizer(model, device="cpu", size=32)
    with pytest.raises(ValueError, match="either a reference or an embedding"):
        colorizer.colorize(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="unknown post-processing step"):
        colorizer.colorize(
            np.zeros((8, 8, 3), np.uint8), reference=np.zeros((8, 8, 3), np.uint8), post=["nope"]
        )


def test_cuda_requested_but_absent_is_a_clear_error(monkeypatch):
    from c2e_core.inference.device import DeviceError, select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="CUDA was requested"):
        select_device("cuda")
    assert select_device("auto").type in ("cpu", "mps")


def test_int8_on_cpu_stays_close_to_fp32(official_model, fixture):
    """The quantized static stacks change the colours by a fraction of a Lab unit."""
    target = fixture["target_rgb_uint8"].numpy()
    reference = fixture["reference_rgb_uint8"].numpy()
    fp32 = Colorizer(official_model, device="cpu").colorize(target, reference=reference)
    int8 = Colorizer(official_model, device="cpu", precision="int8").colorize(
        target, reference=reference
    )
    lab32 = rgb_to_lab(torch.from_numpy(fp32.rgb).permute(2, 0, 1))
    lab8 = rgb_to_lab(torch.from_numpy(int8.rgb).permute(2, 0, 1))
    assert (lab8[0] - lab32[0]).abs().max() < 0.05  # lightness is the target's either way
    delta_ab = (lab8[1:] - lab32[1:]).norm(dim=0)
    assert delta_ab.mean() < 1.0  # below a just-noticeable difference on average
    assert official_model.unet.inc.double_conv[0].weight.dtype == torch.float32  # not mutated


def test_int8_is_refused_off_cpu_and_for_other_architectures(monkeypatch):
    from c2e_core.inference.quantization import QuantizationError, quantize_static_parts

    with pytest.raises(QuantizationError, match="Color2Embed"):
        quantize_static_parts(torch.nn.Conv2d(1, 1, 1))


def test_post_steps_and_strength_never_touch_pixels_outside_the_mask():
    rng = np.random.default_rng(6)
    target = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.float32)
    mask[:, 40:] = 0.7
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    out = (
        colorizer.colorize(
            target, reference=target, mask=mask, strength=0.8, post=[("saturation", {"factor": 0})]
        )
        .to_array(np.uint8)
        .astype(int)
    )
    assert np.abs(out[:, :40] - target[:, :40]).max() <= 1
    assert np.abs(out[:, 40:] - target[:, 40:]).max() > 1


@pytest.mark.parametrize("weights", [[float("nan"), 1.0], [float("inf"), 1.0], [0.0, 0.0]])
def test_reference_weights_must_be_finite(weights):
    rng = np.random.default_rng(7)
    refs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    with pytest.raises(OptionError, match="finite"):
        colorizer.embed(refs, weights=weights)


def test_step_options_are_checked_before_running():
    colorizer = Colorizer(tiny_model(), device="cpu", size=32)
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(OptionError, match="bogus"):
        colorizer.colorize(image, reference=image, post=[("saturation", {"bogus": 1})])
    with pytest.raises(OptionError, match="saturation"):
        colorizer.colorize(image, reference=image, post=[("saturation", {"factor": "abc"})])


def test_the_compat_mode_chooses_one_pipeline_object():
    from c2e_core.inference.pipeline import PIPELINES, OfficialPipeline

    model = tiny_model()
    official = Colorizer(model, device="cpu", compat="official")
    assert isinstance(official.pipeline, OfficialPipeline) and official.compat == "official"
    assert official.pipeline.truncate and not official.pipeline.antialias
    assert Colorizer(model, device="cpu").pipeline is PIPELINES[None]
    with pytest.raises(OptionError, match="compat must be one of null, 'official', not 'authors'"):
        Colorizer(model, device="cpu", compat="authors")


@pytest.mark.parametrize("compat", [None, "official"])
@pytest.mark.parametrize("finish", ["plain", "mask-strength-post"])
def test_strips_give_the_whole_image_result(compat, finish):
    """The full-resolution stages work in strips of rows (bounded memory for huge scans); any
    strip height gives the whole-image result, to float rounding."""
    rng = np.random.default_rng(11)
    target = rng.integers(0, 65536, (203, 157, 3), dtype=np.uint16)
    reference = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    options = {}
    if finish != "plain":
        mask = np.zeros((203, 157), np.float32)
        mask[40:170, 20:120] = rng.random((130, 100))
        options = {"mask": mask, "strength": 0.7, "post": [("saturation", {"factor": 1.3})]}
    results = []
    for strip_pixels in (None, 157 * 37, 1000):
        colorizer = Colorizer(
            tiny_model(), device="cpu", size=64, compat=compat, strip_pixels=strip_pixels
        )
        results.append(colorizer.colorize(target, reference=reference, **options))
    whole = results[0].to_array()
    for striped in results[1:]:
        np.testing.assert_allclose(striped.rgb, results[0].rgb, atol=2e-5)
        assert np.abs(striped.to_array().astype(int) - whole.astype(int)).max() <= 1


def test_row_strips_cover_the_image_once():
    from c2e_core.files.strips import row_strips

    assert row_strips(10, 10, None) == [(0, 10)]
    assert row_strips(10, 10, 100) == [(0, 10)]
    strips = row_strips(10, 7, 15)
    assert strips == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert row_strips(3, 1000, 10) == [(0, 1), (1, 2), (2, 3)]


@pytest.mark.parametrize("size", [(8, 9), (40, 33), (301, 499), (7, 500)])
def test_upsample_and_shrink_in_strips_equal_whole_resizes(size):
    from c2e_core.files.strips import row_strips
    from c2e_core.inference.upsampling import shrink_in_strips, upsample_rows

    rng = np.random.default_rng(2)
    x = rng.random((1, 4, 23, 31), dtype=np.float32)
    whole = resize(x, size, antialias=False)
    for start, stop in row_strips(size[0], size[1], 3 * size[1]):
        np.testing.assert_allclose(
            upsample_rows(x, size, start, stop), whole[..., start:stop, :], atol=2e-6, rtol=0
        )
    big = rng.random((1, 1, 301, 257), dtype=np.float32)
    strips = row_strips(301, 257, 257 * 40)
    shrunk = shrink_in_strips(lambda a, b: big[..., a:b, :], 301, 257, (20, 17), strips)
    np.testing.assert_allclose(shrunk, resize(big, (20, 17), antialias=True), atol=1e-6, rtol=0)
