"""Run inside Krita by ``kritarunner`` (see tests/test_krita_real.py); standard library only.

``kritarunner -s runner_cases -f main OUT PYKRITA PYTHON WEIGHTS``: imports the installed
plugin from PYKRITA, makes real documents with the ``krita`` API, drives the plugin's colorize
function on each case with one worker (PYTHON -m c2e_core worker) and writes, per case,
``CASE.json`` and raw pixel files to OUT for pytest to check with numpy. kritarunner exits 0
even when Python raises, so every outcome, errors included, is a file; ``done.json`` last.
"""

from __future__ import annotations

import json
import math
import os
import struct
import sys
import traceback

from krita import InfoObject, Krita, Selection

WIDTH, HEIGHT = 48, 40
REF_SIZE = 32
#: x, y, width, height of the unselected square in the reference's selected top half
REFERENCE_HOLE = (12, 4, 6, 6)
#: Offsets of the source layer, so that region and layer coordinates are really used.
LAYER_X, LAYER_Y = 0, 0
PACK = {"U8": ("<4B", 255), "U16": ("<4H", 65535), "F16": ("<4e", None), "F32": ("<4f", None)}


def srgb_to_linear(value: float) -> float:
    if value <= 0.04045:
        return value / 12.92
    return ((value + 0.055) / 1.055) ** 2.4


def encode(pixels, depth: str, linear: bool) -> bytes:
    """(r, g, b, a) floats in sRGB [0, 1] -> Krita's raw bytes (BGRA ints, RGBA floats)."""
    code, scale = PACK[depth]
    out = bytearray()
    for r, g, b, a in pixels:
        if linear:
            r, g, b = srgb_to_linear(r), srgb_to_linear(g), srgb_to_linear(b)
        if scale is None:
            out += struct.pack(code, r, g, b, a)
        else:
            out += struct.pack(code, *(int(round(v * scale)) for v in (b, g, r, a)))
    return bytes(out)


def gray_target(width: int, height: int):
    """A grey picture with texture and a ramp of alpha (some pixels fully transparent)."""
    pixels = []
    for y in range(height):
        for x in range(width):
            gray = 0.15 + 0.7 * x / (width - 1) + 0.08 * math.sin(x / 2.0 + y / 3.0)
            gray = min(max(gray, 0.02), 0.98)
            alpha = 0.0 if (x < 3 and y < 3) else min(1.0, 0.4 + y / (height - 1))
            pixels.append((gray, gray, gray, alpha))
    return pixels


def colour_reference(first, second):
    """Two colour bands with a little noise, opaque."""
    pixels = []
    for y in range(REF_SIZE):
        for x in range(REF_SIZE):
            base = first if y < REF_SIZE // 2 else second
            wobble = 0.05 * math.sin(x * 1.7 + y * 0.9)
            pixels.append(tuple(min(max(c + wobble, 0.0), 1.0) for c in base) + (1.0,))
    return pixels


def new_document(name: str, width: int, height: int, depth: str, profile: str = ""):
    app = Krita.instance()
    document = app.createDocument(width, height, name, "RGBA", depth, profile, 72.0)
    document.setFileName(os.path.join("/nonexistent", name + ".kra"))
    return document


def soft_selection(width: int, height: int):
    """Left third unselected, a soft ramp, right third fully selected."""
    values = bytearray()
    for _ in range(height):
        for x in range(width):
            t = (x - width / 3.0) / (width / 3.0)
            values.append(int(round(255 * min(max(t, 0.0), 1.0))))
    selection = Selection()
    selection.select(0, 0, width, height, 255)
    selection.setPixelData(bytes(values), 0, 0, width, height)
    return selection


def write(out: str, name: str, data) -> None:
    path = os.path.join(out, name)
    if isinstance(data, (bytes, bytearray)):
        with open(path, "wb") as handle:
            handle.write(data)
    else:
        with open(path + ".tmp", "w") as handle:
            json.dump(data, handle, indent=1)
        os.replace(path + ".tmp", path)


def layer_names(document):
    return [(n.name(), n.type()) for n in document.rootNode().childNodes()]


def run_case(out, plugin, client, case):
    """One case: make documents, colorize, dump everything pytest checks."""
    colorize = plugin.colorize
    name = case["name"]
    depth = case.get("depth", "U8")
    profile = case.get("profile", "")
    document = new_document(name, WIDTH, HEIGHT, depth, profile)
    source = document.rootNode().childNodes()[0]
    source.setName("Photo")
    linear = plugin.pixels.profile_encoding(document.colorProfile()) == "linear"
    source.setPixelData(encode(gray_target(WIDTH, HEIGHT), depth, linear), LAYER_X, LAYER_Y,
                        WIDTH, HEIGHT)
    if case.get("overlay"):  # a second layer, so the visible image differs from the source
        overlay = document.createNode("Overlay", "paintlayer")
        half = [(0.9, 0.9, 0.9, 0.5)] * (WIDTH * HEIGHT // 2)
        overlay.setPixelData(encode(half, depth, linear), 0, 0, WIDTH, HEIGHT // 2)
        document.rootNode().addChildNode(overlay, source)
    reference = new_document(name + "-reference", REF_SIZE, REF_SIZE, "U8")
    colours = case.get("colours", ((0.85, 0.15, 0.1), (0.1, 0.35, 0.9)))
    reference.rootNode().childNodes()[0].setPixelData(
        encode(colour_reference(*colours), "U8", False), 0, 0, REF_SIZE, REF_SIZE)
    record = {"case": case, "profile": document.colorProfile(), "depth": depth,
              "names_before": layer_names(document), "selection_box": None}
    chosen_reference = reference
    if case.get("reference_selection"):  # the reference's top half, less a small square
        part = Selection()
        part.select(0, 0, REF_SIZE, REF_SIZE // 2, 255)
        part.select(*REFERENCE_HOLE, 0)
        reference.setSelection(part)
    weights = None
    if case.get("blend"):  # a second reference, from a file, blended in by these weights
        second = new_document(name + "-second", REF_SIZE, REF_SIZE, "U8")
        second.rootNode().childNodes()[0].setPixelData(
            encode(colour_reference((0.2, 0.8, 0.2), (0.95, 0.85, 0.1)), "U8", False), 0, 0,
            REF_SIZE, REF_SIZE)
        second.refreshProjection()
        second.waitForDone()
        write(out, name + ".second.raw", bytes(second.pixelData(0, 0, REF_SIZE, REF_SIZE)))
        path = os.path.join(out, name + "-second.png")
        second.setBatchmode(True)
        record["exported"] = bool(second.exportImage(path, InfoObject()))
        second.close()
        chosen_reference, weights = [reference, path], case["blend"]
    if case.get("reference_file") == "missing":
        chosen_reference = os.path.join(out, "no-such-reference.png")
    elif case.get("reference_file"):  # the same reference as an image file
        chosen_reference = os.path.join(out, name + "-reference.png")
        reference.setBatchmode(True)
        record["exported"] = bool(reference.exportImage(chosen_reference, InfoObject()))
    if case.get("selection"):
        document.setSelection(soft_selection(WIDTH, HEIGHT))
        box = document.selection()
        record["selection_box"] = [box.x(), box.y(), box.width(), box.height()]
    document.refreshProjection()
    document.waitForDone()
    before = bytes(source.pixelData(0, 0, WIDTH, HEIGHT))
    visible_before = bytes(document.pixelData(0, 0, WIDTH, HEIGHT))
    options = plugin.colorize.ColorizeOptions(size=32, device="cpu", **case.get("options", {}))
    try:
        node = colorize.colorize(document, source, chosen_reference, options, client,
                                 weights=weights)
    except Exception as exc:  # recorded: some cases expect an error
        record["error"] = {"type": type(exc).__name__, "message": str(exc)}
        node = None
    record["names_after"] = layer_names(document)
    after = bytes(source.pixelData(0, 0, WIDTH, HEIGHT))
    write(out, name + ".before.raw", before)
    write(out, name + ".after.raw", after)
    write(out, name + ".visible.raw", visible_before)
    write(out, name + ".reference.raw", bytes(reference.pixelData(0, 0, REF_SIZE, REF_SIZE)))
    if document.selection() is not None:
        write(out, name + ".mask.raw", bytes(document.selection().pixelData(0, 0, WIDTH, HEIGHT)))
    if node is not None:
        siblings = [n.name() for n in node.parentNode().childNodes()]
        box = node.bounds()
        record["layer"] = {
            "name": node.name(),
            "type": node.type(),
            "index": siblings.index(node.name()),
            "siblings": siblings,
            "bounds": [box.x(), box.y(), box.width(), box.height()],
            "depth": node.colorDepth(),
            "profile": node.colorProfile(),
            "blending": node.blendingMode(),
        }
        write(out, name + ".layer.raw", bytes(node.pixelData(0, 0, WIDTH, HEIGHT)))
        if case.get("edit_after"):  # the original below is edited afterwards (8-bit: inverted)
            edited = bytes(value if index % 4 == 3 else 255 - value
                           for index, value in enumerate(before))  # fmt: skip
            source.setPixelData(edited, 0, 0, WIDTH, HEIGHT)
            write(out, name + ".edited.raw", edited)
        document.refreshProjection()
        document.waitForDone()
        write(out, name + ".projection.raw", bytes(document.pixelData(0, 0, WIDTH, HEIGHT)))
    write(out, name + ".json", record)
    document.close()
    reference.close()


CASES = [
    {"name": "u8"},
    {"name": "u8-green", "colours": ((0.2, 0.8, 0.2), (0.95, 0.85, 0.1))},
    {"name": "u8-soft", "selection": True},
    {"name": "u8-strength", "options": {"strength": 0.5}},
    {"name": "u8-clean", "options": {"clean": 0.0}},  # the cleanup turned off (on by default)
    {"name": "u8-calm", "options": {"keep_palette": False}},  # the cleanup without the palette
    {"name": "u8-visible", "overlay": True, "options": {"source": "visible"}},
    {"name": "u16-linear", "depth": "U16"},
    {"name": "u16-linear-soft", "depth": "U16", "selection": True},
    {"name": "f16-linear", "depth": "F16"},
    {"name": "f32-linear", "depth": "F32"},
    {"name": "f32-linear-soft", "depth": "F32", "selection": True},
    {"name": "u8-srgb-f32", "depth": "F32", "profile": "sRGB-elle-V2-srgbtrc.icc"},
    {"name": "u16-rec2020", "depth": "U16", "profile": "Rec2020-elle-V4-g10.icc"},
    {"name": "u8-reference-file", "reference_file": True},
    {"name": "u8-reference-selection", "reference_selection": True},
    {"name": "u8-reference-missing-file", "reference_file": "missing"},
    {"name": "u8-two-references", "blend": [0.7, 0.3]},
    {"name": "u8-bad-blend", "blend": [0.0, 0.0]},
    {"name": "u8-colour-only", "options": {"colour_only": True}, "edit_after": True},
    {"name": "bad-weights", "options": {"weights": "no-such-weights"}},
]


def crash_case(out, plugin, python) -> None:
    """A worker that dies during the job: its message, the document unchanged, a restart."""
    crashing = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashing_worker.py")
    session = plugin.c2e_client.WorkerSession(plugin.colorize.HOST, [crashing])
    document = new_document("crash", 16, 16, "U8")
    reference = new_document("crash-reference", 8, 8, "U8")
    record = {"names_before": layer_names(document)}
    first = session.client(python)
    first_pid = first.pid
    try:
        plugin.colorize.colorize(document, document.rootNode().childNodes()[0], reference,
                                 plugin.colorize.ColorizeOptions(size=32, device="cpu"), first)
    except Exception as exc:
        record["error"] = {"type": type(exc).__name__, "message": str(exc)}
    record["names_after"] = layer_names(document)
    second = session.client(python)  # the same client, which replaces its dead worker
    record["restarted"] = second.alive and second.pid not in (None, first_pid)
    session.close()
    write(out, "crash.json", record)
    document.close()
    reference.close()


def graya_case(out, plugin, client) -> None:
    """A grayscale document: a clear explanation, and the document unchanged."""
    app = Krita.instance()
    document = app.createDocument(8, 8, "graya", "GRAYA", "U8", "", 72.0)
    reference = new_document("graya-reference", 8, 8, "U8")
    names_before = layer_names(document)
    record = {"names_before": names_before}
    try:
        plugin.colorize.colorize(document, document.rootNode().childNodes()[0], reference,
                                 plugin.colorize.ColorizeOptions(size=32, device="cpu"), client)
    except Exception as exc:
        record["error"] = {"type": type(exc).__name__, "message": str(exc)}
    record["names_after"] = layer_names(document)
    write(out, "graya.json", record)
    document.close()
    reference.close()


def main(args) -> None:
    out, pykrita, python, weights = args[:4]
    summary = {"cases": [], "errors": []}
    try:
        sys.path.insert(0, pykrita)
        import color2embed.c2e_client
        import color2embed.colorize  # noqa: F401  (the installed plugin, with its client)
        import color2embed.pixels  # noqa: F401

        plugin = sys.modules["color2embed"]
        summary["krita"] = Krita.instance().version()
        summary["python"] = sys.version.split()[0]
        session = color2embed.c2e_client.WorkerSession(
            color2embed.colorize.HOST, ["-m", "c2e_core", "worker", "--weights", weights])
        client = session.client(python)
        summary["hello_loads"] = client.hello_info.get("model_loads")
        for case in CASES:
            try:
                run_case(out, plugin, client, case)
                summary["cases"].append(case["name"])
            except Exception:
                summary["errors"].append(case["name"] + ": " + traceback.format_exc())
        graya_case(out, plugin, client)
        crash_case(out, plugin, python)
        summary["model_loads"] = client.hello()["model_loads"]
        summary["same_worker"] = session.client(python) is client
        session.close(timeout=60)  # patient: the exit status tells a clean shutdown
        summary["worker_exit"] = client.process.returncode
    except Exception:
        summary["errors"].append(traceback.format_exc())
    write(out, "done.json", summary)
