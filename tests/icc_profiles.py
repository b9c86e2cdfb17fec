"""Small real ICC profiles for the colour-management tests, built from published primaries.

``adobe_rgb()``: Adobe RGB (1998), ICC v2 (primaries and D65 white of the Adobe RGB (1998)
specification, gamma 563/256 as a one-entry 'curv'). ``display_p3()``: Display P3, ICC v4 (DCI-P3
primaries, D65 white, the sRGB curve as a type-3 'para', like Apple's profile).
``srgb_table()``: sRGB with a 1024-entry 'curv' table (like the profile cameras embed).
``gray_gamma()``: a gray profile with a gamma 'kTRC'. ``lut_rgb(both_ways)``: Adobe RGB again,
as lookup tables only (A2B0, and B2A0 when ``both_ways``), which a CMM must evaluate itself.

Colorants are adapted to the D50 connection space with Bradford, as ICC requires; LittleCMS
(Pillow's ImageCms) reads all of them (``tests/test_icc.py`` checks it).
"""

from __future__ import annotations

import struct

import numpy as np

D50 = np.array([0.9642, 1.0, 0.8249])
D65_XY = (0.3127, 0.3290)
ADOBE_RGB_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
ADOBE_GAMMA = 563 / 256
#: The sRGB curve as 'para' type 3: g, a, b, c, d.
SRGB_PARA = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
_BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


def _xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def bradford(source_white: np.ndarray, dest_white: np.ndarray = D50) -> np.ndarray:
    """The Bradford adaptation matrix from one white to another (XYZ, Y = 1)."""
    scale = (_BRADFORD @ dest_white) / (_BRADFORD @ source_white)
    return np.linalg.inv(_BRADFORD) @ np.diag(scale) @ _BRADFORD


def colorants(primaries, white_xy=D65_XY) -> np.ndarray:
    """Linear RGB -> D50 XYZ: columns are the D50-adapted red, green and blue colorants."""
    white = _xyz(white_xy)
    columns = np.stack([_xyz(p) for p in primaries], axis=1)
    matrix = columns * np.linalg.solve(columns, white)[None, :]
    return bradford(white) @ matrix


# --------------------------------------------------------------------------- tag types


def _s15(*values: float) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def xyz_type(xyz) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(*xyz)


def curv_gamma(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def curv_table(values) -> bytes:
    table = np.clip(np.round(np.asarray(values) * 65535), 0, 65535).astype(">u2")
    body = b"curv\0\0\0\0" + struct.pack(">I", table.size) + table.tobytes()
    return body + b"\0" * (-len(body) % 4)


def para(function: int, params) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", function, 0) + _s15(*params)


def desc_v2(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    # ASCII, then empty Unicode (language, count) and ScriptCode (code, count, 67 bytes) parts
    body = b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_ + b"\0" * (8 + 3 + 67)
    return body + b"\0" * (-len(body) % 4)


def mluc(text: str) -> bytes:
    utf16 = text.encode("utf-16-be")
    body = b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(utf16), 28) + utf16
    return body + b"\0" * (-len(body) % 4)


def sf32(matrix) -> bytes:
    return b"sf32\0\0\0\0" + _s15(*np.asarray(matrix).reshape(-1))


def build(
    tags: dict[bytes, bytes],
    *,
    version: int = 2,
    colour_space: bytes = b"RGB ",
    device_class: bytes = b"mntr",
    pcs: bytes = b"XYZ ",
) -> bytes:
    """A complete ICC profile: a 128-byte header, the tag table and the tags (4-byte aligned)."""
    table = struct.pack(">I", len(tags))
    offset = 128 + 4 + 12 * len(tags)
    data = b""
    for signature, body in tags.items():
        table += struct.pack(">4sII", signature, offset + len(data), len(body))
        data += body + b"\0" * (-len(body) % 4)
    size = offset + len(data)
    header = struct.pack(
        ">I4sI4s4s4s6H4s4sI4s4sQI12s4s16s28s",
        size,
        b"none",
        0x02400000 if version == 2 else 0x04300000,
        device_class,
        colour_space,
        pcs,
        2024, 1, 1, 0, 0, 0,
        b"acsp",
        b"\0\0\0\0",
        0,
        b"\0\0\0\0",
        b"\0\0\0\0",
        0,
        0,
        _s15(*D50),
        b"c2e ",
        b"\0" * 16,
        b"\0" * 28,
    )  # fmt: skip
    assert len(header) == 128
    return header + table + data


def rgb_profile(name: str, primaries, trc: bytes, *, version: int = 2) -> bytes:
    """A matrix/TRC RGB display profile (D65 white) with one curve for all three channels."""
    matrix = colorants(primaries)
    tags = {
        b"desc": desc_v2(name) if version == 2 else mluc(name),
        b"cprt": desc_v2("no copyright, test data") if version == 2 else mluc("test data"),
        b"wtpt": xyz_type(_xyz(D65_XY) if version == 2 else D50),
        b"rXYZ": xyz_type(matrix[:, 0]),
        b"gXYZ": xyz_type(matrix[:, 1]),
        b"bXYZ": xyz_type(matrix[:, 2]),
        b"rTRC": trc,
        b"gTRC": trc,
        b"bTRC": trc,
    }
    if version == 4:
        tags[b"chad"] = sf32(bradford(_xyz(D65_XY)))
    return build(tags, version=version)


def adobe_rgb() -> bytes:
    return rgb_profile("Adobe RGB (1998) test", ADOBE_RGB_PRIMARIES, curv_gamma(ADOBE_GAMMA))


def display_p3() -> bytes:
    return rgb_profile("Display P3 test", P3_PRIMARIES, para(3, SRGB_PARA), version=4)


def srgb_curve(x: np.ndarray) -> np.ndarray:
    """sRGB-encoded -> linear."""
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def srgb_table() -> bytes:
    grid = np.linspace(0, 1, 1024)
    return rgb_profile("sRGB table test", SRGB_PRIMARIES, curv_table(srgb_curve(grid)))


def gray_gamma(gamma: float = 2.2) -> bytes:
    tags = {
        b"desc": desc_v2(f"Gray gamma {gamma} test"),
        b"wtpt": xyz_type(D50),
        b"kTRC": curv_gamma(gamma),
    }
    return build(tags, colour_space=b"GRAY")


def _lut16(matrix, input_tables, clut, output_tables) -> bytes:
    """An 'mft2' (lut16Type) tag: 3 inputs, 3 outputs, a grid of ``clut.shape[0]`` points."""
    grid = clut.shape[0]
    n_in, n_out = input_tables.shape[0], output_tables.shape[0]
    body = b"mft2\0\0\0\0" + struct.pack(">BBBB", 3, 3, grid, 0) + _s15(*np.ravel(matrix))
    body += struct.pack(">HH", n_in, n_out)
    for table in (input_tables.T, clut.reshape(-1, 3), output_tables.T):  # channel by channel
        values = np.clip(np.round(np.asarray(table, dtype=np.float64) * 65535), 0, 65535)
        body += values.astype(">u2").tobytes()
    return body


def lut_rgb(both_ways: bool = True) -> bytes:
    """Adobe RGB (1998) as lookup tables: gamma input tables and an exact 2-point grid to XYZ
    (A2B0); the inverse matrix, an identity grid and inverse-gamma tables back (B2A0). Without
    ``both_ways`` it is an input-only (scanner) profile."""
    to_xyz = colorants(ADOBE_RGB_PRIMARIES)
    xyz_scale = 32768 / 65535  # lut16 XYZ: 1.0 is 0x8000
    ramp = np.linspace(0, 1, 256)
    corners = np.stack(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij"), axis=-1)
    gamma = np.stack([ramp**ADOBE_GAMMA] * 3, axis=1)
    a2b = _lut16(np.eye(3), gamma, corners @ to_xyz.T * xyz_scale, np.stack([ramp] * 3, axis=1))
    tags = {
        b"desc": desc_v2("Adobe RGB LUT test"),
        b"wtpt": xyz_type(D50),
        b"A2B0": a2b,
    }
    if both_ways:
        inverse = np.linalg.inv(to_xyz) / xyz_scale
        degamma = np.stack([ramp ** (1 / ADOBE_GAMMA)] * 3, axis=1)
        tags[b"B2A0"] = _lut16(inverse, np.stack([ramp] * 3, axis=1), corners, degamma)
    return build(tags, device_class=b"mntr" if both_ways else b"scnr")
