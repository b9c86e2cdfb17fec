"""The inference pipeline: :class:`Colorizer` loads a model once and colorizes many images.

Default pipeline (:class:`DefaultPipeline`): antialiased downscaling to the working size (aspect
ratio kept, sides multiples of 16), the network, edge-aware (guided-filter) upsampling of ab
guided by the full-resolution L, recombination with the target's own L, and a chroma-only gamut
fit so the output keeps the target's lightness. ``compat="official"``
(:class:`OfficialPipeline`) reproduces the authors' test script instead.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from c2e_core.errors import OptionError
from c2e_core.files.colour_profiles import from_srgb
from c2e_core.files.images import ImageData, from_array, read_image, to_array, write_image
from c2e_core.files.strips import STRIP_PIXELS, row_strips
from c2e_core.inference.cleanup import clean_colours
from c2e_core.inference.colour import (
    channels_first,
    gray_to_lightness,
    is_gray,
    lab_to_rgb,
    lab_to_rgb_in_gamut,
    rgb_to_lab,
    rgb_to_lightness,
)
from c2e_core.inference.progress import Progress, ProgressCallback
from c2e_core.inference.upsampling import (
    apply_guided,
    guided_coefficients,
    resize,
    shrink_in_strips,
    upsample_rows,
)
from c2e_core.modeling.lab_constants import LabScaling
from c2e_core.options import (
    NATIVE,
    ColorizeRequest,
    Step,
    check_reference_weights,
    check_steps,
)

ImageInput = Union[str, Path, np.ndarray, Image.Image, ImageData]  # noqa: UP007 (runtime alias)
#: ``(lum_rows [1,1,r,W], start_row) -> ab_rows [1,2,r,W]``: ab of some rows of the full image.
AbRows = Callable[[np.ndarray, int], np.ndarray]
#: Predicted ab kept by :meth:`Colorizer._predict`: how many, and the largest working
#: lightness (pixels of a batch) that is kept (1024² at most: 8 MB of ab each, and as much
#: again for each cleanup kept with it: 96 MB at most in all).
PREDICTIONS_KEPT = 4
PREDICTION_CACHE_PIXELS = 1024 * 1024
#: Cleanups (by amount and palette step) kept with a kept prediction, per image of its batch:
#: the one in use and the one before (a preview switching between two settings).
CLEANUPS_KEPT = 2

#: A reference code: the arrays a model's ``embed`` returns (one for the paper's model).
Code = tuple[np.ndarray, ...]
#: The Lab scaling every network shares (the ab scale is each network's own).
SCALING = LabScaling()


@dataclass
class _Prediction:
    """The networks' ab for a batch (in Lab units, read-only) and the cleanups of it made so
    far (read-only too), by image, its working shape, amount and palette step: a preview's
    strength or mask change reuses both."""

    ab: np.ndarray
    cleaned: OrderedDict[tuple, np.ndarray] = field(default_factory=OrderedDict)

    def cleanup(self, index: int, l_small: np.ndarray, clean: float, palette: bool) -> np.ndarray:
        """Image ``index``'s ab (its working lightness ``l_small``) cleaned by
        :func:`clean_colours`, computed once for each amount and palette setting."""
        height, width = l_small.shape[-2:]
        # the shape too: at native size, images of other heights can pad to the same input
        key = (index, height, width, clean, palette)
        if key in self.cleaned:
            self.cleaned.move_to_end(key)
            return self.cleaned[key]
        raw = self.ab[index : index + 1, :, :height, :width]
        cleaned = clean_colours(raw, l_small, clean, palette=palette)
        cleaned.flags.writeable = False
        self.cleaned[key] = cleaned
        while len(self.cleaned) > CLEANUPS_KEPT * self.ab.shape[0]:
            self.cleaned.popitem(last=False)
        return cleaned


def as_image(value: ImageInput) -> ImageData:
    """Accept a path, a PIL image, a numpy array (``HWC``/``HW``; uint8, uint16 or float in
    [0, 1], sRGB) or an :class:`ImageData`. A file's or PIL image's embedded ICC profile is
    converted to sRGB (an RGB one is kept for the result)."""
    if isinstance(value, ImageData):
        return value
    if isinstance(value, (str, Path)):
        return read_image(value)
    if isinstance(value, Image.Image):
        icc = value.info.get("icc_profile")
        if value.mode in ("I;16", "I;16B", "I;16L", "I"):
            return from_array(np.asarray(value).astype(np.uint16), icc_profile=icc)
        if value.mode == "F":
            return from_array(np.asarray(value, dtype=np.float32), icc_profile=icc)
        has_alpha = value.mode in ("RGBA", "LA", "PA") or "transparency" in value.info
        if value.mode in ("1", "L", "LA"):
            gray = np.asarray(value.convert("LA" if has_alpha else "L"))
            return from_array(gray, icc_profile=icc)
        rgb = np.asarray(value.convert("RGBA" if has_alpha else "RGB"))
        return from_array(rgb, icc_profile=icc)
    if isinstance(value, np.ndarray):
        return from_array(value)
    raise TypeError(f"cannot colorize a {type(value).__name__}; give a path, array or PIL image")


def resolve_steps(steps: Sequence[Any], stage: str, host: Any) -> list[Step]:
    """``"name"`` or ``(name, {options})`` items -> :class:`Step` s, all checked up front:
    unknown names and options the step does not take are an :class:`OptionError`. Items that
    are already :class:`Step` s of ``stage`` are kept as they are."""
    registered: dict[str, Any] | None = None  # looked up only if a step needs it
    resolved = []
    for step in steps:
        if isinstance(step, Step) and step.stage == stage:
            resolved.append(step)
            continue
        (spec,) = check_steps([step], stage)
        name, options = (spec, {}) if isinstance(spec, str) else (spec[0], dict(spec[1]))
        registered = host.processors() if registered is None else registered
        processor = registered.get(name)
        if processor is None or processor.stage != stage:
            known = sorted(n for n, p in registered.items() if p.stage == stage)
            raise OptionError(
                f"unknown {stage}-processing step {name!r} (available: {', '.join(known)})"
            )
        try:
            inspect.signature(processor.function).bind(None, None, **options)
        except TypeError as exc:
            raise OptionError(f"{stage}-processing step {name!r}: {exc}") from None
        except ValueError:  # no introspectable signature: checked when it runs
            pass
        resolved.append(Step(name, stage, processor.function, options))
    return resolved


class DefaultPipeline:
    """How the :class:`Colorizer` fits images to the network and back (this project's way).

    Working shape about ``size``² with the aspect ratio kept, antialiased resizing, ab upsampled
    guided by the full-resolution L, a chroma-only gamut fit and rounding to output levels.
    """

    #: The ``compat`` name that selects this pipeline.
    compat: str | None = None
    #: Resize the network's inputs with antialiasing.
    antialias = True
    #: Quantise output levels by truncation (the authors') instead of rounding.
    truncate = False

    def working_shape(
        self, height: int, width: int, size: int | str, multiple: int = 16
    ) -> tuple[int, int]:
        """The network's input shape for a ``height x width`` image: about ``size``² pixels,
        the aspect ratio kept; ``"native"``: the image's own size rounded up to a multiple
        (the input is padded)."""
        if size == NATIVE:
            return (-(-height // multiple) * multiple, -(-width // multiple) * multiple)
        scale = int(size) / (height * width) ** 0.5
        return (
            max(multiple, round(height * scale / multiple) * multiple),
            max(multiple, round(width * scale / multiple) * multiple),
        )

    def network_l(
        self, l_full: np.ndarray, shape: tuple[int, int], size: int | str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The network's L input at ``shape`` (padded for native) and the unpadded small L."""
        if size == NATIVE:
            pad_h, pad_w = shape[0] - l_full.shape[-2], shape[1] - l_full.shape[-1]
            l_in = SCALING.normalize_lightness(l_full)
            padding = [(0, 0)] * (l_in.ndim - 2) + [(0, pad_h), (0, pad_w)]
            return np.pad(l_in, padding, mode="edge"), l_full
        l_small = resize(l_full, shape, antialias=True)
        return SCALING.normalize_lightness(l_small), l_small

    def ab_rows(self, ab_low: np.ndarray, l_small: np.ndarray, size: tuple[int, int]) -> AbRows:
        """ab at the network's resolution -> a function giving the ab of any rows of the
        ``size`` image from their L (``(lum_rows, start) -> ab_rows``): ab upsampled guided by
        the full-resolution L, strip by strip."""
        if tuple(ab_low.shape[-2:]) == tuple(size):
            return lambda lum, start: ab_low[..., start : start + lum.shape[-2], :]
        coefficients = guided_coefficients(ab_low, l_small / 100)
        return lambda lum, start: apply_guided(coefficients, lum / 100, size, start)

    def to_rgb(self, lab: np.ndarray) -> np.ndarray:
        """Lab -> sRGB, out-of-gamut colours losing chroma, never lightness."""
        return lab_to_rgb_in_gamut(lab)


class OfficialPipeline(DefaultPipeline):
    """The authors' test script: ``size`` x ``size`` inputs (aspect ratio not kept), resizing
    without antialiasing (L normalised first), plain bilinear upsampling of ab, clipped RGB
    and truncated output levels."""

    compat = "official"
    antialias = False
    truncate = True

    def working_shape(
        self, height: int, width: int, size: int | str, multiple: int = 16
    ) -> tuple[int, int]:
        if size == NATIVE:
            return super().working_shape(height, width, size, multiple)
        return (int(size), int(size))

    def network_l(
        self, l_full: np.ndarray, shape: tuple[int, int], size: int | str
    ) -> tuple[np.ndarray, np.ndarray]:
        if size == NATIVE:
            return super().network_l(l_full, shape, size)
        l_in = resize(SCALING.normalize_lightness(l_full), shape, antialias=False)
        return l_in, SCALING.lightness_from_normalized(l_in)

    def ab_rows(self, ab_low: np.ndarray, l_small: np.ndarray, size: tuple[int, int]) -> AbRows:
        return lambda lum, start: upsample_rows(ab_low, size, start, start + lum.shape[-2])

    def to_rgb(self, lab: np.ndarray) -> np.ndarray:
        return lab_to_rgb(lab, clip=True)


#: The pipelines by ``compat`` name.
PIPELINES: dict[str | None, DefaultPipeline] = {
    pipeline.compat: pipeline for pipeline in (DefaultPipeline(), OfficialPipeline())
}
COMPAT_MODES = tuple(PIPELINES)


def pipeline_for(compat: str | None) -> DefaultPipeline:
    """The pipeline of a ``compat`` mode (``None`` or ``"official"``); else :class:`OptionError`."""
    if compat not in PIPELINES:
        raise OptionError(f"compat must be 'official' or None, not {compat!r}")
    return PIPELINES[compat]


def working_shape(
    height: int, width: int, size: int | str, compat: str | None, multiple: int = 16
) -> tuple[int, int]:
    """The network's input shape for a ``height x width`` image in a ``compat`` mode
    (:meth:`DefaultPipeline.working_shape`; ``official``: exactly ``size`` x ``size``)."""
    return pipeline_for(compat).working_shape(height, width, size, multiple)


@dataclass
class Colorized:
    """A colorized image at the target's full resolution.

    ``rgb``: float32 ``[H, W, 3]`` sRGB in [0, 1]; ``alpha``: the target's alpha, untouched;
    ``bit_depth``: the target's; ``truncate``: quantise like the authors (``compat="official"``);
    ``icc_profile``: the target's embedded RGB ICC profile (:attr:`ImageData.icc_profile`), which
    :meth:`to_array` and :meth:`save` convert back to.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    truncate: bool = False
    icc_profile: bytes | None = None

    def _target_rgb(self) -> np.ndarray:
        """``rgb`` in the target's colour space: its ICC profile's, else sRGB."""
        return self.rgb if self.icc_profile is None else from_srgb(self.rgb, self.icc_profile)

    def to_array(self, dtype: Any = None) -> np.ndarray:
        """``HWC`` array in ``dtype`` (default: the target's bit depth), alpha re-attached, in
        the target's colour space (its ICC profile's when it had one, else sRGB)."""
        if dtype is None:
            dtype = {8: np.uint8, 16: np.uint16}.get(self.bit_depth, np.float32)
        source = ImageData(self.rgb, self.alpha, self.bit_depth, "RGB", False)
        return to_array(source, self._target_rgb(), dtype, truncate=self.truncate)

    def save(self, path: str | Path, bit_depth: int | None = None) -> None:
        """Write atomically; ``bit_depth`` defaults to the target's (8 for JPEG). The file is in
        the target's colour space and carries its ICC profile."""
        depth = bit_depth or self.bit_depth
        write_image(
            path,
            self._target_rgb(),
            self.alpha,
            bit_depth=depth,
            truncate=self.truncate,
            icc_profile=self.icc_profile,
        )


class Colorizer:
    """Load once, colorize many: ``embed()`` a reference (cached), ``colorize()`` targets.

    ``model``: a torch model (the ``[torch]`` backend: :class:`~c2e_core.inference.
    torch_networks.TorchNetworks` on ``device``), or the networks of runtime weights
    (:class:`~c2e_core.runtime.networks.OnnxNetworks`: onnxruntime on ``device``'s execution
    provider, fp32, no torch). Everything around the networks is numpy, the same for both.
    ``size``: the network's working size (256 like the authors, a multiple of 16 up to 4096,
    or ``"native"``). ``compat="official"`` reproduces the authors' test pipeline exactly.
    ``strip_pixels``: size of the strips the full-resolution stages work in (None: the whole
    image at once; the output is the same up to float rounding). ``threads``: how many strips
    the full-resolution stages work on at once (default: one per core; numpy releases the GIL),
    the strips made smaller so that the pixels in flight stay within ``strip_pixels``.
    ``precision`` (torch models): ``"fp32"`` (default, bit-faithful), ``"bf16"``/``"fp16"``
    autocast (GPU; modulation and demodulation always stay fp32), or ``"int8"`` (CPU: the static
    convolution stacks quantized, see :mod:`c2e_core.inference.quantization`). Options are
    checked by :class:`~c2e_core.options.ColorizeRequest`.
    """

    def __init__(
        self,
        model: Any,
        *,
        device: Any = "auto",
        size: int | str = 256,
        compat: str | None = None,
        precision: str = "fp32",
        reference_size: int = 256,
        batch_size: int = 8,
        host: Any = None,
        info: dict[str, Any] | None = None,
        strip_pixels: int | None = STRIP_PIXELS,
        threads: int | None = None,
    ):
        from c2e_core.runtime.networks import OnnxNetworks

        request = ColorizeRequest(size=size, compat=compat, precision=precision)
        if isinstance(model, OnnxNetworks):
            if request.precision != "fp32":
                raise OptionError("runtime weights (.c2e.onnx) run in fp32 only")
            self.networks: Any = model.on(str(device))
        else:  # a torch model
            from c2e_core.inference.torch_networks import TorchNetworks

            self.networks = TorchNetworks(model, device, request.precision)
        self.model = model
        self.device = getattr(self.networks, "device", self.networks.device_name)
        self.size, self.precision = request.size, request.precision
        self.pipeline = pipeline_for(request.compat)
        self.reference_size = int(reference_size)
        self.batch_size = max(1, int(batch_size))
        self.strip_pixels = None if strip_pixels is None else max(1, int(strip_pixels))
        self.threads = max(1, int(threads or _cores()))
        self.info = dict(info or {})
        self._host = host
        self._embeddings: OrderedDict[tuple, Code] = OrderedDict()
        self._predictions: OrderedDict[tuple, _Prediction] = OrderedDict()
        self._multiple = int(self.networks.size_multiple)

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_weights(cls, spec: Any, **kwargs: Any) -> Colorizer:
        """Build from a weights name, a c2e weights file, runtime weights (``*.c2e.onnx``), an
        authors' checkpoint file, or :class:`~c2e_core.weights.store.ResolvedWeights` (not
        resolved again). Runtime weights need no torch; the others need the ``[torch]`` extra."""
        from c2e_core.runtime.networks import OnnxNetworks
        from c2e_core.runtime.weights import is_runtime_weights, read_runtime_weights
        from c2e_core.weights.store import ResolvedWeights, resolve_weights, torch_required

        host = kwargs.get("host")
        if host is None:
            from c2e_core.plugins import get_plugin_host

            host = get_plugin_host()
        resolved = spec if isinstance(spec, ResolvedWeights) else resolve_weights(spec, host=host)
        if is_runtime_weights(resolved.path):
            weights = read_runtime_weights(resolved.path, resolved.expected_sha256)
            info = {"weights": resolved.name or str(resolved.path),
                    "architecture": weights.architecture}  # fmt: skip
            networks = OnnxNetworks(weights, str(kwargs.get("device", "auto")))
            return cls(networks, info=info, **kwargs)
        with torch_required(resolved.path):
            from c2e_core.weights.loader import load_model

            loaded = load_model(resolved, host=host)
        info = {"weights": loaded.name or str(loaded.path), "architecture": loaded.architecture}
        return cls(loaded.model, info=info, **kwargs)

    @property
    def host(self):
        if self._host is None:
            from c2e_core.plugins import get_plugin_host

            self._host = get_plugin_host()
        return self._host

    @property
    def compat(self) -> str | None:
        """The ``compat`` mode of the pipeline chosen at construction."""
        return self.pipeline.compat

    @staticmethod
    def _planar(rgb: np.ndarray) -> np.ndarray:
        """``[H, W, 3]`` -> ``[1, 3, H, W]`` float32 (the networks' and the maths' layout)."""
        return channels_first(rgb)[None]

    @staticmethod
    def _run_pre(rgb: np.ndarray, role: str, steps: Sequence[Step]) -> np.ndarray:
        for step in steps:
            rgb = np.asarray(step(rgb, role), dtype=np.float32)
        return rgb

    def forget(self, references: bool = True) -> None:
        """Drop the kept predictions and, unless ``references`` is False, the kept reference
        codes: the next call runs the networks again (benchmarks timing them; a host freeing
        memory)."""
        if references:
            self._embeddings.clear()
        self._predictions.clear()

    # -- reference --------------------------------------------------------------------------
    def embed(
        self,
        reference: ImageInput | Sequence[ImageInput],
        weights: Sequence[float] | None = None,
        pre: Sequence[str | tuple | Step] = (),
    ) -> Code:
        """The reference code (a tuple of float32 arrays: for the paper's model, the colour
        embedding ``[1, E, 1, 1]``) of one reference, or the blend of several (the weighted
        mean, or a correspondence model's tokens side by side).

        Codes are cached by image content, so repeated calls are free.
        """
        from c2e_core.runtime.networks import blend_codes

        references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
        if not references:
            raise OptionError("at least one reference is needed")
        if weights is None:
            weights = [1.0] * len(references)
        weights = list(check_reference_weights(weights, len(references)))
        steps = resolve_steps(pre, "pre", self.host)
        codes = [self._embed_one(as_image(r), steps) for r in references]
        if len(codes) == 1:
            return codes[0]
        return blend_codes(codes, weights, self.networks.blend)

    def _embed_one(self, image: ImageData, pre: Sequence[Step]) -> Code:
        digest = hashlib.sha1(np.ascontiguousarray(image.rgb).data, usedforsecurity=False)
        key: tuple[Any, ...] | None = (
            digest.hexdigest(),
            image.rgb.shape,
            self.reference_size,
            self.compat,
            tuple((s.name, tuple(sorted(s.options.items()))) for s in pre),
        )
        try:
            hash(key)
        except TypeError:  # a step option holds a list or an object: not cached
            key = None
        if key is not None and key in self._embeddings:
            self._embeddings.move_to_end(key)
            return self._embeddings[key]
        rgb = self._run_pre(self._planar(image.rgb), "reference", pre)
        shape = self.pipeline.working_shape(
            image.height, image.width, self.reference_size, self._multiple
        )
        code = tuple(self.networks.embed(resize(rgb, shape, antialias=self.pipeline.antialias)))
        if key is not None:
            self._embeddings[key] = code
            while len(self._embeddings) > 32:
                self._embeddings.popitem(last=False)
        return code

    # -- targets ----------------------------------------------------------------------------
    def colorize(
        self,
        target: ImageInput | Sequence[ImageInput],
        reference: ImageInput | Sequence[ImageInput] | None = None,
        *,
        embedding: Code | None = None,
        reference_weights: Sequence[float] | None = None,
        size: int | str | None = None,
        mask: np.ndarray | None = None,
        strength: float = 1.0,
        clean: float | None = None,
        keep_palette: bool | None = None,
        pre: Sequence[Any] = (),
        post: Sequence[Any] = (),
        progress: ProgressCallback | None = None,
    ) -> Colorized | list[Colorized]:
        """Colorize one target (returns :class:`Colorized`) or a list (returns a list).

        Give ``reference`` (one or several images, blended by ``reference_weights``) or a
        precomputed ``embedding`` (what :meth:`embed` returned). ``pre`` steps change what the
        network sees (targets and references), ``post`` steps edit the predicted Lab; then
        ``strength`` (0 keeps the original colours, 1 the prediction) and the ``mask``
        (``[H, W]`` in [0, 1], one target only: a soft selection) blend the result with the
        target's own colours, so nothing outside the selection ever changes. ``clean`` (0 to 1;
        ``None``: 1, or 0 with ``compat="official"``) moves the network's colours towards one
        colour per flat region first, and ``keep_palette`` (``None``: yes) gives them back the
        spread of colours that this narrows (:mod:`c2e_core.inference.cleanup`).
        """
        single = not isinstance(target, (list, tuple))
        targets = [target] if single else list(target)
        if (reference is None) == (embedding is None):
            raise OptionError("give either a reference or an embedding")
        if mask is not None and len(targets) != 1:
            raise OptionError("a selection mask applies to a single target")
        request = ColorizeRequest(
            size=self.size if size is None else size,
            strength=strength,
            clean=clean,
            keep_palette=keep_palette,
            precision=self.precision,
            compat=self.compat,
            pre=pre,
            post=post,
        )
        size = request.size
        pre_steps = resolve_steps(request.pre, "pre", self.host)
        post_steps = resolve_steps(request.post, "post", self.host)
        if mask is not None:
            targets[0] = as_image(targets[0])
            if np.shape(mask) != (targets[0].height, targets[0].width):
                raise OptionError(
                    f"the mask is {np.shape(mask)}, the target is "
                    f"{(targets[0].height, targets[0].width)}"
                )
        tracker = Progress("colorize", len(targets) + 1, progress, self.host)
        tracker.check("embedding the reference")
        if embedding is None:
            embedding = self.embed(reference, reference_weights, pre=pre_steps)
        code = _as_code(embedding)
        tracker.step("reference ready")
        results: list[Colorized] = []
        for start in range(0, len(targets), self.batch_size):
            chunk = [as_image(t) for t in targets[start : start + self.batch_size]]
            for image, colorized in zip(
                chunk,
                self._colorize_chunk(
                    chunk, code, size, pre_steps, request.clean, request.keep_palette,
                    (post_steps, request.strength, mask),
                ),
                strict=True,
            ):
                results.append(colorized)
                tracker.step(f"{image.width}x{image.height} done")
        return results[0] if single else results

    def _strips(self, image: ImageData) -> list[tuple[int, int]]:
        return row_strips(image.height, image.width, self.strip_pixels)

    def _work_strips(self, image: ImageData) -> list[tuple[int, int]]:
        """The strips that :meth:`_each_strip` works on in parallel: ``threads`` of them hold
        at most ``strip_pixels`` (or the whole image) together."""
        budget = image.height * image.width if self.strip_pixels is None else self.strip_pixels
        per_thread = -(-min(budget, image.height * image.width) // self.threads)
        return row_strips(image.height, image.width, max(image.width, per_thread))

    def _each_strip(self, strips: list[tuple[int, int]], work: Callable[[int, int], None]):
        """``work(start, stop)`` for every strip, ``threads`` at a time."""
        if self.threads == 1 or len(strips) == 1:
            for start, stop in strips:
                work(start, stop)
            return
        with ThreadPoolExecutor(self.threads, thread_name_prefix="c2e-strips") as pool:
            for future in [pool.submit(work, start, stop) for start, stop in strips]:
                future.result()

    def _lightness_of_rows(self, image: ImageData, start: int, stop: int) -> np.ndarray:
        """L ``[1, 1, rows, W]`` of the image's rows ``start:stop``; a gray image's (the usual
        target) from one channel."""
        rows = image.rgb[start:stop]
        if is_gray(rows):  # the pixels, not the source's mode: a gray profile may tint them
            return gray_to_lightness(rows[None, :, :, 0])
        return rgb_to_lightness(self._planar(rows))

    def _lightness(self, image: ImageData) -> np.ndarray:
        """The target's full-resolution L ``[1, 1, H, W]``, computed strip by strip."""
        lum = np.empty((1, 1, image.height, image.width), dtype=np.float32)

        def work(start: int, stop: int) -> None:
            lum[..., start:stop, :] = self._lightness_of_rows(image, start, stop)

        self._each_strip(self._work_strips(image), work)
        return lum

    def _colorize_chunk(
        self, images, code, size, pre, clean: float, palette: bool, finish
    ) -> list[Colorized]:
        prepared = []
        for image in images:
            shape = self.pipeline.working_shape(image.height, image.width, size, self._multiple)
            # an image of one strip keeps its L for the output; a bigger one recomputes it per
            # strip there, so that its full-resolution L is never held whole
            lum = self._lightness(image) if len(self._strips(image)) == 1 else None
            if pre:
                rgb = self._run_pre(self._planar(image.rgb), "target", pre)
                net_l = rgb_to_lightness(rgb)
            elif lum is not None:
                net_l = lum
            elif size != NATIVE and self.pipeline.antialias:
                net_l = shrink_in_strips(
                    partial(self._lightness_of_rows, image),
                    image.height,
                    image.width,
                    shape,
                    self._strips(image),
                )
            else:  # native size, or the authors' pipeline (normalised L resized whole)
                net_l = self._lightness(image)
            small = self.pipeline.network_l(net_l, shape, size)
            del net_l
            prepared.append((image, shape, small, lum))
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (_, shape, _, _) in enumerate(prepared):
            groups.setdefault(shape, []).append(index)
        ab_low: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for indices in groups.values():
            small = [prepared[i][2] for i in indices]
            l_in = np.concatenate([s[0] for s in small]).astype(np.float32, copy=False)
            prediction = self._predict(l_in, code)
            for j, i in enumerate(indices):
                l_small = small[j][1]
                ab_low[i] = (prediction.cleanup(j, l_small, clean, palette), l_small)
        results = []
        for index, (image, _, _, lum) in enumerate(prepared):
            ab, l_small = ab_low[index]
            results.append(self._finish(image, lum, ab, l_small, *finish))
        return results

    def _predict(self, l_in: np.ndarray, code: Code) -> _Prediction:
        """The network's ab for working-size lightness ``l_in`` and ``code``; the last few
        answers are kept (up to :data:`PREDICTION_CACHE_PIXELS` each) with their cleanups, so
        that colorizing the same target again with another strength or mask (a dialog's
        preview, say) costs no network call, nor another cleanup."""
        if l_in.size > PREDICTION_CACHE_PIXELS:
            return _Prediction(self._network_ab(l_in, code))
        digest = hashlib.sha1(np.ascontiguousarray(l_in).data, usedforsecurity=False)
        for part in code:
            digest.update(np.ascontiguousarray(part).data)
        key = (digest.hexdigest(), l_in.shape, tuple(part.shape for part in code))
        if key in self._predictions:
            self._predictions.move_to_end(key)
            return self._predictions[key]
        prediction = _Prediction(self._network_ab(l_in, code))
        self._predictions[key] = prediction
        while len(self._predictions) > PREDICTIONS_KEPT:
            self._predictions.popitem(last=False)
        return prediction

    def _network_ab(self, l_in: np.ndarray, code: Code) -> np.ndarray:
        """One network call: ab in Lab units, read-only."""
        ab = self.networks.predict_ab(l_in, code) * np.float32(self.networks.ab_scale)
        ab.flags.writeable = False
        return ab

    def _finish(self, image, lum_full, ab_low, l_small, post_steps, strength, mask) -> Colorized:
        """Upsample ab, run the post steps, blend by strength and mask, convert to RGB, in
        strips of full-width rows (:data:`STRIP_PIXELS`), so that a huge scan needs little
        more memory than its input and output arrays. ``lum_full``: the target's L when it was
        kept (one strip), else None (computed per strip). The target's full Lab is computed
        only when the post steps or the blending need the original colours."""
        ab_of = self.pipeline.ab_rows(ab_low, l_small, (image.height, image.width))
        blend = mask is not None or strength != 1.0
        array = np.empty((image.height, image.width, 3), dtype=np.float32)

        def work(start: int, stop: int) -> None:
            if lum_full is None:
                lum = self._lightness_of_rows(image, start, stop)
            else:
                lum = lum_full[..., start:stop, :]
            out = np.concatenate([lum, ab_of(lum, start)], axis=1)
            if post_steps or blend:
                lab = rgb_to_lab(self._planar(image.rgb[start:stop]))
                for step in post_steps:
                    out = np.asarray(step(out, lab), dtype=np.float32)
            if blend:
                weight: Any = np.float32(strength)
                if mask is not None:
                    rows = np.nan_to_num(np.asarray(mask[start:stop], np.float32))
                    weight = weight * np.clip(rows, 0, 1)[None, None]
                out = lab + weight * (out - lab)
            array[start:stop] = np.moveaxis(self.pipeline.to_rgb(out)[0], 0, -1)

        self._each_strip(self._work_strips(image), work)
        return Colorized(
            array,
            image.alpha,
            image.bit_depth,
            truncate=self.pipeline.truncate,
            icc_profile=image.icc_profile,
        )


def _cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _as_code(embedding: Any) -> Code:
    """What :meth:`Colorizer.embed` returned (or a torch tensor / tuple of them from older
    callers) as a tuple of float32 arrays."""
    parts = embedding if isinstance(embedding, tuple) else (embedding,)
    arrays = []
    for part in parts:
        if hasattr(part, "detach"):  # a torch tensor
            part = part.detach().float().cpu().numpy()
        arrays.append(np.asarray(part, dtype=np.float32))
    return tuple(arrays)
