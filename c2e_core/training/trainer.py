"""The training loop: self-references, smooth-L1 + perceptual loss, checkpoints, DDP, export.

``train(recipe)`` runs on one device, or on several processes started by ``torchrun`` (it reads
``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; NCCL on CUDA, gloo on CPU). Everything random is a
function of the recipe's seed, the rank and the step (the reference generator is re-seeded from
``(seed, rank, step)`` every step and crops depend on ``(seed, epoch, index)``), so a run resumed
from a checkpoint continues with exactly the losses of the uninterrupted run.

Files in ``run.output``: ``checkpoints/ckpt-STEP.pt`` (every ``checkpoint_every`` steps and at
the last step; the newest ``keep_last`` are kept), ``metrics.jsonl``
(one JSON object per ``log_every`` steps) and, at the end, ``final.c2e.pt`` (compact inference
weights that ``c2e weights import`` installs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from c2e_core.data.folder import (
    DatasetError,
    ImageFolderDataset,
    batch_to_lab,
    make_loader,
    set_loader_epoch,
)
from c2e_core.data.reference import (
    paste_foreign_regions,
    reframe_references,
    synthesize_references,
)
from c2e_core.errors import TrainingError
from c2e_core.files.atomic import atomic_file
from c2e_core.modeling.color2embed import lab_scaling
from c2e_core.modeling.colour import lab_to_rgb
from c2e_core.training.losses import (
    chroma_loss,
    edge_aware_smoothness,
    histogram_loss,
    make_perceptual_loss,
    reconstruction_loss,
)
from c2e_core.training.recipe import TrainRecipe
from c2e_core.weights.build import (
    StateDictError,
    architecture_of,
    build_from_config,
    init_for_training,
    load_state_strictly,
)
from c2e_core.weights.store import load_failure, load_plain, unsafe_objects

__all__ = [
    "TrainingError",
    "train",
    "data_manifest_sha256",
    "list_checkpoints",
    "save_checkpoint",
    "read_checkpoint",
    "read_metrics",
    "plot_metrics",
    "FINAL_WEIGHTS",
    "METRICS_FILE",
]

logger = logging.getLogger("c2e_core.training")

FINAL_WEIGHTS = "final.c2e.pt"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_DIR = "checkpoints"
#: The total loss and its terms (each unweighted), as ``metrics.jsonl`` logs them (window means).
LOSS_TERMS = (
    "loss", "loss_rec", "loss_perc", "loss_hist", "loss_cross_hist", "loss_chroma", "loss_smooth"
)
CHECKPOINT_FORMAT = "c2e-train-checkpoint"


# --------------------------------------------------------------------------- small helpers


def data_manifest_sha256(dataset: ImageFolderDataset) -> str:
    """sha256 of the sorted ``relative/path<TAB>size`` lines of the training files."""
    root = dataset.root
    lines = []
    for path in dataset.paths:
        rel = path.relative_to(root).as_posix() if root is not None else path.as_posix()
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        lines.append(f"{rel}\t{size}")
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()


def _step_seed(seed: int, rank: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0] >> 1)


def list_checkpoints(output: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = Path(output) / CHECKPOINT_DIR
    return sorted(folder.glob("ckpt-*.pt")) if folder.is_dir() else []


def save_checkpoint(state: dict[str, Any], output: Path, step: int, keep_last: int) -> Path:
    """Write ``ckpt-STEP.pt`` atomically and delete all but the newest ``keep_last``."""
    path = Path(output) / CHECKPOINT_DIR / f"ckpt-{step:09d}.pt"
    with atomic_file(path) as handle:
        torch.save(state, handle)
    for old in list_checkpoints(output)[:-keep_last]:
        old.unlink(missing_ok=True)
    return path


def _rng_states(device: torch.device) -> dict[str, Any]:
    """The RNG states in types ``torch.load(weights_only=True)`` reads: tensors, lists, ints."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
    }
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training checkpoint with ``weights_only=True`` (no pickled code can run)."""
    if not path.is_file():
        raise TrainingError(f"checkpoint '{path}' not found")
    try:
        checkpoint = load_plain(path)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        reason = unsafe_objects(exc) or load_failure(exc)
        raise TrainingError(f"'{path}' cannot be resumed from: {reason}") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"'{path}' is not a c2e training checkpoint")
    return checkpoint


class _Ema:
    """Exponential moving average of a model's floating-point state (buffers copied)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        current = model.state_dict()
        floats = [k for k, v in self.state.items() if v.is_floating_point()]
        torch._foreach_lerp_(
            [self.state[k] for k in floats], [current[k].detach() for k in floats],
            1.0 - self.decay,
        )  # fmt: skip
        for key, value in self.state.items():
            if not value.is_floating_point():
                value.copy_(current[key])


# --------------------------------------------------------------------------- progress


class _Progress:
    """A dependency-free progress line on stderr: step, loss, images/s, ETA."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.start_step, self.enabled = total, start, enabled
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, step: int, loss: float, images_per_s: float) -> None:
        if not self.enabled:
            return
        done = step - self.start_step
        elapsed = time.monotonic() - self.t0
        eta = elapsed / done * (self.total - step) if done else 0.0
        width = 24
        filled = int(width * step / self.total)
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] step {step}/{self.total} "
            f"loss {loss:.4f} {images_per_s:.1f} img/s eta {_duration(eta)}"
        )
        end = "" if self.tty else "\n"
        print(("\r" + line.ljust(100)) if self.tty else line, end=end, file=sys.stderr, flush=True)

    def close(self, message: str) -> None:
        if self.enabled:
            print(("\n" if self.tty else "") + message, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


# --------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_name: str) -> tuple[_Dist, torch.device]:
    from c2e_core.inference.device import select_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist(), select_device(device_name)
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = select_device(device_name)
    if wanted.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return _Dist(world, rank, local_rank), device


# --------------------------------------------------------------------------- setup


def _build_model(recipe: TrainRecipe, seed: int) -> nn.Module:
    config = recipe.model.config()
    torch.manual_seed(seed)
    model = build_from_config(config)
    init = recipe.init
    if init.kind == "scratch":
        init_for_training(model)
        if init.pretrained_backbone:
            from c2e_core.training.pretrained import load_pretrained_backbone

            try:
                load_pretrained_backbone(model, recipe.loss.effnet_weights)
            except (ValueError, FileNotFoundError) as exc:
                raise TrainingError(str(exc)) from None
        return model
    if init.path is None or not init.path.is_file():
        raise TrainingError(f"init.from: file '{init.path}' not found")
    if init.kind == "official":
        from c2e_core.weights.official import convert_official_checkpoint

        weights = convert_official_checkpoint(init.path)
    else:
        from c2e_core.weights.store import read_weights

        weights = read_weights(init.path)
    try:
        load_state_strictly(model, weights.state_dict)
    except StateDictError as exc:
        raise TrainingError(
            f"init.from {init.path}: does not fit the recipe's model ({exc})"
        ) from None
    return model


def _make_dataset(recipe: TrainRecipe) -> ImageFolderDataset:
    folder = recipe.data.folder
    where = f" in {recipe.source}" if recipe.source else ""
    if folder is None:
        raise TrainingError(f"no training images: set data.folder{where} or pass --data DIR")
    if not folder.is_dir():
        raise TrainingError(
            f"data folder '{folder}' not found: edit data.folder{where} or pass --data DIR"
        )
    try:
        return ImageFolderDataset(folder, recipe.data.crop, seed=recipe.data.seed)
    except DatasetError as exc:
        raise TrainingError(str(exc)) from None


def _make_perceptual(recipe: TrainRecipe, device: torch.device) -> nn.Module:
    loss = recipe.loss
    path = loss.weights_path
    try:
        return make_perceptual_loss(loss.perceptual, str(path) if path else None, device)
    except (FileNotFoundError, ImportError) as exc:  # missing weights, or torchvision for vgg19
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise TrainingError(f"perceptual loss {loss.perceptual}: {message}") from None


def _hardware(device: torch.device, world: int) -> dict[str, Any]:
    info: dict[str, Any] = {
        "device": str(device),
        "world_size": world,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _remaining_indices(loader: Any, skip_batches: int, batch: int) -> list[int]:
    """The sampler's indices for the current epoch after the first ``skip_batches`` batches."""
    return list(loader.sampler)[skip_batches * batch :]


def _epoch_batches(
    loader: Any, epoch: int, skip: int, batch: int, workers: int
) -> Iterable[tuple[Tensor, Tensor]]:
    """The batches of ``epoch``, starting after ``skip`` batches (a resumed epoch)."""
    set_loader_epoch(loader, epoch)
    if skip == 0:
        return loader
    from torch.utils.data import DataLoader

    return DataLoader(
        loader.dataset,
        batch_size=batch,
        sampler=_remaining_indices(loader, skip, batch),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
    )


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the metric lines written after ``step`` (by a run that is being resumed)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in kept if json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in kept))


# --------------------------------------------------------------------------- the loop


def train(
    recipe: TrainRecipe,
    *,
    resume: Path | None = None,
    data_override: Path | None = None,
    progress: bool = True,
    on_end: Callable[[nn.Module, int], None] | None = None,
) -> Path:
    """Train per ``recipe`` and return the path of the exported inference weights.

    ``resume``: a checkpoint of this run to continue exactly. ``data_override``: use this image
    folder instead of ``data.folder``. ``on_end(model, rank)`` is called on every rank with the
    trained (unwrapped) model before the process group is torn down (for tests and tools).
    Only rank 0 logs, checkpoints and exports; other ranks return the same path.
    """
    if data_override is not None:
        recipe = recipe.with_overrides(data=data_override)
    dist_info, device = _init_distributed(recipe.run.device)
    try:
        return _train(recipe, resume, progress, on_end, dist_info, device)
    finally:
        if dist_info.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _train(
    recipe: TrainRecipe,
    resume: Path | None,
    progress: bool,
    on_end: Callable[[nn.Module, int], None] | None,
    dist_info: _Dist,
    device: torch.device,
) -> Path:
    optim_r, run_r = recipe.optim, recipe.run
    world, rank = dist_info.world, dist_info.rank
    if optim_r.batch % world:
        raise TrainingError(f"optim.batch {optim_r.batch} is not divisible by {world} processes")
    local_batch = optim_r.batch // world
    output = Path(run_r.output)
    seed = recipe.data.seed

    dataset = _make_dataset(recipe)
    checkpoint = None
    if resume is not None:
        resume = Path(resume)
        checkpoint = read_checkpoint(resume)
    perceptual = _make_perceptual(recipe, device)
    model = _build_model(recipe, seed).to(device)
    if checkpoint is not None:
        try:
            load_state_strictly(model, checkpoint["model"])
        except StateDictError as exc:
            raise TrainingError(f"{resume}: does not fit the recipe's model ({exc})") from None

    cuda = device.type == "cuda"
    use_bf16 = cuda and run_r.precision == "bf16"
    memory_format = torch.channels_last if cuda and run_r.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    params = [p for p in model.parameters() if p.requires_grad]
    adam_kwargs: dict[str, Any] = {"fused": True} if cuda else {"foreach": True}
    optimizer = torch.optim.Adam(params, lr=optim_r.lr, betas=optim_r.betas, **adam_kwargs)
    ema = _Ema(model, optim_r.ema_decay) if optim_r.ema_decay else None

    step, epoch, position = 0, 0, 0
    images_seen, wall_before = 0, 0.0
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        if ema is not None and checkpoint.get("ema") is not None:
            ema.state = {k: v.to(device) for k, v in checkpoint["ema"].items()}
        step, epoch, position = checkpoint["step"], checkpoint["epoch"], checkpoint["position"]
        images_seen = checkpoint.get("images_seen", 0)
        wall_before = checkpoint.get("wall_time_s", 0.0)
        rng = checkpoint.get("rng", {}).get(str(rank)) or checkpoint.get("rng", {}).get("0")
        if rng is not None:
            _set_rng_states(rng, device)

    net: nn.Module = model
    scaling = lab_scaling(model)  # the model's own input and output scaling
    if dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)

    workers = recipe.data.workers
    loader = make_loader(
        dataset, local_batch, workers=workers, seed=seed,
        distributed=(world, rank) if dist_info.enabled else None,
    )  # fmt: skip
    batches_per_epoch = len(loader)
    if batches_per_epoch == 0:
        raise TrainingError(
            f"{len(dataset)} training images are fewer than one batch of {optim_r.batch}"
        )

    metrics_path = output / METRICS_FILE
    if dist_info.main:
        output.mkdir(parents=True, exist_ok=True)
        if checkpoint is not None:
            _truncate_metrics(metrics_path, step)
        elif metrics_path.exists():
            metrics_path.unlink()
    bar = _Progress(optim_r.steps, step, progress and dist_info.main)
    ref_gen = torch.Generator(device=device)
    w_rec, w_perc = recipe.loss.reconstruction, recipe.loss.perceptual_weight
    w_hist, w_cross = recipe.loss.histogram, recipe.loss.cross_histogram
    bins, w_chroma = recipe.loss.histogram_bins, recipe.loss.chroma
    w_smooth = recipe.loss.cross_smoothness
    cross_pass = w_cross > 0 or w_smooth > 0
    use_perc = getattr(perceptual, "enabled", True) and w_perc > 0
    start_time = time.monotonic()

    # sums of the LOSS_TERMS and of skipped files, kept on the device: no host sync except when
    # logging
    terms = len(LOSS_TERMS)
    window = torch.zeros(terms + 1, dtype=torch.float32, device=device)
    window_steps, window_t0 = 0, time.monotonic()
    total_skipped = 0

    def checkpoint_state() -> dict[str, Any]:
        done = position >= batches_per_epoch
        next_epoch, next_pos = (epoch + 1, 0) if done else (epoch, position)
        return {
            "format": CHECKPOINT_FORMAT,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "ema": None if ema is None else {k: v.cpu() for k, v in ema.state.items()},
            "step": step,
            "epoch": next_epoch,
            "position": next_pos,
            "images_seen": images_seen,
            "wall_time_s": wall_before + time.monotonic() - start_time,
            "rng": {"0": _rng_states(device)},
            "recipe": recipe.to_dict(),
            "world_size": world,
        }

    while step < optim_r.steps:
        skip = position
        for rgb, skipped in _epoch_batches(loader, epoch, skip, local_batch, workers):
            rgb = rgb.to(device, non_blocking=True)
            with torch.no_grad():
                l_norm, ab_gt = batch_to_lab(rgb, scaling)
                ref_gen.manual_seed(_step_seed(seed, rank, step))
                source = reframe_references(rgb, recipe.reference, ref_gen)
                reference = synthesize_references(source, recipe.reference, ref_gen)
                reference = paste_foreign_regions(reference, recipe.reference, ref_gen)
            if cross_pass:
                # each target once more with the next photo's reference (one forward pass of
                # the doubled batch, so DDP sees a single forward per backward)
                l_norm_in = torch.cat((l_norm, l_norm))
                reference = torch.cat((reference, reference.roll(1, dims=0)))
                ab_next = ab_gt.roll(1, dims=0)  # the colours the second half should take
            else:
                l_norm_in = l_norm
            l_in = l_norm_in.contiguous(memory_format=memory_format)
            ref_in = reference.contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                pred = net(l_in, ref_in)
            pred = pred.float()
            pred, pred_cross = pred.split(l_norm.shape[0]) if cross_pass else (pred, None)
            loss_rec = reconstruction_loss(pred, ab_gt)
            loss = w_rec * loss_rec
            if use_perc:
                lum = scaling.lightness_from_normalized(l_norm)
                lab = torch.cat((lum, scaling.ab_from_output(pred)), dim=1)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    loss_perc = perceptual(lab_to_rgb(lab), rgb).float()
                loss = loss + w_perc * loss_perc
            else:
                loss_perc = loss.new_zeros(())
            if w_hist > 0:
                loss_hist = histogram_loss(pred, ab_gt, bins)
                loss = loss + w_hist * loss_hist
            else:
                loss_hist = loss.new_zeros(())
            if pred_cross is not None and w_cross > 0:
                loss_cross = histogram_loss(pred_cross, ab_next, bins)
                loss = loss + w_cross * loss_cross
            else:
                loss_cross = loss.new_zeros(())
            if pred_cross is not None and w_smooth > 0:
                loss_smooth = edge_aware_smoothness(pred_cross, l_norm)
                loss = loss + w_smooth * loss_smooth
            else:
                loss_smooth = loss.new_zeros(())
            if w_chroma > 0:
                loss_chroma = chroma_loss(pred, ab_gt)
                if pred_cross is not None:
                    loss_chroma = 0.5 * (loss_chroma + chroma_loss(pred_cross, ab_next))
                loss = loss + w_chroma * loss_chroma
            else:
                loss_chroma = loss.new_zeros(())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = optim_r.learning_rate(step)
            if optim_r.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, optim_r.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update(model)
            step += 1
            position += 1
            images_seen += optim_r.batch
            skipped_now = skipped.sum().to(device, torch.float32, non_blocking=True)
            values = (loss, loss_rec, loss_perc, loss_hist, loss_cross, loss_chroma, loss_smooth)
            window += torch.stack([*(v.detach() for v in values), skipped_now])
            window_steps += 1

            if step % run_r.log_every == 0 or step == optim_r.steps:
                sums = window.clone()
                if dist_info.enabled:
                    import torch.distributed as dist

                    dist.all_reduce(sums)
                    sums[:terms] /= world
                sums = sums.double().cpu()
                elapsed = max(time.monotonic() - window_t0, 1e-9)
                rate = window_steps * optim_r.batch / elapsed
                total_skipped += int(sums[terms])
                record = {
                    "step": step,
                    "epoch": epoch,
                    **{name: float(sums[i]) / window_steps for i, name in enumerate(LOSS_TERMS)},
                    "lr": optimizer.param_groups[0]["lr"],
                    "images_per_s": rate,
                    "skipped": int(sums[terms]),
                    "skipped_total": total_skipped,
                    "time_s": wall_before + time.monotonic() - start_time,
                }
                if dist_info.main:
                    with open(metrics_path, "a", encoding="utf-8") as handle:
                        handle.write(json.dumps(record) + "\n")
                bar.update(step, record["loss"], rate)
                if not math.isfinite(record["loss"]):
                    raise RuntimeError(f"the loss is not finite at step {step}")
                window.zero_()
                window_steps, window_t0 = 0, time.monotonic()

            every = run_r.checkpoint_every
            if dist_info.main and every and (step % every == 0 or step == optim_r.steps):
                save_checkpoint(checkpoint_state(), output, step, run_r.keep_last)
            if step >= optim_r.steps:
                break
        else:
            epoch += 1
            position = 0
            continue
        break

    if dist_info.enabled:
        import torch.distributed as dist

        # BatchNorm running statistics are per rank (DDP broadcasts rank 0's before each
        # forward); end with rank 0's everywhere, as saved in checkpoints and the export.
        with torch.no_grad():
            for buffer in model.buffers():
                dist.broadcast(buffer, 0)
        dist.barrier()
    final_state = ema.state if ema is not None else model.state_dict()
    out_path = output / FINAL_WEIGHTS
    wall = wall_before + time.monotonic() - start_time
    if dist_info.main:
        from c2e_core.weights.store import save_weights

        model_eval = build_from_config(recipe.model.config())
        load_state_strictly(model_eval, {k: v.detach().cpu() for k, v in final_state.items()})
        save_weights(
            out_path,
            architecture=architecture_of(recipe.model.config()),
            config=recipe.model.config().to_dict(),
            state_dict=model_eval.state_dict(),
            metadata={
                "description": f"trained with c2e train ({step} steps)",
                "source": "c2e-train",
                "recipe": recipe.to_dict(),
                "steps": step,
                "images_seen": images_seen,
                "wall_time_s": round(wall, 3),
                "hardware": _hardware(device, world),
                "ema": ema is not None,
                "data_manifest_sha256": data_manifest_sha256(dataset),
                "data_files": len(dataset),
            },
        )
        bar.close(f"wrote {out_path} ({step} steps, {images_seen} images, {_duration(wall)})")
    if on_end is not None:
        on_end(model, rank)
    if dist_info.enabled:
        import torch.distributed as dist

        dist.barrier()
    return out_path


# --------------------------------------------------------------------------- metrics plot


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (blank or truncated last lines ignored)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


#: The colour of each of the LOSS_TERMS in the plot; terms that stay 0 are not drawn.
_SERIES = tuple(
    zip(
        LOSS_TERMS,
        (
            (31, 119, 180),
            (255, 127, 14),
            (44, 160, 44),
            (214, 39, 40),
            (148, 103, 189),
            (140, 86, 75),
            (227, 119, 194),
        ),
        strict=True,
    )
)
_LEGEND_ENTRY_W, _LEGEND_ROW_H = 130, 14


def plot_metrics(
    jsonl: str | os.PathLike[str],
    png: str | os.PathLike[str],
    size: tuple[int, int] = (800, 480),
) -> Path:
    """Draw the loss curves of ``metrics.jsonl`` (the total and each term that is not always 0)
    against the step into a PNG (Pillow only), written atomically."""
    from PIL import Image, ImageDraw

    from c2e_core.files.atomic import atomic_file

    records = [r for r in read_metrics(jsonl) if "step" in r]
    if not records:
        raise TrainingError(f"{jsonl}: no metrics to plot")
    width, height = size
    steps = [float(r["step"]) for r in records]
    series = [
        (name, colour, [(float(r["step"]), float(r[name])) for r in records if name in r])
        for name, colour in _SERIES
    ]
    series = [(n, c, pts) for n, c, pts in series if pts and any(v != 0 for _, v in pts)]
    per_row = max(1, (width - 80) // _LEGEND_ENTRY_W)
    legend_rows = max(1, -(-len(series) // per_row))
    left, right, top, bottom = 70, 20, 16 + _LEGEND_ROW_H * legend_rows, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [v for _, _, pts in series for _, v in pts if math.isfinite(v)] or [0.0, 1.0]
    x0, x1 = min(steps), max(steps)
    y0, y1 = min(0.0, min(values)), max(values)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    plot_w, plot_h = width - left - right, height - top - bottom

    def xy(x: float, y: float) -> tuple[float, float]:
        return (left + (x - x0) / (x1 - x0) * plot_w, top + (1 - (y - y0) / (y1 - y0)) * plot_h)

    draw.rectangle([left, top, width - right, height - bottom], outline=(0, 0, 0))
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        _, py = xy(x0, y)
        draw.line([left, py, width - right, py], fill=(225, 225, 225))
        draw.text((5, py - 6), f"{y:.4g}", fill=(0, 0, 0))
        x = x0 + (x1 - x0) * i / 4
        px, _ = xy(x, y0)
        draw.text((px - 10, height - bottom + 6), f"{int(x)}", fill=(0, 0, 0))
    draw.text((width // 2 - 10, height - 16), "step", fill=(0, 0, 0))
    for index, (name, colour, pts) in enumerate(series):
        points = [xy(x, y) for x, y in pts if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        elif points:
            px, py = points[0]
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        row, column = divmod(index, per_row)
        lx, ly = left + 10 + _LEGEND_ENTRY_W * column, 10 + _LEGEND_ROW_H * row
        draw.line([lx, ly, lx + 20, ly], fill=colour, width=3)
        draw.text((lx + 25, ly - 6), name, fill=(0, 0, 0))
    png = Path(png)
    with atomic_file(png) as handle:
        image.save(handle, format="PNG")
    return png
