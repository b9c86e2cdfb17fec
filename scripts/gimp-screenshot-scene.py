"""Runs inside GIMP 3's GUI (batch mode) for scripts/gimp-screenshot: the scene of the docs'
screenshots. Not a test; it drives the real dialog the way a user does.

It opens the example pair, shows both, and runs the installed procedure *interactively*: the
dialog appears, and scripts/gimp-screenshot photographs it and presses Return. Once the
result is photographed it writes ``scene.json`` (the outcome) and quits GIMP.
Folder: $C2E_SHOT_DIR (the examples, and the files this exchanges with scripts/gimp-screenshot).
"""

import json
import os
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

FOLDER = os.environ["C2E_SHOT_DIR"]
PROCEDURE = "python-fu-c2e-colorize"


def path(name):
    return os.path.join(FOLDER, name)


def load(name):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path(name)))


def wait_for(name, seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path(name)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not appear within {seconds}s")
        time.sleep(0.2)


def main():
    reference = load("coffee.jpg")
    target = load("chelsea-gray.jpg")
    Gimp.Display.new(reference)
    Gimp.Display.new(target)  # the last display shown is the active one
    Gimp.displays_flush()
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
    config.set_property("image", target)
    config.set_core_object_array("drawables", target.get_layers())
    config.set_property("gray-to-rgb", True)
    values = procedure.run(config)
    status = values.index(0)
    outcome = {
        "status": status.value_nick,
        "message": values.index(1) if status != Gimp.PDBStatusType.SUCCESS else None,
        "layers": [layer.get_name() for layer in target.get_layers()],
        "base_type": target.get_base_type().value_nick,
    }
    Gimp.displays_flush()
    with open(path("scene-done"), "w") as stream:
        stream.write("done\n")
    wait_for("result.xwd.ready", 120)
    with open(path("scene.json"), "w") as stream:
        json.dump(outcome, stream)


try:
    main()
finally:
    quit_gimp = Gimp.get_pdb().lookup_procedure("gimp-quit")
    quit_config = quit_gimp.create_config()
    quit_config.set_property("force", True)
    quit_gimp.run(quit_config)
