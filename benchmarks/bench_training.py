"""Training throughput: images/s of one optimisation step as ``c2e train`` runs it.

Default: the ``paper`` model at 256², batch 64, with the 5-layer VGG-19 perceptual loss (random
VGG weights: the speed does not depend on their values), references synthesised on the device.

    python benchmarks/bench_training.py [--device cuda] [--batch 64] [--size 256]
        [--precision bf16|fp32] [--steps 5] [--model paper|cpu-small]
        [--perceptual vgg19|effnet-lite0|none]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from c2e_core.data.folder import batch_to_lab
from c2e_core.data.reference import ReferenceRecipe, synthesize_references
from c2e_core.inference.device import select_device
from c2e_core.modeling.colour import lab_to_rgb
from c2e_core.training.losses import PerceptualLoss, reconstruction_loss
from c2e_core.training.recipe import load_recipe
from c2e_core.weights.build import build_color2embed

RECIPES = Path(__file__).resolve().parents[1] / "training" / "recipes"


def perceptual_loss(name: str, device: torch.device) -> PerceptualLoss | None:
    if name == "none":
        return None
    if name == "vgg19":
        import torchvision

        from c2e_core.training.losses import VGG19_WEIGHTS, VGG19Taps

        features = torchvision.models.vgg19(weights=None).features[:32]
        return PerceptualLoss(VGG19Taps(features), VGG19_WEIGHTS, "vgg19").to(device)
    from c2e_core.training.losses import make_perceptual_loss

    return make_perceptual_loss(name, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", choices=["paper", "cpu-small"], default="paper")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--perceptual", choices=["vgg19", "effnet-lite0", "none"], default="vgg19")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    device = select_device(args.device)
    cuda = device.type == "cuda"
    use_bf16 = cuda and args.precision == "bf16"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    torch.manual_seed(0)
    config = load_recipe(RECIPES / f"{args.model}.toml").model.config()  # the recipe's model
    model = build_color2embed(config).to(device).train()
    model = model.to(memory_format=fmt) if cuda else model
    perceptual = perceptual_loss(args.perceptual, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.99))
    rgb = torch.rand(args.batch, 3, args.size, args.size, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    recipe = ReferenceRecipe()

    def step() -> None:
        with torch.no_grad():
            l_norm, ab_gt = batch_to_lab(rgb, model)
            reference = synthesize_references(rgb, recipe, generator)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred = model(
                l_norm.contiguous(memory_format=fmt), reference.contiguous(memory_format=fmt)
            )
        pred = pred.float()
        loss = reconstruction_loss(pred, ab_gt)
        if perceptual is not None:
            lab = torch.cat(
                (model.lightness_from_normalized(l_norm), model.ab_from_output(pred)), dim=1
            )
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = loss + perceptual(lab_to_rgb(lab), rgb).float()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    times = []
    for _ in range(args.steps):
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    memory = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if cuda else ""
    print(
        f"{name}: {args.model}, {args.size}², batch {args.batch}, {args.perceptual} perceptual, "
        f"{'bf16' if use_bf16 else 'fp32'}: {seconds * 1e3:.0f} ms/step, "
        f"{args.batch / seconds:.1f} images/s (median of {args.steps}){memory}"
    )


if __name__ == "__main__":
    main()
