"""Training throughput: the template (Lightning, default callbacks + logger) vs a hand-written loop.

Both sides train the same network (the template's feature standardization + MLP backbone), on the
same in-memory training split, with the same batch size, AdamW settings and class-weighted cross
entropy, for the same number of epochs, and both run one validation pass per epoch. The template
side is `imbalanced.tasks.train`'s datamodule/model/trainer exactly as `python train.py` builds them
(ModelCheckpoint best+last, TQDM progress bar, CSV logger); only the run directory is a temp dir.

Throughput = training samples / time of one epoch (its training steps and its validation pass),
timed per epoch; the first epoch of each fit (first-call costs) is left out, and the Trainer's setup
is measured by `startup.py`. The variants alternate within one process, `--repeats` times, and the
medians over all their epochs are compared (per-epoch medians shrug off the bursts of a noisy VM).

    python benchmarks/throughput.py                          # default synthetic workload
    python benchmarks/throughput.py --workload large          # a 3x1024 MLP
    python benchmarks/throughput.py --accelerator gpu --precision bf16-mixed --on-device
    python benchmarks/throughput.py --profile                 # cProfile of one template fit
    python benchmarks/throughput.py --overhead                # where the per-step gap comes from
    python benchmarks/throughput.py --backends                # + the dataloader data backend
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

WORKLOADS = {
    # the defaults of configs/data/synthetic.yaml and configs/model/mlp.yaml
    "default": {"overrides": [], "epochs": 10},
    # the default workload with an 8-unit MLP: almost no compute, so a step is nearly all overhead
    "tiny": {"overrides": ["model.backbone.hidden_sizes=[8,8]"], "epochs": 10},
    "large": {
        "overrides": ["model.backbone.hidden_sizes=[1024,1024,1024]", "data.n_features=64"],
        "epochs": 2,
    },
}


def compose(overrides: list[str], run_dir: str):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return hydra_compose("train", overrides=[*overrides, f"paths.output_dir={run_dir}"])


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


# Template variants for `--breakdown`: what each default piece costs (Hydra overrides on the template).
BREAKDOWN = {
    "no_checkpoint": ["~callbacks.model_checkpoint", "+trainer.enable_checkpointing=false"],
    "no_progress_bar": ["~callbacks.progress_bar", "+trainer.enable_progress_bar=false"],
    "no_logger": ["~logger"],
    "no_callbacks_logger": [
        "~callbacks",
        "+trainer.enable_checkpointing=false",
        "+trainer.enable_progress_bar=false",
        "~logger",
    ],
    # the optimizer before fused AdamW became the default (the hand loop keeps the configured one)
    "adamw_unfused": ["optimizer.fused=false"],
}

# `--backends`: the same template on the standard-DataLoader backend (per-sample __getitem__ + collate),
# in the training process and with 2 persistent worker processes.
BACKENDS = {
    "dataloader": ["data.backend=dataloader"],
    "dataloader_2workers": ["data.backend=dataloader", "data.num_workers=2", "data.persistent_workers=true"],
}
VARIANT_OVERRIDES = {**BREAKDOWN, **BACKENDS}


def _per_step_logging(model) -> None:
    """The earlier module: `self.log(on_step, on_epoch, prog_bar)` on every training step."""
    step = model.training_step

    def training_step(batch, batch_idx):
        loss = step(batch, batch_idx)
        model.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    model.training_step = training_step


def _manual_optimization(model) -> None:
    """What manual optimization would buy: `training_step` runs zero_grad/backward/step itself."""
    model.automatic_optimization = False
    step = model.training_step

    def training_step(batch, batch_idx):
        optimizer = model.optimizers()
        loss = step(batch, batch_idx)
        optimizer.zero_grad(set_to_none=True)
        model.manual_backward(loss)
        optimizer.step()

    model.training_step = training_step


def run_template(
    cfg, barebones: bool = False, profiler=None, per_step_log: bool = False, manual: bool = False
) -> dict:
    """Fit as train.py does; returns the samples/s of each epoch (see `_epoch_throughputs`)."""
    import lightning as L

    from imbalanced.from_config import build_datamodule, build_model, build_trainer
    from imbalanced.runs.runtime import apply_runtime_settings

    apply_runtime_settings(cfg)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    model = build_model(cfg, datamodule)
    if per_step_log:
        _per_step_logging(model)
    if manual:
        _manual_optimization(model)
    if barebones:
        trainer = L.Trainer(
            barebones=True,
            max_epochs=cfg.trainer.max_epochs,
            accelerator=cfg.trainer.accelerator,
            devices=1,
            precision=cfg.trainer.precision,
            num_sanity_val_steps=0,
            use_distributed_sampler=False,
        )
    else:
        trainer = build_trainer(cfg)

    class Timer(L.Callback):
        def __init__(self) -> None:
            self.marks: list[tuple[float, float]] = []  # (wall, cpu) at each epoch start and the end

        def on_train_epoch_start(self, trainer, *args) -> None:
            self._mark(trainer)
            if profiler is not None and len(self.marks) == 1:
                profiler.enable()

        def on_train_end(self, trainer, *args) -> None:
            self._mark(trainer)
            if profiler is not None:
                profiler.disable()

        def _mark(self, trainer) -> None:
            _sync(trainer.strategy.root_device)
            self.marks.append((time.perf_counter(), time.process_time()))

    timer = Timer()
    trainer.callbacks.append(timer)
    trainer.fit(model, datamodule=datamodule)
    return _epoch_throughputs(len(datamodule.splits.y_train), timer.marks)


def _epoch_throughputs(samples: int, marks: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Samples/s of each epoch (training and its validation pass) from the marks at every epoch
    start and at the end; the first epoch (first-call costs) is left out when there are others."""
    epochs = list(zip(marks, marks[1:], strict=False))
    if len(epochs) > 1:
        epochs = epochs[1:]
    return {
        "wall": [samples / (end[0] - start[0]) for start, end in epochs],
        "cpu": [samples / (end[1] - start[1]) for start, end in epochs],
    }


def run_hand_loop(cfg, device_name: str, bf16: bool, profiler=None, unfused: bool = False) -> dict:
    """The baseline: tensors in memory, randperm + slicing, plain PyTorch, one val pass per epoch."""
    import lightning as L
    import torch
    import torch.nn.functional as F
    from hydra.utils import instantiate

    from imbalanced.from_config import build_datamodule
    from imbalanced.runs.runtime import apply_runtime_settings

    apply_runtime_settings(cfg)
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    device = torch.device(device_name)
    splits = datamodule.splits
    x = torch.as_tensor(splits.x_train, device=device)
    y = torch.as_tensor(splits.y_train, device=device)
    x_val = torch.as_tensor(splits.x_val, device=device)
    y_val = torch.as_tensor(splits.y_val, device=device)
    mean = torch.as_tensor(datamodule.feature_mean, dtype=torch.float32, device=device)
    scale = torch.as_tensor(datamodule.feature_scale, dtype=torch.float32, device=device)
    weight = torch.as_tensor(datamodule.class_weights, dtype=torch.float32, device=device)
    model = instantiate(cfg.model.backbone, in_features=x.shape[1], num_classes=datamodule.num_classes).to(
        device
    )
    settings = {k: v for k, v in cfg.optimizer.items() if not k.startswith("_")}  # the AdamW config
    settings.update({"fused": None} if unfused else {})
    optimizer = torch.optim.AdamW(model.parameters(), **settings)
    batch, epochs, n = int(cfg.data.batch_size), int(cfg.trainer.max_epochs), len(y)
    generator = torch.Generator().manual_seed(cfg.seed)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    marks: list[tuple[float, float]] = []
    if profiler is not None:
        profiler.enable()
    for _epoch in range(epochs):
        _sync(device)
        marks.append((time.perf_counter(), time.process_time()))
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        for i in range(0, n, batch):
            index = order[i : i + batch]
            with autocast:
                logits = model((x[index] - mean) / scale)
            loss = F.cross_entropy(logits.float(), y[index], weight=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), autocast:
            predicted = model((x_val - mean) / scale).argmax(-1)
        recall = torch.bincount(y_val[predicted == y_val], minlength=datamodule.num_classes) / torch.bincount(
            y_val, minlength=datamodule.num_classes
        )
        recall.mean().item()  # balanced accuracy, read once per epoch like a logged metric
    _sync(device)
    marks.append((time.perf_counter(), time.process_time()))
    if profiler is not None:
        profiler.disable()
    return _epoch_throughputs(n, marks)


def overhead_table(run_dir: str, base_overrides: list[str], repeats: int) -> None:
    """ms per training step (256 samples, CPU time) of each layer, on a tiny and the default MLP.

    On the tiny MLP a step is nearly all fixed cost, so the differences there are the Python each
    layer adds; on the default MLP the same layers cost more, because the torch kernels run slower
    when Python work between them has pushed the weights and activations out of the CPU caches."""
    variants = ["hand_loop", "barebones", "manual", "template"]
    table: dict[str, dict[str, float]] = {}
    for workload in ("tiny", "default"):
        overrides = [*WORKLOADS[workload]["overrides"], *base_overrides]
        cfg = compose(overrides, run_dir)
        batch = int(cfg.data.batch_size)
        times: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(repeats):
            for variant in variants:
                if variant == "hand_loop":
                    result = run_hand_loop(cfg, "cpu", False)
                else:
                    result = run_template(
                        cfg, barebones=variant in ("barebones", "manual"), manual=variant == "manual"
                    )
                times[variant] += [1e3 * batch / value for value in result["cpu"]]
        table[workload] = {v: statistics.median(t) for v, t in times.items()}
    print(
        "ms per training step of 256 samples (CPU time, per-epoch validation included; medians of "
        f"{repeats} interleaved fits, per-epoch)"
    )
    print(f"  {'':48s} {'tiny MLP':>9} {'default':>9}")
    rows = [
        ("hand-written loop", lambda t: t["hand_loop"]),
        ("+ Lightning automatic optimization (barebones)", lambda t: t["barebones"] - t["hand_loop"]),
        ("+ template callbacks, logger, checkpoints", lambda t: t["template"] - t["barebones"]),
        ("= template", lambda t: t["template"]),
        ("Lightning manual optimization (barebones)", lambda t: t["manual"] - t["hand_loop"]),
    ]
    for name, value in rows:
        print(f"  {name:48s} {value(table['tiny']):9.2f} {value(table['default']):9.2f}")
    for workload, t in table.items():
        hand = t["hand_loop"]
        print(
            f"  ratio to the hand loop, {workload} MLP: template {hand / t['template']:.3f}, barebones "
            f"{hand / t['barebones']:.3f}, barebones with manual optimization {hand / t['manual']:.3f}"
        )


def profile_template(cfg, top: int, device: str, bf16: bool) -> None:
    """cProfile of the training epochs only (first batch to train end), after a warm-up fit, then
    the same for the hand loop; prints the top functions and the own time per group for both."""
    import cProfile
    import pstats

    run_template(cfg)  # warm-up: imports, first-call costs
    profiler = cProfile.Profile()
    result = run_template(cfg, profiler=profiler)
    print(f"template: {statistics.median(result['wall']):,.0f} samples/s (wall) under cProfile")
    stats = pstats.Stats(profiler)
    for order in ("tottime", "cumulative"):
        stats.sort_stats(order).print_stats(top)
    hand = cProfile.Profile()
    run_hand_loop(cfg, device, bf16, profiler=hand)
    tables = {"template": _by_group(stats), "hand loop": _by_group(pstats.Stats(hand))}
    print("own time by group, seconds under cProfile (it inflates Python-heavy groups):")
    print(f"  {'group':58s} {'template':>9} {'hand loop':>9} {'gap':>7}")
    names = sorted(
        set(tables["template"]) | set(tables["hand loop"]), key=lambda g: -tables["template"].get(g, 0)
    )
    for group in [*names, "total"]:
        t, h = tables["template"].get(group, 0.0), tables["hand loop"].get(group, 0.0)
        if group == "total":
            t, h = sum(tables["template"].values()), sum(tables["hand loop"].values())
        print(f"  {group:58s} {t:9.3f} {h:9.3f} {t - h:7.3f}")


def _by_group(stats) -> dict[str, float]:
    groups: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():
        group = _group(filename, name)
        groups[group] = groups.get(group, 0.0) + tottime
    return groups


def _group(filename: str, name: str) -> str:
    if filename == "~":  # built-ins: torch kernels and Python C functions
        return "torch kernels (C++ ops, autograd engine)" if "torch" in name else "Python built-ins"
    for marker, group in (
        ("lightning_utilities", "Lightning (loop, hooks, logging, data fetch)"),
        ("lightning/pytorch/callbacks", "Lightning callbacks (checkpoint, progress bar)"),
        ("lightning/pytorch/loggers", "Lightning loggers (CSV)"),
        ("lightning", "Lightning (loop, hooks, logging, data fetch)"),
        ("torchmetrics", "torchmetrics (validation metrics)"),
        ("torch/optim", "torch.optim (Python side of AdamW)"),
        ("torch/", "torch Python (nn.Module calls, autograd glue, DataLoader)"),
        ("tqdm", "tqdm"),
        ("imbalanced", "the template's own code"),
        ("benchmarks", "benchmark timer"),
    ):
        if marker in filename:
            return group
    return "Python stdlib (contextlib, logging, copy, ...)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=sorted(WORKLOADS), default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--accelerator", default="cpu", choices=["cpu", "gpu"])
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--on-device", action="store_true", help="data.on_device=true (GPU only)")
    parser.add_argument("--compile", action="store_true", help="model.compile=true")
    parser.add_argument("--barebones", action="store_true", help="also time Trainer(barebones=True)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads for both sides (1: stable on a busy shared machine)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the hand loop with torch's default (unfused) AdamW, the template "
        "with per-step logging (the earlier module), with unfused AdamW, and without the "
        "checkpoint callback, progress bar, logger, or all three",
    )
    parser.add_argument(
        "--backends",
        action="store_true",
        help="also time the template on data.backend=dataloader, without and with 2 workers",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one template fit and exit")
    parser.add_argument(
        "--overhead",
        action="store_true",
        help="ms per step of each layer (Lightning loop, template extras) on a tiny and "
        "the default MLP; then exit",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. data.batch_size=1024")
    args = parser.parse_args()

    import torch

    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("--accelerator gpu needs a CUDA GPU, and torch sees none here")
    if args.threads:
        torch.set_num_threads(args.threads)
    workload = WORKLOADS[args.workload]
    epochs = args.epochs or workload["epochs"]
    overrides = [
        *workload["overrides"],
        f"trainer.max_epochs={epochs}",
        f"trainer.accelerator={args.accelerator}",
        f"trainer.precision={args.precision}",
        f"data.on_device={str(args.on_device).lower()}",
        f"model.compile={str(args.compile).lower()}",
        *args.overrides,
    ]
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    bf16 = args.precision.startswith("bf16")
    with tempfile.TemporaryDirectory() as run_dir:
        cfg = compose(overrides, run_dir)
        if args.profile:
            profile_template(cfg, top=40, device=device, bf16=bf16)
            return
        if args.overhead:
            base = [o for o in overrides if o not in workload["overrides"]]
            overhead_table(run_dir, base, args.repeats)
            return
        variants = ["hand_loop", "template"] + (["barebones"] if args.barebones else [])
        if args.breakdown:
            # the hand loop as usually written: torch.optim.AdamW with its defaults (not fused)
            variants += ["hand_loop_unfused", "per_step_log", *BREAKDOWN]
        if args.backends:
            variants += list(BACKENDS)
        results: dict[str, dict[str, list[float]]] = {v: {"wall": [], "cpu": []} for v in variants}
        # composed once per variant, not per repeat
        configs = {
            v: compose([*overrides, *VARIANT_OVERRIDES[v]], run_dir) if v in VARIANT_OVERRIDES else cfg
            for v in variants
        }
        for _ in range(args.repeats):
            for variant in variants:
                if variant.startswith("hand_loop"):
                    result = run_hand_loop(cfg, device, bf16, unfused=variant == "hand_loop_unfused")
                else:
                    result = run_template(
                        configs[variant],
                        barebones=variant == "barebones",
                        per_step_log=variant == "per_step_log",
                    )
                for clock in ("wall", "cpu"):
                    results[variant][clock] += result[clock]

    print(
        f"workload={args.workload} epochs={epochs} accelerator={args.accelerator} "
        f"precision={args.precision} on_device={args.on_device} compile={args.compile} "
        f"torch={torch.__version__} threads={torch.get_num_threads()} overrides={args.overrides}"
    )
    print(
        "throughput = training samples / epoch time (training steps + validation + checkpointing), "
        "median over epochs 2.. of every fit; cpu = process CPU time (robust to other processes on "
        "a shared machine), wall = wall-clock time"
    )
    medians = {v: {c: statistics.median(r[c]) for c in r} for v, r in results.items()}
    for variant, clocks in results.items():
        for clock, values in clocks.items():
            median = medians[variant][clock]
            print(
                f"  {variant:19s} {clock:4s} median {median:>8,.0f} samples/s   ({len(values)} epochs, "
                f"{min(values):,.0f} to {max(values):,.0f})"
            )
    ratios = {
        f"{variant}/hand_loop ({clock})": medians[variant][clock] / medians["hand_loop"][clock]
        for variant in variants[1:]
        for clock in ("cpu", "wall")
    }
    if "hand_loop_unfused" in medians:
        ratios.update(
            {
                f"template/hand_loop_unfused ({clock})": medians["template"][clock]
                / medians["hand_loop_unfused"][clock]
                for clock in ("cpu", "wall")
            }
        )
    for name, ratio in ratios.items():
        print(f"  ratio {name}: {ratio:.3f}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "runs": results,
                    "medians": medians,
                    "ratios": ratios,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
