"""Runs inside real GIMP 3 (gimp-console, python-fu-eval batch mode) for tests/test_gimp_real.py.

It reads the job file named by $C2E_GIMP_TEST_JOB: the installed plug-in's folder and a list
of cases. For each case it loads the images, sets up the selection and layers, then either
calls the installed procedure ``python-fu-c2e-colorize`` through the PDB, non-interactively,
exactly as a script would, or (``"client"`` cases) calls the plug-in's logic function with a
stand-in worker client. It records what it saw (status, message, layers, hashes of the source
before and after) in the job's ``results`` file and writes the pixels to ``out``; the test
checks them with numpy. Only the standard library and GIMP's own bindings are used here.
"""

import hashlib
import json
import os
import sys
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

JOB = json.load(open(os.environ["C2E_GIMP_TEST_JOB"], encoding="utf-8"))
sys.path.insert(0, JOB["plugin_dir"])
from c2e_client import Pixels, WorkerError  # noqa: E402
from c2e_gimp.colorize import colorize_from_reference, read_reference  # noqa: E402
from c2e_gimp.layouts import layer_layout  # noqa: E402
from c2e_gimp.options import ColorizeOptions  # noqa: E402

PROCEDURE = "python-fu-c2e-colorize"
SRGB_FLOAT = "R'G'B'A float"
SETTINGS = os.path.join(JOB["plugin_dir"], "settings.json")


def load(path):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def pixels(drawable, rect, fmt):
    buffer = drawable.get_buffer()
    return bytes(buffer.get(Gegl.Rectangle.new(*rect), 1.0, fmt, Gegl.AbyssPolicy.NONE))


def full_rect(drawable):
    return (0, 0, drawable.get_width(), drawable.get_height())


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write(path, data):
    with open(path, "wb") as stream:
        stream.write(data)


def layer_info(image, layer):
    parent = layer.get_parent()
    _, x, y = layer.get_offsets()
    return {
        "id": layer.get_id(),
        "name": layer.get_name(),
        "position": image.get_item_position(layer),
        "parent": parent.get_id() if parent is not None else None,
        "x": x,
        "y": y,
        "width": layer.get_width(),
        "height": layer.get_height(),
        "has_alpha": layer.has_alpha(),
        "mask": layer.get_mask() is not None,
        "mode": layer.get_mode().value_name,
    }


def all_layers(layers):
    """``layers`` and, after each group, its layers, top to bottom."""
    found = []
    for layer in layers:
        found.append(layer)
        if layer.is_group():
            found.extend(all_layers(layer.get_children()))
    return found


def state(image, source, fmt):
    """What must not change when the procedure fails, and the source either way."""
    return {
        "layers": [layer_info(image, layer) for layer in all_layers(image.get_layers())],
        "base_type": image.get_base_type().value_nick,
        "precision": image.get_precision().value_name,
        "source_sha": sha(pixels(source, full_rect(source), fmt)),
        "source_sha_float": sha(pixels(source, full_rect(source), SRGB_FLOAT)),
        "selection_sha": sha(pixels(image.get_selection(), full_rect(image.get_selection()),
                                    "Y float")),
    }


def worker_pids():
    """The c2e workers running now (any user of this machine's process table)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as stream:
                words = stream.read().split(b"\0")
        except OSError:
            continue
        if b"c2e_core" in words and b"worker" in words:
            pids.append(int(entry))
    return sorted(pids)


def write_settings(values):
    with open(SETTINGS, encoding="utf-8") as stream:
        original = stream.read()
    data = json.loads(original)
    data.update(values)
    with open(SETTINGS + ".tmp", "w", encoding="utf-8") as stream:
        json.dump(data, stream)
    os.replace(SETTINGS + ".tmp", SETTINGS)
    return original


class EchoClient:
    """A worker that answers the target unchanged (tests the pixel round trip)."""

    def __init__(self):
        self.calls = 0

    def colorize(self, target, reference, options=None, mask=None, on_progress=None,
                 reference_weights=None):
        self.calls += 1
        if on_progress is not None:
            on_progress(1, 1, "echo")
        return Pixels(target.width, target.height, target.channels, target.dtype, target.data,
                      linear=target.linear)


class FailingClient:
    """A worker that fails the job."""

    def colorize(self, *args, **kwargs):
        raise WorkerError("the stand-in worker failed on purpose", "internal")


def run_procedure(image, drawables, reference, arguments):
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if procedure is None:
        raise RuntimeError(f"the procedure {PROCEDURE} is not registered")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", drawables)
    config.set_property("reference", reference)
    for name, value in arguments.items():
        if name in ("reference-file", "blend-file"):
            value = Gio.File.new_for_path(value)
        config.set_property(name, value)
    values = procedure.run(config)
    status = values.index(0)
    message = None
    if status != Gimp.PDBStatusType.SUCCESS and values.length() > 1:
        message = values.index(1)
    layer = values.index(1) if status == Gimp.PDBStatusType.SUCCESS else None
    return status.value_nick, message, layer


def run_case(case, out):
    result = {"name": case["name"], "arguments": case.get("arguments")}
    image = load(case["target"])
    reference = load(case["reference"]) if case.get("reference") else None
    if case.get("reference_selection"):  # a rectangle, less a hole
        (x, y, width, height), hole = case["reference_selection"]
        reference.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, width, height)
        reference.select_rectangle(Gimp.ChannelOps.SUBTRACT, *hole)
        result["case_selection"] = case["reference_selection"]
    if case.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, case["precision"]))
    source = image.get_layers()[0]
    if case.get("overlay"):  # a layer above the source: the new one must go between them
        overlay = Gimp.Layer.new(image, "overlay", 8, 8, Gimp.ImageType.RGBA_IMAGE, 100.0,
                                 Gimp.LayerMode.NORMAL)
        image.insert_layer(overlay, None, 0)
        overlay.fill(Gimp.FillType.TRANSPARENT)
    if case.get("in_group"):  # the source inside a layer group
        group = Gimp.GroupLayer.new(image, "group")
        image.insert_layer(group, None, 0)
        image.reorder_item(source, group, 0)
    if case.get("offset"):  # the layer is not at the image's origin
        source.set_offsets(*case["offset"])
    if case.get("layer_mask"):
        source.add_mask(source.create_mask(Gimp.AddMaskType.ALPHA))
    if case.get("ellipse"):
        x, y, width, height, feather = case["ellipse"]
        Gimp.context_push()
        Gimp.context_set_feather(feather > 0)
        Gimp.context_set_feather_radius(feather, feather)
        image.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, width, height)
        Gimp.context_pop()
    layout = layer_layout(image.get_precision().value_name, source.has_alpha())
    result["layout"] = list(layout)
    result["before"] = state(image, source, layout.gegl_format)
    _, x, y, width, height = source.mask_intersect()
    result["region"] = [x, y, width, height]
    write(os.path.join(out, case["name"] + ".target.bin"),
          pixels(source, (x, y, width, height), layout.gegl_format))
    write(os.path.join(out, case["name"] + ".target-float.bin"),
          pixels(source, (x, y, width, height), SRGB_FLOAT))
    if not Gimp.Selection.is_empty(image):  # all of it: the test finds the layer's part
        selection = image.get_selection()
        write(os.path.join(out, case["name"] + ".selection.bin"),
              pixels(selection, full_rect(selection), "Y float"))
        result["selection_size"] = [selection.get_width(), selection.get_height()]
    if reference is not None:
        ref = read_reference(reference)
        result["reference_size"] = [ref.width, ref.height]
        write(os.path.join(out, case["name"] + ".reference.bin"), ref.data)
    images_before = len(Gimp.get_images())
    original_settings = write_settings(case["settings"]) if case.get("settings") else None
    try:
        client_kind = case.get("client")
        if client_kind == "cancel":
            layer = None
            result.update(cancel_then_run(image, source, reference, case))
            result["status"], result["message"] = "success", None
        elif client_kind == "preview":
            layer = None
            result.update(try_the_preview(image, source, reference, case, out))
            result["status"], result["message"] = "success", None
        elif client_kind:
            client = EchoClient() if client_kind == "echo" else FailingClient()
            options = ColorizeOptions(**case.get("options", {}))
            try:
                layer = colorize_from_reference(image, source, reference, options, client)
                result["status"], result["message"] = "success", None
            except Exception as exc:  # the test checks the message
                layer = None
                result["status"], result["message"] = "execution-error", str(exc)
        else:
            drawables = image.get_layers() if case.get("all_layers") else [source]
            status, message, layer = run_procedure(image, drawables, reference,
                                                   case["arguments"])
            result["status"], result["message"] = status, message
    finally:
        if original_settings is not None:
            with open(SETTINGS, "w", encoding="utf-8") as stream:
                stream.write(original_settings)
    result["stray_images"] = len(Gimp.get_images()) - images_before
    result["worker_pids"] = worker_pids()
    result["after"] = state(image, source, layout.gegl_format)
    if layer is not None:
        result["layer"] = layer_info(image, layer)
        result["layer_precision"] = image.get_precision().value_name
        rect = full_rect(layer)
        write(os.path.join(out, case["name"] + ".result.bin"),
              pixels(layer, rect, layout.gegl_format))
        write(os.path.join(out, case["name"] + ".result-float.bin"),
              pixels(layer, rect, SRGB_FLOAT))
        if layer.get_mask() is not None:
            result["layer_mask_sha"] = sha(pixels(layer.get_mask(), rect, "Y float"))
            result["source_mask_sha"] = sha(pixels(source.get_mask(), (x, y, width, height),
                                                   "Y float"))
    if layer is not None and case.get("composite"):  # what the image shows, all layers,
        # after an edit of the original below the new layer (inverted)
        source.invert(False)
        write(os.path.join(out, case["name"] + ".edited-float.bin"),
              pixels(source, (x, y, width, height), SRGB_FLOAT))
        shown = image.duplicate()
        merged = shown.flatten()
        write(os.path.join(out, case["name"] + ".composite-float.bin"),
              pixels(merged, full_rect(merged), SRGB_FLOAT))
        shown.delete()
    if case.get("export"):
        exported = Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image,
                                  Gio.File.new_for_path(case["export"]), None)
        result["exported"] = bool(exported)
    image.delete()
    if reference is not None:
        reference.delete()
    return result


def wait_for(preview, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        outcome = preview.take()
        if outcome is not None:
            return outcome
        time.sleep(0.01)
    raise RuntimeError(f"no preview within {seconds} s")


def try_the_preview(image, source, reference, case, out):
    """The dialog's preview path with the real worker: GimpPreview reads the layer at preview
    size and the reference, the worker colorizes; a strength change, then a burst."""
    from c2e_client import WorkerSession, known_python, load_settings
    from c2e_gimp.options import GIMP
    from c2e_gimp.preview import GimpPreview

    python = known_python(load_settings(ColorizeOptions))
    session = WorkerSession(GIMP)
    preview = GimpPreview(image, source, session)
    report = {}
    try:
        options = ColorizeOptions(**case.get("options", {}))
        before = preview.before(options)
        report["preview_before"] = [before.width, before.height, before.channels, before.dtype]
        write(os.path.join(out, case["name"] + ".preview-before.bin"), before.data)
        steps = []
        for strength in (1.0, 0.5):
            options = ColorizeOptions(**dict(case.get("options", {}), strength=strength))
            started = time.monotonic()
            generation = preview.request(python, [reference], options)
            got, result, error, seconds = wait_for(preview)
            if error is not None:
                raise error
            steps.append({"strength": strength, "generation": [generation, got],
                          "latency": time.monotonic() - started, "worker_seconds": seconds,
                          "size": [result.width, result.height, result.channels,
                                   result.dtype]})
            name = "{}.preview-{}.bin".format(case["name"], strength)
            write(os.path.join(out, name), result.data)
        computed = preview.runner.computed
        # a slider dragged faster than a preview computes: ten changes back to back (spaced
        # by 20 ms they could each finish first: a strength-only preview reuses the worker's
        # kept prediction and takes a few ms, so CI once computed all ten)
        for step in range(10):
            options = ColorizeOptions(**dict(case.get("options", {}), strength=0.5 + step / 20))
            last = preview.request(python, [reference], options)
        got, result, error, seconds = wait_for(preview)
        report["burst"] = {"requests": 10, "computed": preview.runner.computed - computed,
                           "generation": [last, got], "error": str(error) if error else None}
    finally:
        preview.close()
        session.close()
    report["preview_steps"] = steps
    return report


def cancel_then_run(image, source, reference, case):
    """The interactive run's cancel path with the real worker: CancellableClient (as behind
    the plug-in's progress window) cancelled at the worker's first progress message, the
    image left as it was; then the same worker colorizes the next run (nothing was closed)."""
    from c2e_client import LazyWorker, WorkerCancelled, WorkerSession, known_python, load_settings
    from c2e_gimp.cancel import CancellableClient
    from c2e_gimp.options import GIMP

    python = known_python(load_settings(ColorizeOptions))
    session = WorkerSession(GIMP)
    worker = LazyWorker(session, python)
    layout = layer_layout(image.get_precision().value_name, source.has_alpha())
    seen = []
    report = {}
    try:
        options = ColorizeOptions(**case.get("options", {}))
        client = CancellableClient(worker, lambda: bool(seen), lambda: None)
        before = state(image, source, layout.gegl_format)
        started = time.monotonic()
        try:
            colorize_from_reference(image, source, reference, options, client,
                                    lambda fraction, text: seen.append((fraction, text))
                                    if fraction > 0.1 else None)
            report["cancel_outcome"] = "finished"
        except WorkerCancelled as exc:
            report["cancel_outcome"] = f"cancelled: {exc}"
        report["cancel_seconds"] = time.monotonic() - started
        report["cancel_progress"] = seen[:3]
        report["unchanged_after_cancel"] = state(image, source, layout.gegl_format) == before
        report["layers_after_cancel"] = [layer.get_name() for layer in image.get_layers()]
        pid = session.pid
        layer = colorize_from_reference(image, source, reference, options,
                                        CancellableClient(worker, lambda: False, lambda: None))
        report["next_run_layer"] = layer.get_name()
        report["same_worker"] = pid is not None and session.pid == pid
    finally:
        session.close()
    return report


def main():
    results = []
    for case in JOB["cases"]:
        started = time.monotonic()
        try:
            results.append(run_case(case, JOB["out"]))
        except Exception:
            results.append({"name": case["name"], "crash": traceback.format_exc()})
        print(f"case {case['name']}: {time.monotonic() - started:.1f}s", flush=True)
    with open(JOB["results"] + ".tmp", "w", encoding="utf-8") as stream:
        json.dump(results, stream, indent=1)
    os.replace(JOB["results"] + ".tmp", JOB["results"])


main()
