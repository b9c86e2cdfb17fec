"""``c2e eval``: the evaluation protocol from the command line (the CLI wires these two in).

``c2e eval --data DIR [--weights NAME|PATH] [--mode self-warped|cross|both] [--limit N]
[--output DIR] [--device D] [--seed S] [--clean C] [--no-keep-palette]``. Without
``--weights`` only the three baselines run, and the report says so. User mistakes raise
:class:`~c2e_core.training.evaluation.EvalError` (an ``OptionError``, so a ``ValueError``, that
the CLI reports in one line).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from c2e_core.options import DEFAULT_CLEAN, DEFAULT_KEEP_PALETTE

DEFAULT_OUTPUT = "c2e-eval"


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``c2e eval`` options to ``parser`` and return it."""
    parser.add_argument(
        "--data",
        required=True,
        metavar="DIR",
        help="folder of colour photos (searched recursively)",
    )
    parser.add_argument(
        "--weights",
        metavar="NAME|PATH",
        help="model weights to evaluate; without it only the baselines run",
    )
    parser.add_argument(
        "--mode",
        choices=("self-warped", "cross", "both"),
        default="both",
        help="references: the ground truth warped like in training, another photo, or both",
    )
    parser.add_argument(
        "--limit", type=_positive_int, metavar="N", help="use the first N images (sorted)"
    )
    parser.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="report folder for results.json, results.md and contact_sheet.png "
        f"(default {DEFAULT_OUTPUT})",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--seed", type=int, default=0, help="seed of references and pairs")
    parser.add_argument(
        "--clean",
        type=float,
        default=DEFAULT_CLEAN,
        help=f"the model's colour cleanup, 0 to 1 (default {DEFAULT_CLEAN:g}, as c2e colorize "
        "--clean)",
    )
    parser.add_argument(
        "--keep-palette",
        action=argparse.BooleanOptionalAction,
        default=DEFAULT_KEEP_PALETTE,
        help="the cleanup's palette step (default on, as c2e colorize)",
    )
    return parser


def run_eval(args: argparse.Namespace) -> int:
    """Run the evaluation, write the report, print the Markdown tables; returns 0."""
    from c2e_core.training.evaluation import EvalError, evaluate, write_report

    data, output = Path(args.data), Path(args.output)
    if not data.is_dir():
        raise EvalError(f"--data {data}: no such folder")
    if output.exists() and not output.is_dir():
        raise EvalError(f"--output {output}: exists and is not a folder")
    results = evaluate(
        data,
        model_spec=args.weights,
        mode=args.mode,
        limit=args.limit,
        seed=args.seed,
        device=args.device,
        clean=args.clean,
        keep_palette=args.keep_palette,
    )
    paths = write_report(results, output)
    sys.stdout.write(paths["markdown"].read_text(encoding="utf-8"))
    print(f"report written to {output} ({results['seconds']:.1f} s)")
    return 0
