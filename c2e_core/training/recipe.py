"""Training recipes: TOML files read into frozen dataclasses.

A recipe has the sections ``[model]``, ``[data]``, ``[reference]``, ``[optim]``, ``[loss]``,
``[init]`` and ``[run]``; every key is optional (defaults are the authors' settings where they
exist). Unknown sections or keys are an error naming the key and the file. Relative paths are
resolved against the folder of the recipe file.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from c2e_core.data.folder import CropRecipe
from c2e_core.data.reference import ReferenceRecipe
from c2e_core.errors import RecipeError
from c2e_core.training.losses import PERCEPTUAL_BACKENDS
from c2e_core.weights.build import CorrConfig, ModelConfig, preset_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "RecipeError",
    "ModelSection",
    "DataSection",
    "OptimSection",
    "LossSection",
    "InitSection",
    "RunSection",
    "TrainRecipe",
    "load_recipe",
    "recipe_from_dict",
]

PRECISIONS = ("bf16", "fp32")
INIT_KINDS = ("scratch", "official", "weights")
LR_SCHEDULES = ("constant", "cosine")


def _check_keys(table: Mapping[str, Any], known: set[str], where: str, source: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise RecipeError(
            f"{source}: unknown key '{where}.{unknown[0]}' (known: {', '.join(sorted(known))})"
        )


def _int(value: Any, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _float(value: Any, name: str, low: float = 0.0, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}")
    return float(value)


def _path(value: Any, name: str, base: Path | None) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value):
        raise ValueError(f"{name} must be a path string, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(os.path.normpath(base / path))
    return path


@dataclass(frozen=True)
class ModelSection:
    """``preset`` (a registered preset name, see :func:`c2e_core.weights.build.preset_config`) plus
    overrides of that preset's configuration fields."""

    preset: str = "paper"
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> ModelConfig | CorrConfig:
        """The resulting configuration (:class:`ModelConfig` or :class:`CorrConfig`)."""
        base = preset_config(self.preset)
        return type(base).from_dict({**base.to_dict(), **self.overrides})

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, **self.overrides}


@dataclass(frozen=True)
class DataSection:
    """Training images: ``folder`` (any tree of images), crops, loader workers and seed."""

    folder: Path | None = None
    crop: CropRecipe = field(default_factory=CropRecipe)
    workers: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        _int(self.workers, "data.workers")
        _int(self.seed, "data.seed")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"folder": None if self.folder is None else str(self.folder)}
        out.update(self.crop.to_dict())
        out.update(workers=self.workers, seed=self.seed)
        return out


@dataclass(frozen=True)
class OptimSection:
    """Adam (``lr``, ``betas``), global ``batch`` (split over ranks), ``steps``, optional
    gradient-norm clipping and EMA of the weights (``ema_decay``; None = off).

    ``schedule``: ``constant`` (the authors') or ``cosine`` (decay to 0 at ``steps``), either
    after a linear warm-up of ``warmup_steps``.
    """

    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    batch: int = 64
    steps: int = 45000
    grad_clip: float | None = None
    ema_decay: float | None = None
    schedule: str = "constant"
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        _float(self.lr, "optim.lr", 0.0, 10.0)
        betas = tuple(self.betas)
        if len(betas) != 2:
            raise ValueError(f"optim.betas must be two numbers, got {list(betas)}")
        object.__setattr__(
            self, "betas", tuple(_float(b, "optim.betas", 0.0, 0.999999) for b in betas)
        )
        _int(self.batch, "optim.batch", 1)
        _int(self.steps, "optim.steps", 1)
        if self.grad_clip is not None:
            _float(self.grad_clip, "optim.grad_clip", 1e-12)
        if self.ema_decay is not None:
            _float(self.ema_decay, "optim.ema_decay", 0.0, 0.999999999)
        if self.schedule not in LR_SCHEDULES:
            raise ValueError(
                f"optim.schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.schedule!r}"
            )
        _int(self.warmup_steps, "optim.warmup_steps")

    def learning_rate(self, step: int) -> float:
        """The learning rate for optimisation step ``step`` (0-based); a function of the step
        alone, so a resumed run follows the same schedule."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "cosine":
            span = max(self.steps - self.warmup_steps, 1)
            progress = min((step - self.warmup_steps) / span, 1.0)
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.lr

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["betas"] = list(self.betas)
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class LossSection:
    """``reconstruction`` weight of the smooth-L1 on ab, ``perceptual`` backend and its
    ``perceptual_weight``; ``vgg19_weights`` / ``effnet_weights``: weight files (None: the
    default locations); ``histogram``: weight of the soft ab-histogram loss (0: off, the
    authors' setting); ``cross_histogram``: weight of the same loss between the colours
    predicted from another photo's reference and that photo's colours (0: off; it costs a
    second forward pass of the batch); ``histogram_bins``: bins per axis of both (2 or more
    over a, b in [-110, 110]); ``chroma``: weight of the difference in mean chroma between
    each prediction and the colours it should have (0: off); ``cross_smoothness``: weight of
    the edge-aware smoothness of the colours predicted from another photo's reference (0: off;
    it also runs the second pass): against patches where the reference matches nothing."""

    reconstruction: float = 1.0
    perceptual: str = "vgg19"
    perceptual_weight: float = 1.0
    histogram: float = 0.0
    cross_histogram: float = 0.0
    histogram_bins: int = 16
    chroma: float = 0.0
    cross_smoothness: float = 0.0
    vgg19_weights: Path | None = None
    effnet_weights: Path | None = None

    def __post_init__(self) -> None:
        _float(self.reconstruction, "loss.reconstruction")
        _float(self.perceptual_weight, "loss.perceptual_weight")
        _float(self.histogram, "loss.histogram")
        _float(self.cross_histogram, "loss.cross_histogram")
        _int(self.histogram_bins, "loss.histogram_bins", 2)
        _float(self.chroma, "loss.chroma")
        _float(self.cross_smoothness, "loss.cross_smoothness")
        if self.perceptual not in PERCEPTUAL_BACKENDS:
            raise ValueError(
                f"loss.perceptual must be one of {', '.join(PERCEPTUAL_BACKENDS)}, "
                f"got {self.perceptual!r}"
            )

    @property
    def weights_path(self) -> Path | None:
        """The weights file of the chosen perceptual backend (None: default location)."""
        return {"vgg19": self.vgg19_weights, "effnet-lite0": self.effnet_weights}.get(
            self.perceptual
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class InitSection:
    """Where the weights start: ``scratch``, ``official`` (the authors' checkpoint, for
    fine-tuning) or ``weights`` (a c2e weights file); ``path`` for the last two."""

    kind: str = "scratch"
    path: Path | None = None
    #: Start the colour encoder's backbone from ImageNet weights (``effnet-lite0`` only).
    pretrained_backbone: bool = False

    def __post_init__(self) -> None:
        if self.kind not in INIT_KINDS:
            raise ValueError("init.from must be scratch, official:PATH or weights:PATH")
        if (self.kind == "scratch") != (self.path is None):
            raise ValueError("init.from: official and weights need a PATH, scratch takes none")
        if self.pretrained_backbone and self.kind != "scratch":
            raise ValueError("init.pretrained_backbone applies to init.from = \"scratch\" only")

    def to_dict(self) -> dict[str, Any]:
        spec = self.kind if self.path is None else f"{self.kind}:{self.path}"
        return {"from": spec, "pretrained_backbone": self.pretrained_backbone}


@dataclass(frozen=True)
class RunSection:
    """Output folder, checkpoint/log cadence, device and precision.

    ``precision="bf16"`` and ``channels_last`` apply on CUDA only (the CPU always runs fp32).
    """

    output: Path = Path("runs/train")
    checkpoint_every: int = 1000
    keep_last: int = 3
    log_every: int = 10
    device: str = "auto"
    precision: str = "bf16"
    channels_last: bool = True

    def __post_init__(self) -> None:
        _int(self.checkpoint_every, "run.checkpoint_every", 0)
        _int(self.keep_last, "run.keep_last", 1)
        _int(self.log_every, "run.log_every", 1)
        if not isinstance(self.device, str):
            raise ValueError(f"run.device must be a string, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"run.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if not isinstance(self.channels_last, bool):
            raise ValueError(f"run.channels_last must be true or false, got {self.channels_last!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["output"] = str(self.output)
        return out


@dataclass(frozen=True)
class TrainRecipe:
    """A whole training recipe; ``source`` is the file it was read from (if any)."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    reference: ReferenceRecipe = field(default_factory=ReferenceRecipe)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    init: InitSection = field(default_factory=InitSection)
    run: RunSection = field(default_factory=RunSection)
    source: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/TOML values, paths as resolved strings (stored in checkpoints/weights)."""
        return {
            "model": self.model.to_dict(),
            "data": self.data.to_dict(),
            "reference": self.reference.to_dict(),
            "optim": self.optim.to_dict(),
            "loss": self.loss.to_dict(),
            "init": self.init.to_dict(),
            "run": self.run.to_dict(),
        }

    def with_overrides(
        self,
        *,
        data: Path | None = None,
        steps: int | None = None,
        output: Path | None = None,
    ) -> TrainRecipe:
        """A copy with the command-line overrides applied."""
        recipe = self
        if data is not None:
            recipe = replace(recipe, data=replace(recipe.data, folder=Path(data)))
        if steps is not None:
            try:
                recipe = replace(recipe, optim=replace(recipe.optim, steps=steps))
            except ValueError as exc:
                raise RecipeError(f"--steps: {exc}") from None
        if output is not None:
            recipe = replace(recipe, run=replace(recipe.run, output=Path(output)))
        return recipe


_SECTIONS = ("model", "data", "reference", "optim", "loss", "init", "run")


def _section(raw: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, Mapping):
        raise RecipeError(f"{source}: '{name}' must be a table ([{name}])")
    return dict(table)


def recipe_from_dict(
    raw: Mapping[str, Any], base: Path | None = None, source: str = "<recipe>"
) -> TrainRecipe:
    """Build a recipe from parsed TOML; relative paths resolve against ``base``."""
    _check_keys(raw, set(_SECTIONS), "<top>", source)
    where = "model"
    try:
        model_t = _section(raw, "model", source)
        preset = model_t.pop("preset", "paper")
        config_keys = {f.name for f in fields(type(preset_config(preset)))}
        _check_keys(model_t, config_keys, "model", source)
        model = ModelSection(preset, model_t)
        model.config()  # validate now

        where = "data"
        data_t = _section(raw, "data", source)
        crop_keys = {f.name for f in fields(CropRecipe)}
        _check_keys(data_t, crop_keys | {"folder", "workers", "seed"}, "data", source)
        crop = CropRecipe.from_dict({k: v for k, v in data_t.items() if k in crop_keys})
        data = DataSection(
            folder=_path(data_t.get("folder"), "data.folder", base),
            crop=crop,
            workers=data_t.get("workers", 4),
            seed=data_t.get("seed", 0),
        )

        where = "reference"
        ref_t = _section(raw, "reference", source)
        _check_keys(ref_t, {f.name for f in fields(ReferenceRecipe)}, "reference", source)
        reference = ReferenceRecipe.from_dict(
            {k: tuple(v) if isinstance(v, list) else v for k, v in ref_t.items()}
        )

        where = "optim"
        optim_t = _section(raw, "optim", source)
        _check_keys(optim_t, {f.name for f in fields(OptimSection)}, "optim", source)
        if "betas" in optim_t:
            optim_t["betas"] = tuple(optim_t["betas"])
        optim = OptimSection(**optim_t)

        where = "loss"
        loss_t = _section(raw, "loss", source)
        _check_keys(loss_t, {f.name for f in fields(LossSection)}, "loss", source)
        for key in ("vgg19_weights", "effnet_weights"):
            if key in loss_t:
                loss_t[key] = _path(loss_t[key], f"loss.{key}", base)
        loss = LossSection(**loss_t)

        where = "init"
        init_t = _section(raw, "init", source)
        _check_keys(init_t, {"from", "pretrained_backbone"}, "init", source)
        spec = init_t.get("from", "scratch")
        if not isinstance(spec, str):
            raise ValueError(f"init.from must be a string, got {spec!r}")
        kind, _, rest = spec.partition(":")
        pretrained = init_t.get("pretrained_backbone", False)
        if not isinstance(pretrained, bool):
            raise ValueError(f"init.pretrained_backbone must be true or false, got {pretrained!r}")
        init = InitSection(kind, _path(rest, "init.from", base) if rest else None, pretrained)

        where = "run"
        run_t = _section(raw, "run", source)
        _check_keys(run_t, {f.name for f in fields(RunSection)}, "run", source)
        if "output" in run_t:
            run_t["output"] = _path(run_t["output"], "run.output", base)
        run = RunSection(**run_t)
    except RecipeError:
        raise
    except (TypeError, ValueError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RecipeError(f"{source}: [{where}] {message}") from None
    return TrainRecipe(model, data, reference, optim, loss, init, run)


def load_recipe(path: str | Path) -> TrainRecipe:
    """Read a TOML recipe; :class:`RecipeError` for a missing file, bad TOML or a bad value."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RecipeError(f"recipe '{path}' not found")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from None
    recipe = recipe_from_dict(raw, base=path.resolve().parent, source=str(path))
    return replace(recipe, source=path.resolve())
