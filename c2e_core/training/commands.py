"""``c2e train`` and ``c2e plot-metrics``: argument definitions and runners for the CLI.

User mistakes (missing recipe, unknown key, missing data folder or VGG file) raise
``ValueError`` subclasses with one-line messages; the CLI prints them and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_train_arguments", "run_train", "add_plot_arguments", "run_plot"]


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``c2e train``."""
    parser.add_argument(
        "--config", required=True, type=Path, metavar="RECIPE",
        help="training recipe (TOML), e.g. training/recipes/cpu-small.toml",
    )  # fmt: skip
    parser.add_argument(
        "--resume", type=Path, metavar="CKPT",
        help="continue exactly from this checkpoint (RUN/checkpoints/ckpt-*.pt)",
    )  # fmt: skip
    parser.add_argument(
        "--data", type=Path, metavar="DIR", help="folder of training images (overrides data.folder)"
    )
    parser.add_argument(
        "--steps", type=int, metavar="N", help="total steps (overrides optim.steps)"
    )
    parser.add_argument(
        "--output", type=Path, metavar="DIR", help="run folder (overrides run.output)"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress line on stderr"
    )


def run_train(args: argparse.Namespace) -> int:
    """Load the recipe, apply the overrides, train, and say how to install the weights."""
    from c2e_core.training.recipe import load_recipe
    from c2e_core.training.trainer import train

    recipe = load_recipe(args.config).with_overrides(
        data=args.data, steps=args.steps, output=args.output
    )
    path = train(recipe, resume=args.resume, progress=getattr(args, "progress", True))
    if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
        return 0
    print(path)
    print(
        f"install the weights with: c2e weights import {path} --name NAME",
        file=sys.stderr,
    )
    return 0


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``c2e plot-metrics``."""
    parser.add_argument(
        "run", type=Path, metavar="RUN_DIR", help="a training run folder (or its metrics.jsonl)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="PNG", help="PNG to write (default RUN_DIR/loss.png)"
    )


def run_plot(args: argparse.Namespace) -> int:
    """Draw the run's loss curves into a PNG."""
    from c2e_core.training.trainer import METRICS_FILE, TrainingError, plot_metrics

    run = Path(args.run)
    jsonl = run / METRICS_FILE if run.is_dir() else run
    if not jsonl.is_file():
        raise TrainingError(f"no metrics file '{jsonl}'")
    png = args.output or (jsonl.parent / "loss.png")
    print(plot_metrics(jsonl, png))
    return 0
