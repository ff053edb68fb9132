"""The measurements behind the README's results table, side by side in one run.

    python -m fashion_course bench            # the full run (minutes): benchmarks/results-cpu.{json,md}
    python -m fashion_course bench --smoke    # a CI-sized run (seconds) with the same keys

1. data only, one epoch: torchvision ``FashionMNIST`` + ``ToTensor`` through a ``DataLoader`` against
   the in-memory path (07_cnn); 2. time to accuracy per epoch of the recipes (05, 07); 3. inference
   latency of PyTorch eager against onnxruntime, with logit parity (06, 07); 4. the machine.
Per recipe it also reports the work: multiply-adds per image, the floating-point operations
actually done per training image, the rate achieved while training (GFLOP/s) and, on a CPU, its
share of the machine's peak, so that one can see how close to the hardware each recipe runs.
Wall-clock seconds are what a learner waits; CPU seconds are reported beside them because on a
shared machine the wall clock also counts other people's work. A CNN trains under bfloat16
autocast where the hardware computes bfloat16 (a CUDA GPU, a CPU with AMX: ``fast_path``), and its
row says so; ``--float32`` turns that off.
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

__all__ = ["run_bench", "machine_info", "Autocast", "fast_path", "amx_available", "multiply_adds",
           "training_flop", "cpu_peak", "amx_peak"]

THRESHOLDS = (0.90, 0.93, 0.94, 0.945)


def amx_available() -> bool:
    """Whether this CPU has AMX tiles (Intel Xeon since Sapphire Rapids, 2023).

    Their matrix unit multiplies bfloat16 tiles, and oneDNN (PyTorch's CPU library) runs bfloat16
    convolutions and matrix products on it. Without it a CPU converts to bfloat16 and back for
    little or no gain.
    """
    check = getattr(torch.cpu, "_is_amx_tile_supported", None)  # torch 2.1 and later
    try:
        return bool(check and check())
    except RuntimeError:
        return False


def fast_path(device: torch.device, recipe, *, amx: bool | None = None) -> bool:
    """Whether a recipe trains with bfloat16 autocast (``Autocast``) on ``device``.

    Only a CNN, and only where bfloat16 has hardware of its own: a CUDA GPU (tensor cores), or a
    CPU with AMX tiles (``amx``; by default :func:`amx_available`), where a training step of the
    ``cnn`` recipe takes about half the time it takes in float32 (19 against 38-42 ms on the 2-core
    Xeon). Elsewhere autocast adds conversions for little gain, and the MLP is too small to profit.
    """
    if recipe.model != "cnn":
        return False
    kind = torch.device(device).type
    if kind == "cpu":
        return amx_available() if amx is None else amx
    return kind == "cuda"


class Autocast(nn.Module):
    """Run a model under bfloat16 autocast (mixed precision) and return float32 logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()


# Fused multiply-add units per core: two on every recent server core (Intel Xeon since Skylake-SP
# Gold/Platinum, AMD Zen 2 and later) and on most desktop cores since Haswell. An assumption, not a
# reading: no portable interface reports it.
FMA_UNITS_PER_CORE = 2


def multiply_adds(model: nn.Module, input_shape=(1, 28, 28)) -> int:
    """Multiply-adds of one forward pass for one image: the convolutions and linear layers.

    A convolution does ``in_channels / groups x kernel height x kernel width`` multiply-adds for
    every value it outputs; a linear layer ``in_features x out_features`` per input row. Batch
    norm, ReLU, pooling and dropout are left out: a few operations per value, not per weight
    (07_cnn counts the same way).
    """
    total = 0

    def hook(layer, inputs, output):
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            total += output[0].numel() * per_output
        elif isinstance(layer, nn.Linear):
            total += inputs[0][0].numel() // layer.in_features * layer.in_features * layer.out_features

    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    handles = [m.register_forward_hook(hook) for m in layers]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total


def training_flop(model: nn.Module, input_shape=(1, 28, 28), *, batch: int = 4) -> int:
    """Floating-point operations per image of one training step's forward and backward pass.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` on a copy of the model: the
    convolutions and matrix products PyTorch really runs, two operations per multiply-add. The
    backward pass computes the weights' gradients and the gradients of each layer's input, about
    twice the forward's work, except for the first layer, whose input (the image) needs no
    gradient: so slightly less than 3 x 2 x ``multiply_adds``. Batch norm, ReLU, pooling, the
    loss and the optimizer are not counted.
    """
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    clone = copy.deepcopy(model).train()
    device = next(clone.parameters()).device
    X = torch.randn(batch, *input_shape, device=device)
    with FlopCounterMode(display=False) as counter:
        clone(X).float().sum().backward()
    return counter.get_total_flops() // batch


def _cpu_clock_ghz(cpu_model: str) -> float | None:
    """The nominal clock: from the model name ("... @ 2.60GHz"), else the kernel's "cpu MHz"."""
    import re

    found = re.search(r"@\s*([\d.]+)\s*GHz", cpu_model)
    if found:
        return float(found.group(1))
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                return float(line.split(":", 1)[1]) / 1000
    except (OSError, ValueError):
        pass
    return None


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_peak(cores: int, *, flags: set[str] | None = None, ghz: float | None = None,
             cpu_model: str = "") -> dict:
    """The float32 peak of ``cores`` CPU cores: cores x FMA units x vector width x 2 x clock.

    The vector width is the number of float32 values in the widest vector register the flags
    report (16 with AVX-512, 8 with AVX2, 4 with SSE); an FMA does a multiply and an add (2
    operations) on each; ``FMA_UNITS_PER_CORE`` is assumed, and the clock is the nominal one
    (turbo raises it, heavy AVX-512 use can lower it). ``gflops`` is None when no clock is known.
    """
    flags = _cpu_flags() if flags is None else flags
    width, isa = (16, "AVX-512") if "avx512f" in flags else (8, "AVX2") if "avx2" in flags else (4, "SSE")
    ghz = _cpu_clock_ghz(cpu_model) if ghz is None else ghz
    gflops = cores * FMA_UNITS_PER_CORE * width * 2 * ghz if ghz else None
    clock = f"{ghz:.2f} GHz" if ghz else "unknown clock"
    formula = (f"{cores} cores x {FMA_UNITS_PER_CORE} FMA units (assumed) x {width} float32 lanes "
               f"({isa}) x 2 operations x {clock}")
    if gflops:
        formula += f" = {gflops:.1f} GFLOP/s"
    return {"cores": cores, "fma_units_per_core": FMA_UNITS_PER_CORE, "float32_lanes": width,
            "isa": isa, "ghz": ghz, "gflops": gflops, "formula": formula}


# bfloat16 operations per cycle of one core's AMX unit, as Intel states it for Sapphire Rapids
# (1,024: sixteen times the 64 float32 operations per cycle of two AVX-512 FMA units). A
# published figure, not a reading.
AMX_BF16_OPS_PER_CYCLE = 1024


def amx_peak(cores: int, *, ghz: float | None = None, cpu_model: str = "") -> dict:
    """The bfloat16 peak of ``cores`` cores' AMX units: cores x 1,024 operations per cycle x clock."""
    ghz = _cpu_clock_ghz(cpu_model) if ghz is None else ghz
    gflops = cores * AMX_BF16_OPS_PER_CYCLE * ghz if ghz else None
    clock = f"{ghz:.2f} GHz" if ghz else "unknown clock"
    formula = f"{cores} cores x {AMX_BF16_OPS_PER_CYCLE} bfloat16 operations per cycle (AMX) x {clock}"
    if gflops:
        formula += f" = {gflops:.1f} GFLOP/s"
    return {"cores": cores, "ops_per_cycle": AMX_BF16_OPS_PER_CYCLE, "ghz": ghz, "gflops": gflops,
            "formula": formula}


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
    from .training import (
        _sync,
        augmentation,
        build_recipe_model,
        make_optimizer,
        prepare_model,
        test_loop,
        train_loop,
    )

    recipe = replace(recipe, epochs=epochs or recipe.epochs)
    norm = {} if recipe.normalize else {"mean": 0.0, "std": 1.0}  # the older recipe: raw pixels
    torch.manual_seed(seed)
    model = build_recipe_model(recipe).to(device)  # a CNN is channels_last already
    train = InMemoryLoader(
        data[0], data[1], batch_size=recipe.batch_size, shuffle=True, device=device,
        augment=augmentation(recipe), alternate_flips=recipe.alternates_flips,
        generator=torch.Generator().manual_seed(seed), **norm,
    )
    test = InMemoryLoader(data[2], data[3], batch_size=1000, device=device, **norm)
    prepare_model(recipe, model, train)
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


def _work_per_image(recipe) -> dict:
    from .training import build_recipe_model

    model = build_recipe_model(recipe)
    return {"multiply_adds_per_image": multiply_adds(model),
            "train_flop_per_image": training_flop(model)}


def bench_training(names, *, device, root=None, smoke=False, seed=0, float32=False, log=None) -> dict:
    """Test accuracy and cumulative training seconds per epoch for each recipe.

    A recipe takes the bfloat16 path where :func:`fast_path` says so, unless ``float32``.
    """
    from .data import load_tensors
    from .training import RECIPES, flip_tta_accuracy

    train, test = load_tensors(True, root=root), load_tensors(False, root=root)
    data = (*train, *test)
    if smoke:  # a slice of each split and one epoch: checks the machinery, not the accuracy
        data = (train[0][:512], train[1][:512], test[0][:500], test[1][:500])
    results, models = {}, {}
    for name in names:
        recipe = RECIPES[name]
        fast = not float32 and fast_path(device, recipe)
        if log is not None:
            log(f"training {name}")
        work = _work_per_image(recipe)
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
        images = len(rows) * len(data[1])  # every training image once per epoch
        entry.update(work, images_trained=images,
                     achieved_gflops=work["train_flop_per_image"] * images / entry["seconds"] / 1e9)
        if recipe.model == "cnn":
            entry["flip_tta_accuracy"] = flip_tta_accuracy(model, test_loader)
        results[name] = entry
        models[name] = model.eval()
    if "older" in results:  # each recipe's training time as a multiple of the older tutorials'
        for entry in results.values():
            entry["seconds_vs_older"] = entry["seconds"] / results["older"]["seconds"]
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
              "| x older | first epoch >= 93 % | multiply-adds / image | GFLOP/s training "
              "| share of peak |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in result["training"].items():
        tta = f"{r['flip_tta_accuracy']:.2%}" if "flip_tta_accuracy" in r else "-"
        hit = r["first_reached"]["0.930"]
        hit = f"{hit['epoch']} ({hit['seconds']:.0f} s)" if hit else "-"
        macs = f"{r['multiply_adds_per_image'] / 1e6:.2f} M" if "multiply_adds_per_image" in r else "-"
        rate = f"{r['achieved_gflops']:.1f}" if "achieved_gflops" in r else "-"
        share = f"{r['share_of_peak']:.1%}" if r.get("share_of_peak") is not None else "-"
        ratio = f"{r['seconds_vs_older']:.1f}" if "seconds_vs_older" in r else "-"
        label = f"{name}, bfloat16" if r.get("mixed_precision_channels_last") else name
        lines.append(f"| {label} | {len(r['epochs'])} | {r['test_accuracy']:.2%} | {tta} | "
                     f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {ratio} | {hit} | {macs} | "
                     f"{rate} | {share} |")
    if result["training"]:
        lines.append("")
        if any("seconds_vs_older" in r for r in result["training"].values()):
            lines.append("x older: the recipe's training seconds divided by those of `older` (the "
                         "older tutorials' recipe) in the same run. Both train on the same cores "
                         "minutes apart, so the ratio depends less on the machine than the seconds "
                         "do, though a shared machine still moves it by a tenth or more between "
                         "runs.")
        lines += ["Multiply-adds: one forward pass of one image through the convolutions and linear "
                  "layers. GFLOP/s: the floating-point operations of the forward and backward passes "
                  "(convolutions and matrix products as `torch.utils.flop_counter` counts them, 2 per "
                  "multiply-add, about 3 x 2 x the multiply-adds) of every training image, divided by "
                  "the training seconds."]
        peak = m.get("cpu_peak")
        if peak:
            lines.append(f"Share of peak: of the float32 peak of the cores torch used, {peak['formula']}.")
        if m.get("amx_peak"):
            lines.append("A row marked bfloat16 trained under bfloat16 autocast, which this CPU's AMX "
                         "units compute (its test accuracy is measured under autocast too); its share "
                         "is of their bfloat16 peak, " + m["amx_peak"]["formula"] + " (Intel's figure "
                         "per core). `--float32` trains every recipe in float32.")
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
    out, *, smoke=False, device="cpu", root=None, recipes=None, seed=0, float32=False, command=None,
    log=None,
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
        float32=float32, log=log,
    )
    if device.type == "cpu":  # a GPU's peak depends on its precision and units: not estimated
        cores = min(torch.get_num_threads(), os.cpu_count() or 1)
        peak = cpu_peak(cores, cpu_model=result["machine"]["cpu"])
        result["machine"]["cpu_peak"] = peak
        if any(entry["mixed_precision_channels_last"] for entry in result["training"].values()):
            result["machine"]["amx_peak"] = amx_peak(cores, cpu_model=result["machine"]["cpu"])
        for entry in result["training"].values():  # against the peak of the precision it ran in
            own = result["machine"]["amx_peak" if entry["mixed_precision_channels_last"] else "cpu_peak"]
            entry["share_of_peak"] = entry["achieved_gflops"] / own["gflops"] if own["gflops"] else None
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
