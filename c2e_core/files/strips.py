"""Strips of rows: how every full-resolution stage (the pipeline's L, upsampling, gamut fit and
blending; quantising; the worker's pixel codec; ICC conversions) bounds its memory on a huge
scan: it works on a few full-width rows at a time, writing into one output array."""

from __future__ import annotations

#: Pixels (or samples) per strip: the temporaries of a stage stay a few tens of MB whatever the
#: image's size, and an image up to 1024 x 1024 is a single strip.
STRIP_PIXELS = 1 << 20


def row_strips(height: int, row_size: int, max_size: int | None) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges covering ``height`` rows of ``row_size`` pixels each, of
    at most about ``max_size`` pixels per range (at least one row); None: the whole image."""
    if max_size is None or height * row_size <= max_size:
        return [(0, height)]
    rows = max(1, int(max_size) // max(1, row_size))
    return [(start, min(start + rows, height)) for start in range(0, height, rows)]
