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
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
from PIL import Image
from torch import nn

from c2e_core.errors import OptionError
from c2e_core.files.colour_profiles import from_srgb
from c2e_core.files.images import ImageData, from_array, read_image, to_array, write_image
from c2e_core.files.strips import STRIP_PIXELS, row_strips
from c2e_core.inference.device import select_device
from c2e_core.inference.progress import Progress, ProgressCallback
from c2e_core.inference.upsampling import (
    apply_guided,
    guided_coefficients,
    resize,
    shrink_in_strips,
    upsample_rows,
)
from c2e_core.modeling.color2embed import LabScaling, lab_scaling
from c2e_core.modeling.colour import lab_to_rgb, lab_to_rgb_in_gamut, rgb_to_lab, rgb_to_lightness
from c2e_core.options import (
    NATIVE,
    ColorizeRequest,
    Step,
    check_reference_weights,
    check_steps,
)
from c2e_core.weights.onnx_model import OnnxModel

ImageInput = Union[str, Path, np.ndarray, Image.Image, ImageData]  # noqa: UP007 (runtime alias)
#: ``(lum_rows [1,1,r,W], start_row) -> ab_rows [1,2,r,W]``: ab of some rows of the full image.
AbRows = Callable[[torch.Tensor, int], torch.Tensor]


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
        self, l_full: torch.Tensor, shape: tuple[int, int], size: int | str, scaling: LabScaling
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's L input at ``shape`` (padded for native) and the unpadded small L."""
        if size == NATIVE:
            pad_h, pad_w = shape[0] - l_full.shape[-2], shape[1] - l_full.shape[-1]
            l_in = scaling.normalize_lightness(l_full)
            return torch.nn.functional.pad(l_in, (0, pad_w, 0, pad_h), mode="replicate"), l_full
        l_small = resize(l_full, shape, antialias=True)
        return scaling.normalize_lightness(l_small), l_small

    def ab_rows(self, ab_low: torch.Tensor, l_small: torch.Tensor, size: tuple[int, int]) -> AbRows:
        """ab at the network's resolution -> a function giving the ab of any rows of the
        ``size`` image from their L (``(lum_rows, start) -> ab_rows``): ab upsampled guided by
        the full-resolution L, strip by strip."""
        if tuple(ab_low.shape[-2:]) == tuple(size):
            return lambda lum, start: ab_low[..., start : start + lum.shape[-2], :]
        coefficients = guided_coefficients(ab_low, l_small / 100)
        return lambda lum, start: apply_guided(coefficients, lum / 100, size, start)

    def to_rgb(self, lab: torch.Tensor) -> torch.Tensor:
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
        self, l_full: torch.Tensor, shape: tuple[int, int], size: int | str, scaling: LabScaling
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if size == NATIVE:
            return super().network_l(l_full, shape, size, scaling)
        l_in = resize(scaling.normalize_lightness(l_full), shape, antialias=False)
        return l_in, scaling.lightness_from_normalized(l_in)

    def ab_rows(self, ab_low: torch.Tensor, l_small: torch.Tensor, size: tuple[int, int]) -> AbRows:
        return lambda lum, start: upsample_rows(ab_low, size, start, start + lum.shape[-2])

    def to_rgb(self, lab: torch.Tensor) -> torch.Tensor:
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


def prepare_for_inference(model: nn.Module, device: torch.device) -> nn.Module:
    """Eval mode on ``device`` with channels-last 4-D weights (faster convolutions on CPU and
    GPU). The model is changed in place: the :class:`Colorizer` owns the model it is given."""
    model = model.eval().to(device)
    for parameter in model.parameters():
        if parameter.dim() == 4:
            parameter.data = parameter.data.contiguous(memory_format=torch.channels_last)
    return model


class Colorizer:
    """Load once, colorize many: ``embed()`` a reference (cached), ``colorize()`` targets.

    ``size``: the network's working size (256 like the authors, a multiple of 16 up to 4096,
    or ``"native"``). ``compat="official"`` reproduces the authors' test pipeline exactly.
    ``strip_pixels``: size of the strips the full-resolution stages work in (None: the whole
    image at once; the output is the same up to float rounding).
    ``model``: a torch model, or an :class:`~c2e_core.weights.onnx_model.OnnxModel` (runtime
    weights: the networks run in onnxruntime on ``device``'s execution provider, fp32).
    ``precision``: ``"fp32"`` (default, bit-faithful), ``"bf16"``/``"fp16"`` autocast (GPU;
    modulation and demodulation always stay fp32), or ``"int8"`` (CPU: the static convolution
    stacks quantized, see :mod:`c2e_core.inference.quantization`). Options are checked by
    :class:`~c2e_core.options.ColorizeRequest`.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "auto",
        size: int | str = 256,
        compat: str | None = None,
        precision: str = "fp32",
        reference_size: int = 256,
        batch_size: int = 8,
        host: Any = None,
        info: dict[str, Any] | None = None,
        strip_pixels: int | None = STRIP_PIXELS,
    ):
        request = ColorizeRequest(size=size, compat=compat, precision=precision)
        runtime = isinstance(model, OnnxModel)
        if runtime:  # onnxruntime runs the networks; the rest runs on the CPU
            if request.precision != "fp32":
                raise OptionError("runtime weights (.c2e.onnx) run in fp32 only")
            model.open(str(device))
            self.device = torch.device("cpu")
        else:
            self.device = select_device(device)
        if precision == "int8" and self.device.type != "cpu":
            raise OptionError("int8 runs on the CPU only; on a GPU use fp16 or bf16")
        self.size, self.precision = request.size, request.precision
        self.pipeline = pipeline_for(request.compat)
        self.model = model if runtime else prepare_for_inference(model, self.device)
        if precision == "int8":
            from c2e_core.inference.quantization import quantize_static_parts

            self.model = quantize_static_parts(self.model)
        self.scaling = lab_scaling(self.model)
        self.reference_size = int(reference_size)
        self.batch_size = max(1, int(batch_size))
        self.strip_pixels = None if strip_pixels is None else max(1, int(strip_pixels))
        self.info = dict(info or {})
        self._host = host
        self._embeddings: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._multiple = int(getattr(model, "size_multiple", 16))

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_weights(cls, spec: Any, **kwargs: Any) -> Colorizer:
        """Build from a weights name, a c2e weights file, an authors' checkpoint file, or
        :class:`~c2e_core.weights.store.ResolvedWeights` (not resolved again)."""
        from c2e_core.weights.loader import load_model

        loaded = load_model(spec, host=kwargs.get("host"))
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

    def _autocast(self):
        if self.precision in ("fp32", "int8"):
            return torch.autocast(self.device.type, enabled=False)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _to_tensor(self, rgb: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(rgb)).to(self.device).permute(2, 0, 1)[None]

    @staticmethod
    def _run_pre(rgb: torch.Tensor, role: str, steps: Sequence[Step]) -> torch.Tensor:
        for step in steps:
            rgb = step(rgb, role)
        return rgb

    # -- reference --------------------------------------------------------------------------
    @torch.inference_mode()
    def embed(
        self,
        reference: ImageInput | Sequence[ImageInput],
        weights: Sequence[float] | None = None,
        pre: Sequence[str | tuple | Step] = (),
    ) -> torch.Tensor:
        """Colour embedding ``[1, E, 1, 1]`` of one reference, or the weighted mean of several
        (the architecture's own reference code and blend where it has ``blend_embeddings``).

        Embeddings are cached by image content, so repeated calls are free.
        """
        references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
        if not references:
            raise OptionError("at least one reference is needed")
        if weights is None:
            weights = [1.0] * len(references)
        weights = list(check_reference_weights(weights, len(references)))
        steps = resolve_steps(pre, "pre", self.host)
        embeddings = [self._embed_one(as_image(r), steps) for r in references]
        if len(embeddings) == 1:
            return embeddings[0]
        blend = getattr(self.model, "blend_embeddings", None)
        if blend is not None:  # an architecture whose reference code is more than a vector
            return blend(embeddings, weights)
        total = float(sum(weights))
        return sum(e * (w / total) for e, w in zip(embeddings, weights, strict=True))

    def _embed_one(self, image: ImageData, pre: Sequence[Step]) -> torch.Tensor:
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
        rgb = self._run_pre(self._to_tensor(image.rgb), "reference", pre)
        shape = self.pipeline.working_shape(
            image.height, image.width, self.reference_size, self._multiple
        )
        rgb = resize(rgb, shape, antialias=self.pipeline.antialias)
        rgb = rgb.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            embedding = self.model.embed(rgb).float()
        if key is not None:
            self._embeddings[key] = embedding
            while len(self._embeddings) > 32:
                self._embeddings.popitem(last=False)
        return embedding

    # -- targets ----------------------------------------------------------------------------
    @torch.inference_mode()
    def colorize(
        self,
        target: ImageInput | Sequence[ImageInput],
        reference: ImageInput | Sequence[ImageInput] | None = None,
        *,
        embedding: torch.Tensor | None = None,
        reference_weights: Sequence[float] | None = None,
        size: int | str | None = None,
        mask: np.ndarray | None = None,
        strength: float = 1.0,
        pre: Sequence[Any] = (),
        post: Sequence[Any] = (),
        progress: ProgressCallback | None = None,
    ) -> Colorized | list[Colorized]:
        """Colorize one target (returns :class:`Colorized`) or a list (returns a list).

        Give ``reference`` (one or several images, blended by ``reference_weights``) or a
        precomputed ``embedding``. ``pre`` steps change what the network sees (targets and
        references), ``post`` steps edit the predicted Lab; then ``strength`` (0 keeps the
        original colours, 1 the prediction) and the ``mask`` (``[H, W]`` in [0, 1], one target
        only: a soft selection) blend the result with the target's own colours, so nothing
        outside the selection ever changes.
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
        embedding = embedding.to(self.device, torch.float32)
        tracker.step("reference ready")
        results: list[Colorized] = []
        for start in range(0, len(targets), self.batch_size):
            chunk = [as_image(t) for t in targets[start : start + self.batch_size]]
            for image, colorized in zip(
                chunk,
                self._colorize_chunk(
                    chunk, embedding, size, pre_steps, (post_steps, request.strength, mask)
                ),
                strict=True,
            ):
                results.append(colorized)
                tracker.step(f"{image.width}x{image.height} done")
        return results[0] if single else results

    def _strips(self, image: ImageData) -> list[tuple[int, int]]:
        return row_strips(image.height, image.width, self.strip_pixels)

    def _lightness_of_rows(self, image: ImageData, start: int, stop: int) -> torch.Tensor:
        return rgb_to_lightness(self._to_tensor(image.rgb[start:stop]))

    def _lightness(self, image: ImageData) -> torch.Tensor:
        """The target's full-resolution L ``[1, 1, H, W]``, computed strip by strip."""
        lum = torch.empty((1, 1, image.height, image.width), device=self.device)
        for start, stop in self._strips(image):
            lum[..., start:stop, :] = self._lightness_of_rows(image, start, stop)
        return lum

    @torch.inference_mode()
    def _colorize_chunk(self, images, embedding, size, pre, finish) -> list[Colorized]:
        prepared = []
        for image in images:
            shape = self.pipeline.working_shape(image.height, image.width, size, self._multiple)
            # an image of one strip keeps its L for the output; a bigger one recomputes it per
            # strip there, so that its full-resolution L is never held whole
            lum = self._lightness(image) if len(self._strips(image)) == 1 else None
            if pre:
                rgb = self._run_pre(self._to_tensor(image.rgb), "target", pre)
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
            small = self.pipeline.network_l(net_l, shape, size, self.scaling)
            del net_l
            prepared.append((image, shape, small, lum))
        groups: dict[tuple[int, int], list[int]] = {}
        for index, (_, shape, _, _) in enumerate(prepared):
            groups.setdefault(shape, []).append(index)
        ab_low: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for indices in groups.values():
            small = [prepared[i][2] for i in indices]
            l_in = torch.cat([s[0] for s in small]).contiguous(memory_format=torch.channels_last)
            with self._autocast():
                ab = self.scaling.ab_from_output(self.model.predict_ab(l_in, embedding).float())
            for j, i in enumerate(indices):
                height, width = small[j][1].shape[-2:]
                ab_low[i] = (ab[j : j + 1, :, :height, :width], small[j][1])
        results = []
        for index, (image, _, _, lum) in enumerate(prepared):
            ab, l_small = ab_low[index]
            results.append(self._finish(image, lum, ab, l_small, *finish))
        return results

    def _finish(self, image, lum_full, ab_low, l_small, post_steps, strength, mask) -> Colorized:
        """Upsample ab, run the post steps, blend by strength and mask, convert to RGB, in
        strips of full-width rows (:data:`STRIP_PIXELS`), so that a huge scan needs little
        more memory than its input and output arrays. ``lum_full``: the target's L when it was
        kept (one strip), else None (computed per strip). The target's full Lab is computed
        only when the post steps or the blending need the original colours."""
        ab_of = self.pipeline.ab_rows(ab_low, l_small, (image.height, image.width))
        blend = mask is not None or strength != 1.0
        array = np.empty((image.height, image.width, 3), dtype=np.float32)
        for start, stop in self._strips(image):
            rgb = self._to_tensor(image.rgb[start:stop])
            lum = rgb_to_lightness(rgb) if lum_full is None else lum_full[..., start:stop, :]
            out = torch.cat([lum, ab_of(lum, start)], dim=1)
            if post_steps or blend:
                lab = rgb_to_lab(rgb)
                for step in post_steps:
                    out = step(out, lab)
            if blend:
                weight = torch.tensor(strength, device=self.device)
                if mask is not None:
                    rows = np.asarray(mask[start:stop], np.float32)
                    mask_rows = torch.as_tensor(rows, device=self.device)
                    weight = weight * torch.nan_to_num(mask_rows).clamp(0, 1)[None, None]
                out = lab + weight * (out - lab)
            array[start:stop] = self.pipeline.to_rgb(out)[0].permute(1, 2, 0).float().cpu()
        return Colorized(
            array,
            image.alpha,
            image.bit_depth,
            truncate=self.pipeline.truncate,
            icc_profile=image.icc_profile,
        )
