"""The built-in plugin: registers the stock architecture, weights and processing steps.

It uses exactly the hooks a third-party plugin uses (see :mod:`c2e_core.hookspecs`).
"""

from __future__ import annotations

import json
from importlib import resources

from c2e_core.hookspecs import hookimpl

#: Package folder holding weights that ship with the package, with ``manifest.json``.
BUNDLED_WEIGHTS_PACKAGE = "c2e_core.bundled"


@hookimpl
def c2e_register_architectures(register):
    from c2e_core.build import COLOR2EMBED, build_color2embed

    register(COLOR2EMBED, build_color2embed, "Color2Embed (Zhao et al. 2021), configurable widths")


@hookimpl
def c2e_register_weights(register):
    """Weights shipped inside the package, listed in ``c2e_core/bundled/manifest.json``."""
    try:
        folder = resources.files(BUNDLED_WEIGHTS_PACKAGE)
        manifest = json.loads(folder.joinpath("manifest.json").read_text())
    except (ModuleNotFoundError, FileNotFoundError):
        return
    for name, entry in manifest.get("weights", {}).items():
        register(
            name, folder.joinpath(entry["file"]), entry["sha256"], entry.get("description", "")
        )


@hookimpl
def c2e_register_processors(register):
    from c2e_core import processing

    register("auto-contrast", "pre", processing.auto_contrast, "stretch the target's contrast")
    register("saturation", "post", processing.saturation, "scale the chroma (factor)")


def _run_eval(args):
    from c2e_core.training.eval_command import run_eval

    return run_eval(args)


@hookimpl
def c2e_register_commands(subparsers):
    """``c2e eval``: registered like any plugin command; its heavy modules load only when run."""
    from c2e_core.training.eval_command import add_eval_arguments

    parser = subparsers.add_parser(
        "eval", help="evaluate weights and the baselines on a folder of colour photos"
    )
    add_eval_arguments(parser)
    parser.set_defaults(handler=_run_eval)
