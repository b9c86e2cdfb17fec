"""A training checkpoint's weights (its EMA where the run keeps one) as a c2e weights file, to
score a stage part-way (``training/decision_eval.py``) or to ship a checkpoint.

    python training/checkpoint_weights.py runs/x/checkpoints/ckpt-000000300.pt runs/x/step300.c2e.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="RUN/checkpoints/ckpt-STEP.pt")
    parser.add_argument("output", type=Path, help="the weights file to write (*.c2e.pt)")
    args = parser.parse_args(argv)
    from c2e_core.training.recipe import recipe_from_dict
    from c2e_core.training.trainer import read_checkpoint
    from c2e_core.weights.build import architecture_of, build_from_config, load_state_strictly
    from c2e_core.weights.store import save_weights

    checkpoint = read_checkpoint(args.checkpoint)
    config = recipe_from_dict(checkpoint["recipe"]).model.config()
    model = build_from_config(config)
    load_state_strictly(model, checkpoint["ema"] or checkpoint["model"])
    save_weights(
        args.output,
        architecture=architecture_of(config),
        config=config.to_dict(),
        state_dict=model.state_dict(),
        metadata={
            "description": f"checkpoint {args.checkpoint.name} of c2e train",
            "source": "c2e-train-checkpoint",
            "recipe": checkpoint["recipe"],
            "steps": checkpoint["step"],
            "images_seen": checkpoint["images_seen"],
            "ema": checkpoint["ema"] is not None,
        },
    )
    print(f"wrote {args.output} (step {checkpoint['step']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
