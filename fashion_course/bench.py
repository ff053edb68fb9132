"""The measurements behind the README's results table, side by side in one run.

    python -m fashion_course bench            # the full run (minutes): benchmarks/results-cpu.{json,md}
    python -m fashion_course bench --smoke    # a CI-sized run (seconds) with the same keys

1. data only, one epoch: torchvision ``FashionMNIST`` + ``ToTensor`` through a ``DataLoader`` against
   the in-memory path (07_cnn); 2. time to accuracy per epoch of the recipes (05, 07); 3. inference
   latency of PyTorch eager against onnxruntime, with logit parity (06, 07); 4. the machine.
Wall-clock seconds are what a learner waits; CPU seconds are reported beside them because on a
shared machine the wall clock also counts other people's work.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

__all__ = ["run_bench", "machine_info", "Autocast", "fast_path"]

THRESHOLDS = (0.90, 0.93, 0.94, 0.945)


def fast_path(device: torch.device, recipe) -> bool:
    """Whether a recipe trains with bfloat16 autocast (``Autocast``) on ``device``.

    Only a CNN on a CUDA GPU: tensor cores make bfloat16 convolutions several times faster there,
    while on a CPU autocast adds conversions for little gain, and the MLP is too small to profit.
    """
    return torch.device(device).type == "cuda" and recipe.model == "cnn"


class Autocast(nn.Module):
    """Run a model under bfloat16 autocast (mixed precision) and return float32 logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine_info(device: torch.device) -> dict:
    """CPU model and threads, GPU name, library versions: what the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{lib: _version(lib) for lib in ("torch", "torchvision", "numpy", "onnx", "onnxruntime")},
    }


def _time_epoch(loader, max_batches: int | None) -> tuple[float, int]:
    """Seconds to draw the batches of one epoch (or the first ``max_batches``), and samples seen."""
    start, seen = time.perf_counter(), 0
    for i, (X, _) in enumerate(loader):
        seen += len(X)
        if max_batches is not None and i + 1 >= max_batches:
            break
    return time.perf_counter() - start, seen


def bench_data(*, root=None, smoke: bool = False, workers=(1, 2)) -> dict:
    """One data-only epoch: torchvision + ToTensor + DataLoader (batch 64) against in memory."""
    from torch.utils.data import DataLoader

    from .data import fashion_mnist, load_tensors
    from .loaders import InMemoryLoader

    limit = 10 if smoke else None
    dataset = fashion_mnist(True, root=root)  # ToTensor: a 1x28x28 float image in [0, 1]
    rows = {}
    for num_workers in (0, *workers):
        loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=num_workers)
        seconds, seen = _time_epoch(loader, limit)
        rows[f"dataloader_workers_{num_workers}"] = {"seconds": seconds, "samples": seen}
    start = time.perf_counter()
    images, labels = load_tensors(True, root=root)
    loader = InMemoryLoader(images, labels, batch_size=64, shuffle=True)  # normalised once, here
    setup = time.perf_counter() - start
    seconds, seen = _time_epoch(loader, limit)
    rows["in_memory"] = {"seconds": seconds, "samples": seen, "setup_seconds": setup}
    for row in rows.values():
        row["samples_per_second"] = row["samples"] / row["seconds"]
    best = max((k for k in rows if k != "in_memory"), key=lambda k: rows[k]["samples_per_second"])
    speed = rows["in_memory"]["samples_per_second"]
    return {
        "batch_size": 64,
        "full_epoch": limit is None,
        "loaders": rows,
        "best_dataloader": best,
        "speedup_vs_workers_0": speed / rows["dataloader_workers_0"]["samples_per_second"],
        "speedup_vs_best_dataloader": speed / rows[best]["samples_per_second"],
    }


def train_timed(recipe, *, device, data, epochs=None, seed=0, fast=False, log=None):
    """``train_recipe`` with CPU time recorded beside wall time; ``fast``: bf16 + channels_last.

    ``data`` is ``(train_images, train_labels, test_images, test_labels)`` so that a smoke run can
    pass a slice. Returns ``(model, epochs)`` with one dict per epoch.
    """
    from .loaders import InMemoryLoader
    from .training import _sync, augmentation, build_recipe_model, make_optimizer, test_loop, train_loop

    recipe = replace(recipe, epochs=epochs or recipe.epochs)
    norm = {} if recipe.normalize else {"mean": 0.0, "std": 1.0}  # the older recipe: raw pixels
    torch.manual_seed(seed)
    model = build_recipe_model(recipe).to(device)  # a CNN is channels_last already
    train = InMemoryLoader(
        data[0], data[1], batch_size=recipe.batch_size, shuffle=True, device=device,
        augment=augmentation(recipe),
        generator=torch.Generator().manual_seed(seed), **norm,
    )
    test = InMemoryLoader(data[2], data[3], batch_size=1000, device=device, **norm)
    optimizer, scheduler = make_optimizer(recipe, model, len(train))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    runner = Autocast(model) if fast else model
    rows, wall, cpu = [], 0.0, 0.0
    for epoch in range(1, recipe.epochs + 1):
        _sync(device)
        start, start_cpu = time.perf_counter(), time.process_time()
        train_loop(train, runner, loss_fn, optimizer, scheduler=scheduler)
        _sync(device)
        wall += time.perf_counter() - start
        cpu += time.process_time() - start_cpu
        _, accuracy = test_loop(test, runner, loss_fn)
        rows.append({"epoch": epoch, "test_accuracy": accuracy, "seconds": wall, "cpu_seconds": cpu})
        if log is not None:
            log(f"  epoch {epoch:2d}/{recipe.epochs}: test accuracy {accuracy:.2%} ({wall:.0f} s)")
    model.normalization = (train.mean, train.std)
    return model, rows, test


def bench_training(names, *, device, root=None, smoke=False, seed=0, log=None) -> dict:
    """Test accuracy and cumulative training seconds per epoch for each recipe."""
    from .data import load_tensors
    from .training import RECIPES, flip_tta_accuracy

    train, test = load_tensors(True, root=root), load_tensors(False, root=root)
    data = (*train, *test)
    if smoke:  # a slice of each split and one epoch: checks the machinery, not the accuracy
        data = (train[0][:512], train[1][:512], test[0][:500], test[1][:500])
    results, models = {}, {}
    for name in names:
        recipe = RECIPES[name]
        fast = fast_path(device, recipe)
        if log is not None:
            log(f"training {name}")
        model, rows, test_loader = train_timed(
            recipe, device=device, data=data, epochs=1 if smoke else None, seed=seed, fast=fast,
            log=log,
        )
        entry = {
            "recipe": asdict(replace(recipe, epochs=len(rows))),
            "mixed_precision_channels_last": fast,
            "epochs": rows,
            "test_accuracy": rows[-1]["test_accuracy"],
            "seconds": rows[-1]["seconds"],
            "cpu_seconds": rows[-1]["cpu_seconds"],
            "first_reached": {
                f"{t:.3f}": next(({"epoch": r["epoch"], "seconds": r["seconds"]} for r in rows
                                  if r["test_accuracy"] >= t), None)
                for t in THRESHOLDS
            },
        }
        if recipe.model == "cnn":
            entry["flip_tta_accuracy"] = flip_tta_accuracy(model, test_loader)
        results[name] = entry
        models[name] = model.eval()
    return results, models, data


def _median_seconds(fn, reps: int) -> float:
    for _ in range(max(3, reps // 10)):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _latency(model, session, x: torch.Tensor, reps: int) -> dict:
    """Median milliseconds of one eager forward and one onnxruntime run on the same batch."""
    feed = {session.get_inputs()[0].name: x.numpy()}

    def run_eager():
        with torch.inference_mode():
            model(x)

    t_eager = _median_seconds(run_eager, reps)
    t_ort = _median_seconds(lambda: session.run(None, feed), reps)
    return {"pytorch_ms": t_eager * 1e3, "onnxruntime_ms": t_ort * 1e3,
            "onnxruntime_speedup": t_eager / t_ort}


def bench_inference(models: dict, images, labels, *, smoke=False) -> dict:
    """Latency of PyTorch eager and onnxruntime (CPU) at batch 1 and 256, and their parity."""
    from .export import export_onnx, onnx_logits, onnx_session

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            model = model.cpu().eval()
            mean, std = model.normalization
            X = ((images.float() / 255 - mean) / std).unsqueeze(1)
            session = onnx_session(export_onnx(model, Path(tmp) / f"{name}.onnx"))
            with torch.inference_mode():
                eager = torch.cat([model(X[i : i + 1000]) for i in range(0, len(X), 1000)])
            ort = torch.cat([onnx_logits(session, X[i : i + 1000]) for i in range(0, len(X), 1000)])
            entry = {
                "max_abs_logit_difference": (eager - ort).abs().max().item(),
                "test_accuracy_pytorch": (eager.argmax(1) == labels).float().mean().item(),
                "test_accuracy_onnxruntime": (ort.argmax(1) == labels).float().mean().item(),
                "predictions_agree": bool((eager.argmax(1) == ort.argmax(1)).all()),
            }
            for batch in (1, 256):
                reps = 10 if smoke else (2000 if batch == 1 else 100)
                entry[f"batch_{batch}"] = _latency(model, session, X[:batch].contiguous(), reps)
            results[name] = entry
    return results


def to_markdown(result: dict) -> str:
    """The README's tables from a benchmark result."""
    m, d = result["machine"], result["data"]
    gpu = f", GPU {m['gpu']}" if m["gpu"] else ""
    lines = [
        f"Measured on {m['cpu']} ({m['logical_cpus']} logical CPUs, torch using "
        f"{m['torch_threads']} threads{gpu}); torch {m['torch']}, torchvision {m['torchvision']}, "
        f"onnxruntime {m['onnxruntime']}, Python {m['python']}. Load average at the start: "
        f"{', '.join(f'{x:.1f}' for x in m['load_average'] or [])}."
        + (" **Smoke run: tiny slices, not real numbers.**" if result["smoke"] else ""),
        "",
        "| data, one epoch (batch 64) | seconds | samples/s | vs in-memory |",
        "|---|---:|---:|---:|",
    ]
    fast = d["loaders"]["in_memory"]["samples_per_second"]
    for key, row in d["loaders"].items():
        label = key.replace("dataloader_workers_", "torchvision DataLoader, num_workers=")
        label = "in memory (`fc.InMemoryLoader`)" if key == "in_memory" else label
        lines.append(f"| {label} | {row['seconds']:.2f} | {row['samples_per_second']:,.0f} | "
                     f"{fast / row['samples_per_second']:.0f}x |")
    lines += ["", "| recipe | epochs | test accuracy | flip TTA | train seconds (wall) | CPU seconds "
              "| first epoch >= 93 % |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["training"].items():
        tta = f"{r['flip_tta_accuracy']:.2%}" if "flip_tta_accuracy" in r else "-"
        hit = r["first_reached"]["0.930"]
        hit = f"{hit['epoch']} ({hit['seconds']:.0f} s)" if hit else "-"
        lines.append(f"| {name} | {len(r['epochs'])} | {r['test_accuracy']:.2%} | {tta} | "
                     f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {hit} |")
    if result["inference"]:  # the mlp and cnn recipes, when the run trained them
        lines += ["", "| model | batch | PyTorch eager ms | onnxruntime ms | speed-up "
                  "| max abs logit diff | test acc PyTorch / ORT |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["inference"].items():
        for batch in (1, 256):
            b = r[f"batch_{batch}"]
            lines.append(
                f"| {name} | {batch} | {b['pytorch_ms']:.3f} | {b['onnxruntime_ms']:.3f} | "
                f"{b['onnxruntime_speedup']:.1f}x | {r['max_abs_logit_difference']:.1e} | "
                f"{r['test_accuracy_pytorch']:.2%} / {r['test_accuracy_onnxruntime']:.2%} |")
    lines += ["", f"Command: `{result['command']}` ({result['total_seconds']:.0f} s in all)", ""]
    return "\n".join(lines)


def run_bench(
    out, *, smoke=False, device="cpu", root=None, recipes=None, seed=0, command=None, log=None
) -> dict:
    """Run every measurement, write ``results-<device>[-smoke].json`` and ``.md``; return the result.

    ``log``, when given (the command line passes ``print``), receives a line per recipe and epoch.
    """
    from .export import atomic_path

    start = time.perf_counter()
    device = torch.device(device)
    from .training import RECIPES

    names = recipes or (["older", "mlp", "cnn"] if smoke else ["older", "mlp", "cnn", "cnn_best"])
    unknown = [name for name in names if name not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {', '.join(unknown)}; choose from {', '.join(RECIPES)}")
    result = {"smoke": smoke, "machine": machine_info(device), "section_seconds": {}}

    def timed(section, fn, *args, **kwargs):
        begin = time.perf_counter()
        value = fn(*args, **kwargs)
        result["section_seconds"][section] = time.perf_counter() - begin
        return value

    result["data"] = timed("data", bench_data, root=root, smoke=smoke)
    result["training"], models, data = timed(
        "training", bench_training, names, device=device, root=root, smoke=smoke, seed=seed,
        log=log,
    )
    pick = {k: models[k] for k in ("mlp", "cnn") if k in models}
    result["inference"] = timed("inference", bench_inference, pick, data[2], data[3], smoke=smoke)
    result["machine"]["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["total_seconds"] = time.perf_counter() - start
    result["command"] = command or "python -m fashion_course bench" + (" --smoke" if smoke else "")
    out = Path(out)
    stem = f"results-{device.type}" + ("-smoke" if smoke else "")
    for suffix, text in ((".json", json.dumps(result, indent=2)), (".md", to_markdown(result))):
        with atomic_path(out / f"{stem}{suffix}") as tmp:
            tmp.write_text(text + "\n", encoding="utf-8")
    result["files"] = [str(out / f"{stem}.json"), str(out / f"{stem}.md")]
    return result
