"""The plugins' live preview helpers (c2e_client.preview): shrinking, display bytes, and the
runner that computes only the newest request; and one preview through the real worker."""

from __future__ import annotations

import struct
import sys
import threading
import time

import numpy as np
import pytest

from tests.conftest import load_client


@pytest.fixture(scope="module")
def preview():
    load_client()
    import c2e_client.preview as module

    return module


def pixels(array: np.ndarray, channels: str, dtype: str, linear: bool = False):
    return load_client().Pixels(array.shape[1], array.shape[0], channels, dtype,
                                array.astype(array.dtype.newbyteorder("<")).tobytes(), linear)


@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_shrink_takes_each_blocks_centre_pixel_at_any_depth(preview, dtype):
    numpy_type = {"u8": np.uint8, "u16": np.uint16, "f32": np.float32}[dtype]
    rng = np.random.default_rng(1)
    image = rng.integers(0, 250, size=(31, 47, 4)).astype(numpy_type)
    small = preview.shrink(pixels(image, "BGRA", dtype), 16)
    step = 3  # ceil(47 / 16)
    assert (small.width, small.height, small.channels, small.dtype) == (16, 11, "BGRA", dtype)
    got = np.frombuffer(small.data, numpy_type).reshape(11, 16, 4)
    rows = np.minimum(np.arange(11) * step + 1, 30)
    cols = np.minimum(np.arange(16) * step + 1, 46)
    assert np.array_equal(got, image[rows][:, cols])


def test_shrink_leaves_small_images_and_masks_follow(preview):
    image = pixels(np.zeros((10, 12, 3), np.uint8), "RGB", "u8")
    assert preview.shrink(image, 12) is image
    mask = np.arange(40 * 30, dtype=np.uint32).astype(np.uint8).reshape(30, 40)
    small = preview.shrink_mask(mask.tobytes(), 40, 30, 10)
    rows = np.minimum(np.arange(8) * 4 + 2, 29)  # the last block is cut short: its last row
    assert np.array_equal(np.frombuffer(small, np.uint8).reshape(8, 10), mask[rows][:, 2::4])
    assert preview.shrink_mask(None, 40, 30, 10) is None


def test_preview_side_follows_the_working_size(preview):
    assert preview.preview_side(4000, 256) == preview.PREVIEW_SIDE  # at least the dialog's
    assert preview.preview_side(4000, 768) == 768  # what the network will see
    assert preview.preview_side(300, 768) == 300  # never larger than the image
    assert preview.preview_side(5000, "native") == 1024


def test_preview_target_shrinks_once_per_working_size(preview):
    image = pixels(np.arange(800 * 600 * 4, dtype=np.uint32).astype(np.uint8).reshape(
        600, 800, 4), "BGRA", "u8")
    mask = bytes(range(256)) * (800 * 600 // 256) + bytes(800 * 600 % 256)
    target = preview.PreviewTarget(image, mask)
    small, small_mask = target.for_working_size(256)
    assert (small.width, small.height) == (267, 200)  # every 3rd pixel: ceil(800 / 360)
    assert (small_mask.width, small_mask.height, small_mask.channels) == (267, 200, "A")
    assert small_mask.data == preview.shrink_mask(mask, 800, 600, 360)
    assert target.for_working_size(256)[0] is small  # kept
    assert target.for_working_size(512)[0].width == 400  # every 2nd: ceil(800 / 512)
    assert preview.PreviewTarget(image, None).for_working_size("native")[1] is None


def test_to_rgba8_orders_channels_and_converts_depths(preview):
    bgra = np.array([[[10, 20, 30, 40]]], np.uint8)
    assert preview.to_rgba8(pixels(bgra, "BGRA", "u8")) == bytes([30, 20, 10, 40])
    gray = np.array([[[7]]], np.uint8)
    assert preview.to_rgba8(pixels(gray, "GRAY", "u8")) == bytes([7, 7, 7, 255])
    rgba16 = np.array([[[0x12FF, 0xAB00, 0xFFFF, 0x8000]]], np.uint16)
    assert preview.to_rgba8(pixels(rgba16, "RGBA", "u16")) == bytes([0x12, 0xAB, 0xFF, 0x80])
    floats = np.array([[[0.0, 0.5, 2.0, 0.25], [np.nan, 1.0, -1.0, 1.0]]], np.float32)
    out = preview.to_rgba8(pixels(floats, "RGBA", "f32", linear=True))
    # linear 0.5 is sRGB 188; alpha is not encoded; NaN and negatives are 0, above 1 is 255
    assert out == bytes([0, 188, 255, 64, 0, 255, 0, 255])
    halves = struct.pack("<3e", 0.5, 0.5, 0.5)
    half = load_client().Pixels(1, 1, "RGB", "f16", halves)
    assert preview.to_rgba8(half) == bytes([128, 128, 128, 255])


def test_runner_computes_only_the_newest_request_and_cancels_the_stale_one(preview):
    started, release = threading.Event(), threading.Event()
    cancelled, seen = [], []

    def compute(params, request_id):
        seen.append((params, request_id))
        if params == "first":
            started.set()
            release.wait(5)
            raise RuntimeError("cancelled")  # what a cancelled worker job raises
        return params.upper()

    def cancel(request_id):
        cancelled.append(request_id)
        release.set()

    runner = preview.PreviewRunner(compute, cancel)
    runner.request("first")
    assert started.wait(5)
    runner.request("second")  # replaced before it starts
    third = runner.request("third")
    deadline = time.monotonic() + 5
    outcome = None
    while outcome is None and time.monotonic() < deadline:
        outcome = runner.take()
        time.sleep(0.01)
    assert outcome is not None
    generation, result, error, seconds = outcome
    assert (generation, result, error) == (third, "THIRD", None) and seconds >= 0
    assert cancelled == [seen[0][1]]  # the running one was asked to stop, once
    assert [p for p, _ in seen] == ["first", "third"]  # "second" never ran
    assert seen[0][1] != seen[1][1]  # request ids are never reused
    assert runner.take() is None and not runner.busy
    runner.close()
    with pytest.raises(RuntimeError):
        runner.request("late")


def test_runner_discard_drops_what_was_asked(preview):
    release = threading.Event()
    cancelled = []

    def compute(params, request_id):
        release.wait(5)
        return params

    runner = preview.PreviewRunner(compute, lambda rid: cancelled.append(rid) or release.set())
    runner.request("old")
    deadline = time.monotonic() + 5
    while runner.computed < 1 and time.monotonic() < deadline:  # it runs
        time.sleep(0.01)
    runner.discard()  # e.g. the dialog shows "Choose a reference" now
    time.sleep(0.2)
    assert runner.take() is None and len(cancelled) == 1
    runner.close()


def test_runner_reports_errors_of_the_latest_request(preview):
    def compute(params, request_id):
        raise ValueError("no reference")

    runner = preview.PreviewRunner(compute)
    generation = runner.request(1)
    deadline = time.monotonic() + 5
    outcome = None
    while outcome is None and time.monotonic() < deadline:
        outcome = runner.take()
        time.sleep(0.01)
    assert outcome[0] == generation and outcome[1] is None
    assert isinstance(outcome[2], ValueError)
    runner.close()


def test_a_preview_through_the_real_worker_is_the_runs_colours_at_preview_size(preview, tmp_path):
    """A shrunk target colorized by the real worker, with the embedding of an unchanged
    reference reused while only the strength changes."""
    client_module = load_client()
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:300, 0:400]
    gray = np.clip(60 + 150 * x / 399 + 15 * np.sin(y / 9), 0, 255).astype(np.uint8)
    target = pixels(np.dstack([gray, gray, gray, np.full_like(gray, 255)]), "RGBA", "u8")
    reference = pixels(rng.integers(0, 255, (200, 260, 3)).astype(np.uint8), "RGB", "u8")
    small = preview.shrink(target, preview.preview_side(400, 256))
    assert (small.width, small.height) == (200, 150)  # 400 / ceil(400 / 360)
    with client_module.WorkerClient(sys.executable) as client:

        def compute(strength, request_id):
            return client.colorize(small, reference, options={"strength": strength},
                                   request_id=request_id)

        runner = preview.PreviewRunner(compute, client.cancel)
        results = {}
        for strength in (1.0, 0.5):
            generation = runner.request(strength)
            deadline = time.monotonic() + 120
            outcome = None
            while outcome is None and time.monotonic() < deadline:
                outcome = runner.take()
                time.sleep(0.01)
            assert outcome is not None and outcome[0] == generation and outcome[2] is None
            results[strength] = outcome[1]
        runner.close()
    full = np.frombuffer(results[1.0].data, np.uint8).reshape(150, 200, 4)
    half = np.frombuffer(results[0.5].data, np.uint8).reshape(150, 200, 4)
    chroma = lambda rgba: np.ptp(rgba[..., :3].astype(int), axis=-1).mean()  # noqa: E731
    assert chroma(full) > 2.0 and 0 < chroma(half) < chroma(full)
    display = preview.to_rgba8(results[1.0])
    assert display == results[1.0].data  # RGBA u8 shows as it is
