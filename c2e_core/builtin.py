"""The built-in plugin: registers the stock architecture, weights and processing steps.

It uses exactly the hooks a third-party plugin uses (see :mod:`c2e_core.hookspecs`).
"""

from __future__ import annotations

import importlib.util
import json
from importlib import resources

from c2e_core.hookspecs import hookimpl

#: Package folder holding weights that ship with the package, with ``manifest.json``.
BUNDLED_WEIGHTS_PACKAGE = "c2e_core.bundled"


# The built-in collectors run first (``tryfirst``), so built-ins are listed before plugins'.
@hookimpl(tryfirst=True)
def c2e_register_architectures(register):
    """The paper's architecture and this project's extension: torch models, so registered
    only where torch is installed (runtime weights need no architecture)."""
    if importlib.util.find_spec("torch") is None:
        return
    from c2e_core.weights.build import (
        COLOR2EMBED,
        COLOR2EMBED_CORR,
        CORR_PRESETS,
        PRESETS,
        CorrConfig,
        ModelConfig,
        build_color2embed,
        build_color2embed_corr,
    )

    register(
        COLOR2EMBED,
        build_color2embed,
        "Color2Embed (Zhao et al. 2021), configurable widths",
        config_class=ModelConfig,
        presets=PRESETS,
    )
    register(
        COLOR2EMBED_CORR,
        build_color2embed_corr,
        "Color2Embed + target ImageNet features and a reference correspondence (this project's)",
        config_class=CorrConfig,
        presets=CORR_PRESETS,
    )


@hookimpl(tryfirst=True)
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


@hookimpl(tryfirst=True)
def c2e_register_processors(register):
    from c2e_core.inference import processing

    register("auto-contrast", "pre", processing.auto_contrast, "stretch the target's contrast")
    register("saturation", "post", processing.saturation, "scale the chroma (factor)")


def _lazy(module: str, function: str):
    """A command handler that imports its (heavy) module only when the command runs."""

    def handler(args):
        from importlib import import_module

        return getattr(import_module(module), function)(args)

    return handler


@hookimpl
def c2e_register_commands(subparsers):
    """``c2e train``, ``c2e plot-metrics`` and ``c2e eval``: registered like any plugin's
    commands; the argument modules are light and the training code loads only when run."""
    from c2e_core.training.commands import add_plot_arguments, add_train_arguments
    from c2e_core.training.eval_command import add_eval_arguments

    train = subparsers.add_parser("train", help="train a model from a TOML recipe")
    add_train_arguments(train)
    train.set_defaults(handler=_lazy("c2e_core.training.commands", "run_train"))
    plot = subparsers.add_parser("plot-metrics", help="draw a training run's loss curves")
    add_plot_arguments(plot)
    plot.set_defaults(handler=_lazy("c2e_core.training.commands", "run_plot"))
    evaluate = subparsers.add_parser(
        "eval", help="evaluate weights and the baselines on a folder of colour photos"
    )
    add_eval_arguments(evaluate)
    evaluate.set_defaults(handler=_lazy("c2e_core.training.eval_command", "run_eval"))
