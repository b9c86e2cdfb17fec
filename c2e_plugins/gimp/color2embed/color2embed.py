#!/usr/bin/env python3
"""Color2Embed for GIMP 3: Colors > Colorize from Reference Image...

Registers the PDB procedure ``python-fu-c2e-colorize`` for RGB and grayscale images. Its
arguments after ``run-mode``, ``image`` and ``drawables`` (one layer): ``reference`` (another
open image whose visible pixels give the colours; its selection, if any, limits them),
``reference-file`` (an image file to use instead), ``blend`` / ``blend-file`` (a second
reference, an open image or a file) and ``blend-share`` (its share, 0..1), ``size`` (the
network's working size, a multiple of 16 up to 4096, or 0 for the layer's own size),
``device`` (auto, cpu, cuda, mps), ``strength`` (0..1), ``clean`` (0..1: the colours evened
out inside flat areas, removing blotches of foreign colour), ``colour-only`` (the new layer in LCH
Color mode over the original instead of a full-colour normal layer), ``gray-to-rgb`` (convert
a grayscale image instead of refusing it), ``set-up-engine`` (make the plug-in's own
engine when no c2e is found) and ``keep-palette`` (the cleaned-up colours keep the spread of
the reference's palette; false: calmer, paler colours; last, so that callers passing the
earlier arguments by position still work). It returns ``layer``, the new colorized layer.
The c2e worker it starts is the one recorded in ``settings.json`` by ``c2e plugins install
gimp`` (or the engine the plug-in set up itself).

The procedure lives in a persistent process: GIMP starts the extension
``extension-c2e-colorize`` (a ``PERSISTENT`` procedure without arguments) when it starts, and
the extension installs ``python-fu-c2e-colorize`` as its temporary procedure. So the worker,
with its model loaded, stays from one run to the next for the whole GIMP session instead of
being started (and the model loaded) for every run; it ends when GIMP quits. This file is
the thin PDB and dialog wrapper; the logic is ``c2e_gimp/colorize.py``.
"""

import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from c2e_client import (  # noqa: E402
    DEFAULT_CLEAN,
    DEFAULT_KEEP_PALETTE,
    DEFAULT_SIZE,
    DEFAULT_STRENGTH,
    MAX_SIZE,
    MAX_STRENGTH,
    MIN_STRENGTH,
    SIZE_MULTIPLE,
    EngineError,
    LazyWorker,
    WorkerCancelled,
    WorkerError,
    WorkerSession,
    engine_folder,
    known_python,
    load_settings,
    record_python,
    save_settings,
    set_up_engine,
)
from c2e_gimp.cancel import CancellableClient  # noqa: E402
from c2e_gimp.colorize import colorize_from_reference, gimp_progress  # noqa: E402
from c2e_gimp.options import (  # noqa: E402
    DEVICES,
    GIMP,
    NATIVE_SIZE,
    ColorizeError,
    ColorizeOptions,
)
from c2e_gimp.preview import GimpPreview  # noqa: E402
from c2e_gimp.preview_panel import PreviewPanel  # noqa: E402
from c2e_gimp.run_window import RunWindow  # noqa: E402
from gi.repository import Gimp, GimpUi, GLib, GObject, Gtk  # noqa: E402

PROCEDURE = "python-fu-c2e-colorize"
EXTENSION = "extension-c2e-colorize"
#: This process's worker session (the process lives as long as GIMP: see the docstring).
SESSION = WorkerSession(GIMP)
UI_READY: list = []
#: For tests and screenshots only: ``"dialog"``: called with (dialog, preview panel) before the
#: dialog runs.
TEST_HOOKS: dict = {}
TITLE = "Colorize from Reference Image"
DEVICE_LABELS = {
    "auto": "Automatic (GPU if there is one)",
    "cpu": "CPU",
    "cuda": "NVIDIA GPU (CUDA)",
    "mps": "Apple GPU (MPS)",
}


def failure(procedure, message):
    """A failed PDB status carrying ``message`` (GIMP shows it; scripts read it)."""
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def other_images(image):
    """The open images other than ``image``: the possible references."""
    return [other for other in Gimp.get_images() if other.get_id() != image.get_id()]


def ask(procedure, image, drawable, config):
    """Show the dialog; False when the user cancels it. GIMP 3.0's procedure dialog has no
    widget for image arguments, so the reference gets an image menu of its own (a reference
    file, when one is chosen, takes its place). Under the options, the live preview."""
    if not UI_READY:  # once per process: the process serves every run of the GIMP session
        GimpUi.init(PROCEDURE)
        UI_READY.append(True)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=TITLE)
    references = GimpUi.ImageComboBox.new(
        lambda candidate, data: candidate.get_id() != image.get_id(), None
    )
    chosen = config.get_property("reference")
    if chosen is None or not chosen.is_valid() or chosen.get_id() == image.get_id():
        others = other_images(image)
        chosen = others[0] if others else None
    if chosen is not None:
        references.set_active(chosen.get_id())
    label = Gtk.Label.new_with_mnemonic(
        "Re_ference image" if chosen is not None else "Re_ference image (none open: choose a file)"
    )
    label.set_mnemonic_widget(references)
    label.set_xalign(0.0)
    row = Gtk.Box(orientation=Gtk.Orientation.HORIZONTAL, spacing=12)
    row.pack_start(label, False, False, 0)
    row.pack_start(references, True, True, 0)
    row.show_all()
    dialog.get_content_area().pack_start(row, False, False, 0)
    dialog.fill(["reference-file", "blend-file", "blend-share", "size", "device", "strength",
                 "clean", "keep-palette", "colour-only", "gray-to-rgb"])
    settings = load_settings(ColorizeOptions)
    loaded = {}  # reference files opened for the preview: path -> image, deleted at the end

    def choice():
        python = known_python(settings)
        if python is None:
            raise ColorizeError("The preview needs the c2e engine: press OK to set it up.")
        found, image_id = references.get_active()
        reference = file_reference(config, "reference-file", loaded) or (
            Gimp.Image.get_by_id(image_id) if found else None)
        if reference is None:
            raise ColorizeError("Choose the reference: another open image or an image file.")
        blend = file_reference(config, "blend-file", loaded)
        return python, [reference] + ([blend] if blend is not None else []), chosen_options(
            config, settings)

    panel = PreviewPanel(GimpPreview(image, drawable, SESSION), choice, settings.options.preview)
    dialog.get_content_area().pack_start(panel.widget, False, False, 0)
    watched = [(config, config.connect("notify", panel.changed)),
               # GimpIntComboBox's own connect(value, callback) hides GObject's signal connect
               (references, GObject.Object.connect(references, "changed", panel.changed))]
    panel.changed()
    TEST_HOOKS.get("dialog", lambda *_: None)(dialog, panel)
    try:
        accepted = dialog.run()
    finally:
        for source, handler in watched:  # setting "reference" below must not wake it
            GObject.Object.disconnect(source, handler)
        panel.close()
        for temporary in loaded.values():
            temporary.delete()
    if accepted:
        found, image_id = references.get_active()
        config.set_property("reference", Gimp.Image.get_by_id(image_id) if found else None)
    if panel.live.get_active() != settings.options.preview:
        settings.options.preview = panel.live.get_active()
        try:
            save_settings(settings)
        except OSError:
            pass  # remembering is a convenience
    dialog.destroy()
    return accepted


def chosen_options(config, settings):
    """The options the arguments (or the dialog, as it shows them now) give; the weights are
    the recorded ones."""
    return ColorizeOptions(
        size=config.get_property("size"),
        device=config.get_property("device"),
        strength=config.get_property("strength"),
        clean=config.get_property("clean"),
        keep_palette=config.get_property("keep-palette"),
        weights=settings.options.weights,
        gray_to_rgb=config.get_property("gray-to-rgb"),
        colour_only=config.get_property("colour-only"),
        blend_share=config.get_property("blend-share"),
    )


def offer_engine(recorded):
    """Ask whether to set the engine up (interactive runs); True for yes."""
    gone = f"The c2e Python recorded in the settings ({recorded}) is gone.\n\n" if recorded else ""
    dialog = Gtk.MessageDialog(
        flags=Gtk.DialogFlags.MODAL, message_type=Gtk.MessageType.QUESTION,
        buttons=Gtk.ButtonsType.YES_NO, text="Set up the Color2Embed engine?",
    )
    dialog.format_secondary_text(
        f"{gone}{TITLE} needs its engine: a private Python environment with c2e's runtime "
        f"(about 250 MB; pip downloads about 80 MB), made in\n{engine_folder()}\n\n"
        "(Or install c2e yourself and run 'c2e plugins install gimp'.)"
    )
    answer = dialog.run()
    dialog.destroy()
    return answer == Gtk.ResponseType.YES


def worker_python(settings, run_mode, config):
    """The worker's Python: the recorded one if it exists, else the engine this plug-in set
    up, else (asked in interactive runs, or with ``set-up-engine``) a new engine, recorded in
    the settings. Returns the recorded value unchanged when there is none, so the worker's
    start explains what to do. Raises :class:`EngineError` if the set-up fails."""
    python = known_python(settings)
    if python is not None:
        return python
    wanted = config.get_property("set-up-engine") or (
        run_mode == Gimp.RunMode.INTERACTIVE and offer_engine(settings.python))
    if not wanted:
        return settings.python
    Gimp.progress_init("Setting up the c2e engine")

    def progress(fraction, text):
        if text:
            Gimp.progress_set_text(text)
        if fraction is not None:
            Gimp.progress_update(fraction)

    try:
        engine = set_up_engine(progress=progress)
    finally:
        Gimp.progress_end()
    record_python(settings, engine)
    return engine


def run(procedure, run_mode, image, drawables, config, data):
    """The procedure: dialog (interactive runs), then :func:`colorize_from_reference`."""
    if len(drawables) != 1:
        return failure(procedure, "Select exactly one layer to colorize.")
    if run_mode == Gimp.RunMode.INTERACTIVE:
        if not ask(procedure, image, drawables[0], config):
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    loaded = {}  # images loaded from files for this run (by path), deleted after it
    try:
        reference = chosen_reference(config, "reference", "reference-file", loaded)
        blend = chosen_reference(config, "blend", "blend-file", loaded)
        return colorize_run(procedure, run_mode, image, drawables, config, reference, blend)
    except ColorizeError as exc:
        return failure(procedure, f"{TITLE}: {exc}")
    finally:
        for temporary in loaded.values():
            temporary.delete()


def chosen_reference(config, image_argument, file_argument, loaded):
    """The image of ``file_argument`` when a file is given (:func:`file_reference`), else the
    open image of ``image_argument`` (or None)."""
    return file_reference(config, file_argument, loaded) or config.get_property(image_argument)


def file_reference(config, file_argument, loaded):
    """The image of ``file_argument``'s file, opened once per path and kept in ``loaded``
    (path -> image; the caller deletes them), or None when no file is chosen. Raises
    :class:`ColorizeError`."""
    chosen = config.get_property(file_argument)
    if chosen is None or not chosen.get_path():
        return None
    path = chosen.get_path()
    if path in loaded:
        return loaded[path]
    if not os.path.isfile(path):
        raise ColorizeError(f"the reference file '{path}' does not exist")
    try:
        image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, chosen)
    except GLib.Error as exc:
        message = f"GIMP cannot open the reference file '{path}' ({exc.message})"
        raise ColorizeError(message) from None
    if image is None:
        raise ColorizeError(f"GIMP cannot open the reference file '{path}'")
    loaded[path] = image
    return image


def colorize_run(procedure, run_mode, image, drawables, config, reference, blend):
    """The rest of :func:`run`: the worker's Python, then :func:`colorize_from_reference`."""
    settings = load_settings(ColorizeOptions)
    try:
        python = worker_python(settings, run_mode, config)
    except EngineError as exc:
        return failure(procedure, f"{TITLE}: {exc}")
    SESSION.recorded_in = settings.path
    worker = LazyWorker(SESSION, python)
    # interactive runs: the plug-in's own progress window, whose Cancel stops the worker's job
    # (GIMP's progress bar would offer a Cancel that closes this persistent process:
    # c2e_gimp/cancel.py); scripts: GIMP's progress bar
    window = RunWindow(TITLE) if run_mode == Gimp.RunMode.INTERACTIVE else None
    if window is None:
        Gimp.progress_init("Colorizing from the reference image")
        client, progress = worker, gimp_progress
    else:
        client = CancellableClient(worker, lambda: window.cancelled, window.pump)
        progress = window.update
    try:
        options = chosen_options(config, settings)
        layer = colorize_from_reference(image, drawables[0], reference, options, client,
                                        progress, blend)
    except WorkerCancelled:  # the image is as it was
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except (ColorizeError, WorkerError) as exc:
        return failure(procedure, f"{TITLE}: {exc}")
    except Exception as exc:  # a bug: say so in GIMP, keep the traceback on stderr
        traceback.print_exc()
        return failure(procedure, f"{TITLE}: unexpected error ({exc!r}); details on stderr")
    finally:  # the worker stays for the next run
        if window is None:
            Gimp.progress_end()
        else:
            window.close()
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    values.remove(1)
    values.insert(1, GObject.Value(Gimp.Layer, layer))
    return values


def colorize_procedure(plug_in):
    """Colors > Colorize from Reference Image..., a temporary procedure of the extension."""
    name = PROCEDURE
    procedure = Gimp.ImageProcedure.new(plug_in, name, Gimp.PDBProcType.TEMPORARY, run, None)
    procedure.set_image_types("RGB*, GRAY*")
    procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
    procedure.set_menu_label("Colorize from _Reference Image...")
    procedure.add_menu_path("<Image>/Colors")
    procedure.set_documentation(
        "Colorize the layer from another open image (Color2Embed)",
        "Gives the active layer the colours of a reference image with the Color2Embed "
        "network, on a new layer above it; the layer's lightness, alpha and bit depth are "
        "kept and only the selection changes. Runs the c2e worker recorded by "
        "'c2e plugins install gimp'.",
        name,
    )
    procedure.set_attribution("Color2Embed Studio", "Color2Embed Studio", "2025")
    flags = GObject.ParamFlags.READWRITE
    procedure.add_image_argument(
        "reference", "Re_ference image", "The open image whose visible colours to use",
        True, flags,
    )
    procedure.add_file_argument(
        "reference-file", "Or a reference _file",
        "An image file whose colours to use instead of an open image (any format GIMP opens; "
        "loaded for the run, never shown or changed)",
        Gimp.FileChooserAction.OPEN, True, None, flags,
    )
    procedure.add_image_argument(
        "blend", "Blend with image",
        "A second open image whose colours are blended with the reference's (scripts; the "
        "dialog offers a file)", True, flags,
    )
    procedure.add_file_argument(
        "blend-file", "_Blend with file",
        "A second reference, an image file, blended with the first (used instead of 'blend')",
        Gimp.FileChooserAction.OPEN, True, None, flags,
    )
    procedure.add_double_argument(
        "blend-share", "Blend s_hare",
        "The second reference's share of the colours: 0 none, 1 all",
        MIN_STRENGTH, MAX_STRENGTH, 0.5, flags,
    )
    procedure.add_int_argument(
        "size", "Working si_ze",
        f"The network's working size in pixels: a multiple of {SIZE_MULTIPLE} up to "
        f"{MAX_SIZE}, or {NATIVE_SIZE} for the layer's own size (slower, more detail)",
        NATIVE_SIZE, MAX_SIZE, DEFAULT_SIZE, flags,
    )
    devices = Gimp.Choice.new()
    for index, device in enumerate(DEVICES):
        devices.add(device, index, DEVICE_LABELS[device], "")
    procedure.add_choice_argument(
        "device", "_Device", "Where the network runs", devices, "auto", flags
    )
    procedure.add_double_argument(
        "strength", "S_trength",
        "How much of the new colour replaces the old: 0 keeps it, 1 replaces it",
        MIN_STRENGTH, MAX_STRENGTH, DEFAULT_STRENGTH, flags,
    )
    procedure.add_double_argument(
        "clean", "C_lean up",
        "Even out the colours inside flat areas (walls, skies, skin): 0 leaves them as "
        "predicted, 1 (the default) gives each flat area one colour (no blotches of foreign "
        "colour; colour changes at edges stay)",
        MIN_STRENGTH, MAX_STRENGTH, DEFAULT_CLEAN, flags,
    )
    procedure.add_boolean_argument(
        "colour-only", "_Colour only (a 'Color' mode layer)",
        "Make the new layer an 'LCH Color' mode layer over the original: it gives hue and "
        "chroma, the layer below keeps its lightness, so later edits of it still show through "
        "(otherwise a full-colour normal layer)",
        False, flags,
    )
    procedure.add_boolean_argument(
        "gray-to-rgb", "Con_vert a grayscale image to RGB",
        "A grayscale image cannot hold colours: convert it to RGB in the same undo step "
        "(otherwise the procedure fails with a message)",
        False, flags,
    )
    procedure.add_boolean_argument(
        "set-up-engine", "Set up the _engine if c2e is missing",
        "With no c2e Python found, make the plug-in's own engine (a private Python "
        "environment with c2e's runtime; pip downloads about 80 MB). Interactive runs ask.",
        False, flags,
    )
    procedure.add_boolean_argument(
        "keep-palette", "Keep the _palette",
        "The cleaned-up colours keep the spread of the reference's palette (otherwise calmer, "
        "paler colours)",
        DEFAULT_KEEP_PALETTE, flags,
    )
    procedure.add_layer_return_value(
        "layer", "Layer", "The new colorized layer", True, flags
    )
    return procedure




class Color2Embed(Gimp.PlugIn):
    """The plug-in: a persistent extension that serves the colorize procedure."""

    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [EXTENSION]

    def do_create_procedure(self, name):
        procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PERSISTENT, run_extension,
                                       None)
        procedure.set_documentation(
            "Serves Colors > Colorize from Reference Image... (Color2Embed)",
            "Started by GIMP when it starts: installs python-fu-c2e-colorize and keeps its c2e "
            "worker, with the model loaded, from one run to the next until GIMP quits.",
            name,
        )
        procedure.set_attribution("Color2Embed Studio", "Color2Embed Studio", "2025")
        return procedure

    def do_quit(self):
        SESSION.close()


def run_extension(procedure, config, data):
    """The extension: install the colorize procedure, then serve GIMP's calls until it quits."""
    plug_in = procedure.get_plug_in()
    plug_in.add_temp_procedure(colorize_procedure(plug_in))
    procedure.persistent_ready()
    plug_in.persistent_enable()
    while True:
        plug_in.persistent_process(0)


if __name__ == "__main__":
    Gimp.main(Color2Embed.__gtype__, sys.argv)
