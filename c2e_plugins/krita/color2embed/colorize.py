"""Colorize a layer of a Krita document from another document, through the c2e worker.

The logic is a function of (document, layer, reference document, options, client), so tests
drive it against the real ``krita`` API without menus. It runs in three steps so that the slow
one can leave Krita's UI thread:

* :func:`prepare` (UI thread): reads the source pixels, the selection and the reference;
* :func:`run` (any thread): sends them to the worker and waits for the colorized pixels;
* :func:`apply` (UI thread): puts the result into a **new** layer above the source.

:func:`colorize` does all three in a row. The source layer is never modified, and nothing is
added to the document unless the worker succeeded.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional

from . import c2e_client
from .c2e_client import (
    HALF_SELECTED,
    NATIVE_SIZE,
    ColorizeError,
    Host,
    Pixels,
    WorkerClient,
    black_outside,
)
from .pixels import (
    LINEAR_SRGB_PROFILE,
    RGBA_LAYOUTS,
    SRGB_PROFILE,
    Rect,
    multiply_alpha,
    profile_encoding,
)

SIZES = (256, 384, 512, 768, 1024, NATIVE_SIZE)
DEVICES = ("auto", "gpu", "cpu")
SOURCES = ("layer", "visible")
#: Node types that hold no pixels of their own to colorize.
MASK_TYPES = frozenset(
    ["selectionmask", "transparencymask", "filtermask", "transformmask", "colorizemask"]
)
LAYER_PREFIX = "Colorized from "

ProgressCallback = Callable[[int, int, str], Optional[bool]]


#: How the plugin's messages name Krita, and the dialog's own way to set the worker's Python.
HOST = Host("krita", "Krita", "or set 'Worker Python' in the Colorize from Reference dialog to "
            "that environment's python (…/bin/python, or …\\Scripts\\python.exe on Windows)")


class GrayscaleDocumentError(ColorizeError):
    """The document is grayscale (GRAYA): it cannot hold a colour layer until converted."""


#: Krita's "Color" blending mode (its composite op id): the layer's hue and saturation over the
#: lightness of what lies below.
COLOUR_BLENDING = "color"


class ColorizeOptions(c2e_client.ColorizeOptions):
    """What the dialog asks: working size, device, strength, source, weights, colour only,
    the image files last used as the reference and as the second reference blended in
    (``reference_file``, ``blend_file``; ``""`` for none) and that one's share (0..1).

    ``size``: a multiple of 16 up to 4096 or ``"native"``; ``device``: ``auto``, ``gpu`` or
    ``cpu``; ``strength``: 0..1; ``clean``: 0..1 (the colour cleanup); ``keep_palette``:
    whether the cleanup keeps the palette; ``source``: ``layer``
    (the active layer) or ``visible`` (the merged image); ``weights``: a weights name or file,
    ``""`` for the worker's default.
    """

    FIELDS = c2e_client.ColorizeOptions.FIELDS + (
        ("source", "layer"), ("reference_file", ""), ("blend_file", ""),
    )
    DEVICES = DEVICES
    INDEXED_DEVICES = False

    def check_host(self) -> None:
        if self.source not in SOURCES:
            raise ColorizeError(f"source must be 'layer' or 'visible', not {self.source!r}")
        if not isinstance(self.reference_file, str) or not isinstance(self.blend_file, str):
            raise ColorizeError("reference_file and blend_file must be file paths or empty")


class PreparedJob:
    """Everything read from Krita for one colorization (made by :func:`prepare`).

    ``layer``: the source layer, or None for the visible image; ``region``: where the pixels
    come from and the new layer's pixels go; ``mask``: the selection, one byte per pixel of
    ``region``, or None; ``convert_back``: (depth, profile) to convert the result back to
    through Krita when the source's profile is not sRGB, or None; ``reference``: the
    references' pixels, blended by ``reference_weights`` (None: one, or equal shares).
    """

    def __init__(self, *, document: Any, layer: Any, region: Rect, target: Pixels,
                 reference: list[Pixels], mask: bytes | None, convert_back: tuple | None,
                 options: ColorizeOptions, layer_name: str,
                 reference_weights: list[float] | None = None):
        self.document = document
        self.layer = layer
        self.region = region
        self.target = target
        self.reference = reference
        self.reference_weights = reference_weights
        self.mask = mask
        self.convert_back = convert_back
        self.options = options
        self.layer_name = layer_name


# -- the three steps -----------------------------------------------------------------------------
def prepare(
    document: Any,
    layer: Any,
    reference: Any,
    options: ColorizeOptions,
    weights: list[float] | None = None,
) -> PreparedJob:
    """Read what the worker needs from Krita (UI thread). ``reference``: an open document or
    the path of an image file, or a list of them blended by ``weights`` (default equal) as
    the command line blends references. Raises :class:`ColorizeError`."""
    options.check()
    if document is None:
        raise ColorizeError("Open the photo to colorize first.")
    references = list(reference) if isinstance(reference, (list, tuple)) else [reference]
    if not references or any(r is None or (not isinstance(r, str) and r == document)
                             for r in references):  # fmt: skip
        raise ColorizeError(
            "Choose another open document or an image file as the colour reference."
        )
    weights = _reference_weights(weights, len(references))
    layer, region, target, mask, convert_back = read_target(document, layer, options)
    return PreparedJob(
        document=document,
        layer=layer,
        region=region,
        target=target,
        reference=[reference_file_pixels(r) if isinstance(r, str) else reference_pixels(r)
                   for r in references],
        reference_weights=weights,
        mask=mask,
        convert_back=convert_back,
        options=options,
        layer_name=LAYER_PREFIX + " + ".join(
            os.path.basename(r) if isinstance(r, str) else document_title(r) for r in references
        ),
    )


def read_target(document: Any, layer: Any, options: ColorizeOptions) -> tuple:
    """The pixels to colorize (UI thread): ``(layer, region, target, mask, convert_back)`` as
    :class:`PreparedJob` holds them (``layer`` None for the visible image). Raises
    :class:`ColorizeError`."""
    check_document(document)
    if options.source == "visible":
        layer = None
        bounds = Rect(0, 0, document.width(), document.height())
        space = (document.colorModel(), document.colorDepth(), document.colorProfile())
    else:
        if layer is None:
            raise ColorizeError("Select the layer to colorize in the Layers docker.")
        if layer.type() in MASK_TYPES:
            raise ColorizeError(
                f"'{layer.name()}' is a mask: select the layer to colorize, or colorize the "
                "visible image."
            )
        box = layer.bounds()
        bounds = Rect(box.x(), box.y(), box.width(), box.height())
        if bounds.empty:
            raise ColorizeError(
                f"The layer '{layer.name()}' is empty: choose the layer that holds the picture."
            )
        space = (layer.colorModel(), layer.colorDepth(), layer.colorProfile())
    if space[0] != "RGBA":
        raise ColorizeError(_not_rgb_message(space[0]))
    region, mask = _selection(document, bounds)
    if layer is None:
        document.refreshProjection()
        document.waitForDone()
        data = bytes(document.pixelData(region.x, region.y, region.width, region.height))
    else:
        data = bytes(layer.pixelData(region.x, region.y, region.width, region.height))
    target, convert_back = _rgba_pixels(data, region.width, region.height, space[1], space[2])
    return layer, region, target, mask, convert_back


def _reference_weights(weights: list[float] | None, count: int) -> list[float] | None:
    """Checked blending weights of ``count`` references (None: one reference, or equal)."""
    if weights is None or count == 1:
        return None
    if len(weights) != count:
        raise ColorizeError(f"{len(weights)} weights for {count} references")
    if any(isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0 for w in weights):
        raise ColorizeError("reference weights must be numbers of at least 0")
    if not sum(weights) > 0:
        raise ColorizeError("at least one reference needs a weight above 0")
    return [float(w) for w in weights]


def run(
    job: PreparedJob,
    client: WorkerClient,
    on_progress: ProgressCallback | None = None,
    request_id: str | None = None,
) -> Pixels:
    """Colorize on the worker (any thread); raises the client's ``WorkerError`` on failure."""
    request = job.options.worker_options(client.hello_info)
    return client.colorize(
        job.target,
        job.reference,
        reference_weights=job.reference_weights,
        options=request,
        on_progress=on_progress,
        request_id=request_id,
    )


def apply(job: PreparedJob, result: Pixels) -> Any:
    """Add the result as a new paint layer above the source (UI thread); returns the layer."""
    target = job.target
    layout = (result.width, result.height, result.channels, result.dtype)
    if layout != (target.width, target.height, target.channels, target.dtype):
        raise ColorizeError(f"the worker answered {result!r} for {target!r}; nothing was changed")
    document, region = job.document, job.region
    data = result.data
    if job.convert_back is not None:
        depth, profile = job.convert_back
        data = convert_rgba(data, region.width, region.height, depth, _work_profile(depth),
                            profile)
    if job.mask is not None:
        data = multiply_alpha(data, job.mask, result.dtype)
    if job.layer is not None:
        parent = job.layer.parentNode()
        if parent is None:
            raise ColorizeError("The source layer was removed meanwhile; nothing was changed.")
        above = job.layer
    else:
        parent = document.rootNode()
        children = parent.childNodes()
        above = children[-1] if children else None
    node = document.createNode(job.layer_name, "paintlayer")
    source = job.layer if job.layer is not None else document
    space = (source.colorModel(), source.colorDepth(), source.colorProfile())
    if (node.colorModel(), node.colorDepth(), node.colorProfile()) != space:
        node.setColorSpace(*space)  # a layer whose colour space differs from the document's
    node.setPixelData(data, region.x, region.y, region.width, region.height)
    if job.options.colour_only:
        node.setBlendingMode(COLOUR_BLENDING)  # hue and saturation over the original's lightness
    parent.addChildNode(node, above)  # one undoable step: undo removes the whole layer
    document.refreshProjection()
    return node


def colorize(
    document: Any,
    layer: Any,
    reference: Any,
    options: ColorizeOptions,
    client: WorkerClient,
    on_progress: ProgressCallback | None = None,
    weights: list[float] | None = None,
) -> Any:
    """Colorize ``layer`` of ``document`` after ``reference``; returns the new layer.

    Synchronous: :func:`prepare`, :func:`run` and :func:`apply` in a row (tests, scripts).
    """
    job = prepare(document, layer, reference, options, weights)
    return apply(job, run(job, client, on_progress))


# -- reading from Krita ----------------------------------------------------------------------------
def check_document(document: Any) -> None:
    """Raise :class:`ColorizeError` unless ``document`` can receive a colour layer."""
    model = document.colorModel()
    if model == "GRAYA":
        raise GrayscaleDocumentError(
            "This document is grayscale, so it cannot hold colours: convert it with "
            "Image > Convert Image Color Space… to RGB/Alpha, then colorize again."
        )
    if model != "RGBA":
        raise ColorizeError(_not_rgb_message(model))


def reference_pixels(reference: Any) -> Pixels:
    """The reference document's merged image, as the worker reads it. When the reference has a
    selection, only the selected part gives colours: the image is cut to the selection's box
    and what lies outside the selection is black, which the models read as holding no colour
    (as the black corners of a rotated reference)."""
    title = document_title(reference)
    model, depth, profile = reference.colorModel(), reference.colorDepth(), reference.colorProfile()
    if model == "GRAYA":
        raise ColorizeError(
            f"The reference '{title}' is grayscale: it has no colours to give. Choose a colour "
            "image."
        )
    box, keep = _reference_region(reference, title)
    reference.refreshProjection()
    reference.waitForDone()
    data = bytes(reference.pixelData(box.x, box.y, box.width, box.height))
    if model != "RGBA" or depth not in RGBA_LAYOUTS:  # CMYK, Lab, XYZ...: let Krita convert
        data = convert_pixels(data, box.width, box.height, (model, depth, profile),
                              ("RGBA", "U8", SRGB_PROFILE))
        pixels = Pixels(box.width, box.height, "BGRA", "u8", data)
    else:
        pixels, _ = _rgba_pixels(data, box.width, box.height, depth, profile)
    return pixels if keep is None else black_outside(pixels, keep)


def reference_file_pixels(path: str) -> Pixels:
    """An image file as the reference: opened by Krita (any format it reads, without a view),
    read as :func:`reference_pixels` reads a document, and closed again."""
    if not os.path.isfile(path):
        raise ColorizeError(f"The reference file '{path}' does not exist: choose another.")
    from krita import Krita  # only inside Krita

    document = Krita.instance().openDocument(path)
    if document is None:
        raise ColorizeError(f"Krita cannot open the reference file '{path}'.")
    try:
        document.waitForDone()
        return reference_pixels(document)
    finally:
        document.close()


def _reference_region(reference: Any, title: str) -> tuple[Rect, bytes | None]:
    """The part of the reference that gives colours (the selection's box, else the whole image)
    and, with a selection, one byte per pixel of that box: 255 inside, 0 outside."""
    whole = Rect(0, 0, reference.width(), reference.height())
    selection = reference.selection()
    if selection is None:
        return whole, None
    box = whole.intersected(Rect(selection.x(), selection.y(), selection.width(),
                                 selection.height()))  # fmt: skip
    mask = b"" if box.empty else bytes(selection.pixelData(box.x, box.y, box.width, box.height))
    keep = mask.translate(HALF_SELECTED)
    if keep.count(0) == len(keep):
        raise ColorizeError(
            f"The selection in the reference '{title}' holds nothing: change or clear it."
        )
    return box, (None if keep.count(255) == len(keep) else keep)


def document_title(document: Any) -> str:
    """The document's file name, else its name, else ``Untitled``."""
    path = document.fileName() or ""
    return os.path.basename(path) or document.name() or "Untitled"


def reference_candidates(documents: list[Any], target: Any, recent: list[Any]) -> list[Any]:
    """The open documents other than ``target``, most recently used first."""
    others = [d for d in documents if d != target]
    ordered = [d for d in recent if any(d == o for o in others)]
    ordered += [d for d in reversed(others) if not any(d == o for o in ordered)]
    return ordered


def _selection(document: Any, bounds: Rect):
    """The region to colorize (``bounds`` within the selection) and its mask, or None."""
    selection = document.selection()
    if selection is None:
        return bounds, None
    box = Rect(selection.x(), selection.y(), selection.width(), selection.height())
    region = bounds.intersected(box)
    if region.empty:
        raise ColorizeError("The selection does not touch the layer: change or clear it.")
    mask = bytes(selection.pixelData(region.x, region.y, region.width, region.height))
    if mask.count(0) == len(mask):
        raise ColorizeError("Nothing of the layer is selected: change or clear the selection.")
    if mask.count(255) == len(mask):
        mask = None
    return region, mask


def _rgba_pixels(data: bytes, width: int, height: int, depth: str, profile: str):
    """Pixels for RGBA bytes in ``depth``/``profile``, and how to convert a result back."""
    if depth not in RGBA_LAYOUTS:
        raise ColorizeError(f"unsupported colour depth {depth!r}")
    channels, dtype = RGBA_LAYOUTS[depth]
    encoding = profile_encoding(profile)
    convert_back = None
    if encoding is None:  # other primaries (Rec.2020, ACEScg, Adobe RGB...): let Krita convert
        work = _work_profile(depth)
        data = convert_rgba(data, width, height, depth, profile, work)
        encoding = "linear" if work == LINEAR_SRGB_PROFILE else "srgb"
        convert_back = (depth, profile)
    pixels = Pixels(width, height, channels, dtype, data, linear=encoding == "linear")
    return pixels, convert_back


def _work_profile(depth: str) -> str:
    """The sRGB profile other profiles are converted to: linear for floats (no clipping)."""
    return LINEAR_SRGB_PROFILE if depth.startswith("F") else SRGB_PROFILE


def _not_rgb_message(model: str) -> str:
    return (
        f"Color2Embed works on RGB images and this one is {model}: convert it with "
        "Image > Convert Image Color Space… to RGB/Alpha, then colorize again."
    )


def convert_rgba(data: bytes, width: int, height: int, depth: str, source: str,
                 destination: str) -> bytes:
    """RGBA pixels converted from one profile to another by Krita's colour management."""
    return convert_pixels(data, width, height, ("RGBA", depth, source),
                          ("RGBA", depth, destination))


def convert_pixels(data: bytes, width: int, height: int, source: tuple, destination: tuple
                   ) -> bytes:
    """Pixels converted between (model, depth, profile) spaces through a hidden document."""
    from krita import Krita  # only here: the rest of this module never needs the application

    scratch = Krita.instance().createDocument(width, height, "c2e-convert", source[0],
                                              source[1], source[2], 72.0)
    if scratch is None:
        raise ColorizeError("Krita could not convert from {} {} {}".format(*tuple(source)))
    try:
        node = scratch.rootNode().childNodes()[0]
        node.setPixelData(data, 0, 0, width, height)
        scratch.setColorSpace(destination[0], destination[1], destination[2])
        scratch.waitForDone()
        return bytes(node.pixelData(0, 0, width, height))
    finally:
        scratch.close()
