"""Colorize a layer from another open image, through the c2e worker: the plug-in's logic.

:func:`colorize_from_reference` is a function of (image, drawable, reference image, options,
client), so tests and scripts drive it without menus; ``color2embed.py`` (the PDB procedure and
its dialog) is a thin wrapper around it. Everything is read and the worker has answered
before the image is touched: a failure leaves the image exactly as it was. The source layer is
never written to; the result is a new layer above it, added in one undo group.
"""

from __future__ import annotations

from typing import Any, Callable

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from c2e_client import HALF_SELECTED, Pixels, black_outside  # noqa: E402
from gi.repository import Gegl, Gimp  # noqa: E402

from .layouts import (  # noqa: E402
    REFERENCE_FORMAT,
    Layout,
    layer_layout,
    mask_layout,
    reference_size,
)
from .options import ColorizeError, ColorizeOptions  # noqa: E402

#: ``progress(fraction, text)``: how far the job is (0..1) and what it does now.
Progress = Callable[[float, str], None]
LAYER_SUFFIX = " (colorized)"
#: GIMP's "Color" mode (LCH): the layer's hue and chroma over the lightness of what lies below,
#: the same split of colour and lightness as the network's Lab.
COLOUR_MODE = Gimp.LayerMode.LCH_COLOR
GRAYSCALE_MESSAGE = (
    "The image is grayscale, so it cannot hold a colour layer: convert it first "
    "(Image > Mode > RGB), or tick 'Convert a grayscale image to RGB' "
    "(gray-to-rgb=True in a script)."
)


def gimp_progress(fraction: float, text: str) -> None:
    """Show ``text`` and ``fraction`` on GIMP's progress bar."""
    if text:
        Gimp.progress_set_text(text)
    Gimp.progress_update(min(max(fraction, 0.0), 1.0))


def colorize_from_reference(
    image: Gimp.Image,
    drawable: Gimp.Drawable,
    reference: Gimp.Image | None,
    options: ColorizeOptions,
    client: Any,
    progress: Progress | None = None,
    blend: Gimp.Image | None = None,
) -> Gimp.Layer:
    """Colorize ``drawable`` after ``reference``'s visible pixels (blended with ``blend``'s,
    its share ``options.blend_share``, when given); returns the new layer.

    Only the part of the layer inside the selection changes (a soft selection blends), the
    alpha channel is kept, and the layer's precision too. ``client``: anything with the worker
    client's ``colorize`` (called once; a stand-in in tests). Raises :class:`ColorizeError`
    for what the user can fix and the client's ``WorkerError`` when the worker fails; in both
    cases nothing changed.
    """
    report = progress or (lambda fraction, text: None)
    options.check()
    base = image.get_base_type()
    if base == Gimp.ImageBaseType.INDEXED:
        raise ColorizeError("Indexed images are not supported: convert with Image > Mode > RGB.")
    gray = base == Gimp.ImageBaseType.GRAY
    if gray and not options.gray_to_rgb:
        raise ColorizeError(GRAYSCALE_MESSAGE)
    check_source(image, drawable)
    if reference is None or not reference.is_valid():
        raise ColorizeError(
            "Choose the reference: another open image with the colours, or an image file."
        )
    intersects, x, y, width, height = drawable.mask_intersect()
    if not intersects or width <= 0 or height <= 0:
        raise ColorizeError(
            f"The selection does not overlap the layer '{drawable.get_name()}'."
        )
    layout = layer_layout(image.get_precision().value_name, drawable.has_alpha())
    report(0.0, "Reading the layer")
    target = Pixels(width, height, layout.channels, layout.dtype,
                    read_pixels(drawable, (x, y, width, height), layout.gegl_format),
                    linear=layout.linear)
    mask = selection_mask(image, drawable, (x, y, width, height), layout)
    report(0.05, "Reading the reference image")
    reference_pixels: Any = read_reference(reference)
    weights = None
    if blend is not None:
        if not blend.is_valid():
            raise ColorizeError("The image to blend in was closed meanwhile: choose another.")
        reference_pixels = [reference_pixels, read_reference(blend)]
        weights = options.reference_weights()

    def on_progress(done: int, total: int, message: str) -> None:
        report(0.1 + (0.8 * done / total if total else 0.0), message)

    # the worker starts on the first run: its options are made once it has said what it
    # understands (its GPUs for "gpu", whether it can clean up colours)
    result = client.colorize(target, reference_pixels, options=options.worker_options,
                             mask=mask, on_progress=on_progress, reference_weights=weights)
    if (result.width, result.height, result.channels, result.dtype) != (
        width, height, layout.channels, layout.dtype
    ):
        raise ColorizeError(
            f"The worker answered {result.width}x{result.height} {result.channels} "
            f"{result.dtype} pixels for a {width}x{height} {layout.channels} {layout.dtype} "
            "layer: update c2e or the plug-in."
        )
    report(0.9, "Adding the colorized layer")
    layer = add_result_layer(image, drawable, (x, y, width, height), layout, result.data, gray,
                             COLOUR_MODE if options.colour_only else Gimp.LayerMode.NORMAL)
    report(1.0, "")
    return layer


def check_source(image: Gimp.Image, drawable: Gimp.Drawable) -> None:
    """Raise :class:`ColorizeError` unless ``drawable`` is a layer of ``image``."""
    if drawable is None or not drawable.is_valid():
        raise ColorizeError("Select the layer to colorize.")
    if not drawable.is_layer():
        raise ColorizeError(
            f"'{drawable.get_name()}' is a mask or a channel: select the layer to colorize."
        )
    if drawable.get_image().get_id() != image.get_id():
        raise ColorizeError(f"The layer '{drawable.get_name()}' is not in this image.")


def read_pixels(drawable: Gimp.Drawable, rect: tuple[int, int, int, int], fmt: str) -> bytes:
    """The pixels of ``rect`` (drawable coordinates) in GEGL format ``fmt``."""
    buffer = drawable.get_buffer()
    return bytes(buffer.get(Gegl.Rectangle.new(*rect), 1.0, fmt, Gegl.AbyssPolicy.NONE))


def selection_mask(
    image: Gimp.Image, drawable: Gimp.Drawable, rect: tuple[int, int, int, int], layout: Layout
) -> Pixels | None:
    """The selection over ``rect`` as a soft mask for the worker; None when nothing is selected
    (the whole layer changes)."""
    if Gimp.Selection.is_empty(image):
        return None
    _, offset_x, offset_y = drawable.get_offsets()
    x, y, width, height = rect
    mask = mask_layout(layout)
    data = read_pixels(image.get_selection(), (offset_x + x, offset_y + y, width, height),
                       mask.gegl_format)
    return Pixels(width, height, mask.channels, mask.dtype, data)


def read_reference(reference: Gimp.Image) -> Pixels:
    """``reference``'s merged visible pixels, 8-bit sRGB, at most ``REFERENCE_LIMIT`` pixels on
    the longest side, read from a temporary duplicate that is deleted. When the reference has a
    selection, only the selected part gives colours: the image is cut to the selection's box
    and what lies outside the selection is black, which the models read as holding no colour."""
    duplicate = reference.duplicate()
    try:
        merged = duplicate.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        if merged is None:
            raise ColorizeError(
                f"The reference image '{reference_name(reference)}' has no visible layer."
            )
        _, selected, x1, y1, x2, y2 = Gimp.Selection.bounds(duplicate)
        if selected:
            duplicate.crop(x2 - x1, y2 - y1, x1, y1)
        width, height = duplicate.get_width(), duplicate.get_height()
        size = reference_size(width, height)
        if size != (width, height):
            Gimp.context_push()
            try:
                Gimp.context_set_interpolation(Gimp.InterpolationType.LOHALO)
                duplicate.scale(*size)
            finally:
                Gimp.context_pop()
            width, height = size
        _, offset_x, offset_y = merged.get_offsets()
        pixels = Pixels(width, height, "RGB", "u8",
                        read_pixels(merged, (-offset_x, -offset_y, width, height),
                                    REFERENCE_FORMAT))  # fmt: skip
        if selected:
            keep = read_pixels(duplicate.get_selection(), (0, 0, width, height), "Y u8")
            keep = keep.translate(HALF_SELECTED)
            if keep.count(0) == len(keep):
                raise ColorizeError(
                    f"The selection in the reference image '{reference_name(reference)}' "
                    "holds nothing: change it or select none."
                )
            pixels = black_outside(pixels, keep)
    finally:
        duplicate.delete()
    return pixels


def reference_name(image: Gimp.Image) -> str:
    """The name GIMP shows for ``image``."""
    try:
        return image.get_name() or "untitled"
    except Exception:  # an image without a file has no name in some GIMP versions
        return "untitled"


def add_result_layer(
    image: Gimp.Image,
    drawable: Gimp.Drawable,
    rect: tuple[int, int, int, int],
    layout: Layout,
    data: bytes,
    gray: bool,
    mode: Gimp.LayerMode = Gimp.LayerMode.NORMAL,
) -> Gimp.Layer:
    """A new layer holding ``data`` over ``rect`` of ``drawable`` in blend ``mode``, inserted
    above it in one undo group (which also converts a grayscale image to RGB when ``gray``)."""
    x, y, width, height = rect
    _, offset_x, offset_y = drawable.get_offsets()
    kind = Gimp.ImageType.RGBA_IMAGE if drawable.has_alpha() else Gimp.ImageType.RGB_IMAGE
    image.undo_group_start()
    try:
        if gray:
            image.convert_rgb()
        layer = Gimp.Layer.new(image, drawable.get_name() + LAYER_SUFFIX, width, height, kind,
                               100.0, mode)
        image.insert_layer(layer, drawable.get_parent(), image.get_item_position(drawable))
        try:
            layer.set_offsets(offset_x + x, offset_y + y)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, width, height), layout.gegl_format, data)
            buffer.flush()
            copy_layer_mask(drawable, layer, (x, y))
            layer.update(0, 0, width, height)
        except Exception:
            image.remove_layer(layer)
            raise
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layer


def copy_layer_mask(source: Gimp.Drawable, layer: Gimp.Layer, origin: tuple[int, int]) -> None:
    """Give ``layer`` the part of ``source``'s layer mask it covers, so it hides the same
    pixels (``origin``: ``layer``'s position in ``source``'s coordinates)."""
    source_mask = source.get_mask() if isinstance(source, Gimp.Layer) else None
    if source_mask is None:
        return
    mask = layer.create_mask(Gimp.AddMaskType.WHITE)
    layer.add_mask(mask)
    width, height = layer.get_width(), layer.get_height()
    data = read_pixels(source_mask, (origin[0], origin[1], width, height), "Y float")
    buffer = mask.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), "Y float", data)
    buffer.flush()
    layer.set_apply_mask(source.get_apply_mask())
