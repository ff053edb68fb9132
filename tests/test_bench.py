"""The benchmark command in its CI-sized form: it runs, and writes JSON and Markdown with every key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import fashion_course as fc
from fashion_course.bench import (
    Autocast,
    amx_available,
    amx_peak,
    cpu_peak,
    fast_path,
    multiply_adds,
    to_markdown,
    train_timed,
    training_flop,
)


@pytest.fixture(scope="module")
def smoke(real_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    # One thread: the smoke run checks the machinery, and stays quick on a busy shared runner.
    completed = subprocess.run(
        [sys.executable, "-m", "fashion_course", "bench", "--smoke", "--device", "cpu",
         "--threads", "1", "--out", str(out), "--root", str(real_data.root)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return out, completed.stdout


def test_smoke_run_writes_json_with_every_section(smoke):
    out, _ = smoke
    result = json.loads((out / "results-cpu-smoke.json").read_text())
    assert result["smoke"] is True
    machine = result["machine"]
    for key in ("cpu", "logical_cpus", "torch_threads", "gpu", "torch", "torchvision", "onnxruntime"):
        assert key in machine
    assert machine["torch_threads"] == 1 and machine["gpu"] is None

    data = result["data"]
    assert {"dataloader_workers_0", "in_memory"} <= data["loaders"].keys()
    assert data["best_dataloader"] in data["loaders"]
    for row in data["loaders"].values():
        assert row["samples"] == 10 * 64 and row["seconds"] > 0
    assert data["speedup_vs_workers_0"] > 0

    assert list(result["training"]) == ["older", "mlp", "cnn"]
    # It learns: one epoch on 512 images measured 46.0 % (mlp) and 34.8 % (cnn) on 500 test images,
    # against 10 % for guessing; the older recipe (plain SGD at lr 1e-3 on raw pixels) stays near 10 %
    # after its 8 steps (9.2 %). Thresholds leave more than 10 points below the measurements.
    accuracy = {name: entry["test_accuracy"] for name, entry in result["training"].items()}
    assert accuracy["mlp"] >= 0.30 and accuracy["cnn"] >= 0.20, accuracy
    assert accuracy["older"] < accuracy["mlp"], accuracy
    for name, entry in result["training"].items():
        assert entry["recipe"]["model"] == ("cnn" if name == "cnn" else "mlp")
        (epoch,) = entry["epochs"]
        assert epoch["epoch"] == 1 and 0.0 <= epoch["test_accuracy"] <= 1.0
        assert entry["seconds"] == epoch["seconds"] > 0
        assert set(entry["first_reached"]) == {"0.900", "0.930", "0.940", "0.945"}
    assert 0.0 <= result["training"]["cnn"]["flip_tta_accuracy"] <= 1.0
    for name, entry in result["training"].items():  # the work each recipe did, and how fast
        assert entry["multiply_adds_per_image"] == multiply_adds(fc.build_recipe_model(fc.RECIPES[name]))
        assert entry["images_trained"] == 512  # the smoke slice, one epoch
        expected = entry["train_flop_per_image"] * 512 / entry["seconds"] / 1e9
        assert entry["achieved_gflops"] == pytest.approx(expected)
        # the CNN takes the bfloat16 path on a CPU with AMX, and is measured against that peak
        assert entry["mixed_precision_channels_last"] == (name == "cnn" and amx_available())
        peak = machine["amx_peak" if entry["mixed_precision_channels_last"] else "cpu_peak"]
        assert entry["share_of_peak"] == pytest.approx(expected / peak["gflops"])
    assert machine["cpu_peak"]["cores"] == 1  # the one thread torch used
    assert ("amx_peak" in machine) == amx_available()
    older_seconds = result["training"]["older"]["seconds"]
    for entry in result["training"].values():  # training time as a multiple of the older recipe's
        assert entry["seconds_vs_older"] == pytest.approx(entry["seconds"] / older_seconds)
    assert result["training"]["older"]["seconds_vs_older"] == 1.0

    for name in ("mlp", "cnn"):
        entry = result["inference"][name]
        # onnxruntime computes the same logits: measured 6e-7 (mlp) and 2e-7 (cnn) after the smoke
        # run's training; 2e-5, the bound for trained models that tests/test_cli.py uses too
        assert entry["max_abs_logit_difference"] < 2e-5
        assert entry["predictions_agree"]
        assert entry["test_accuracy_pytorch"] == entry["test_accuracy_onnxruntime"]
        for batch in ("batch_1", "batch_256"):
            assert entry[batch]["pytorch_ms"] > 0 and entry[batch]["onnxruntime_ms"] > 0


def test_smoke_run_writes_the_markdown_tables(smoke):
    out, stdout = smoke
    markdown = (out / "results-cpu-smoke.md").read_text()
    assert "Smoke run" in markdown
    for header in ("| data, one epoch (batch 64) |", "| recipe |", "| model | batch |"):
        assert header in markdown
    cnn = "cnn, bfloat16" if amx_available() else "cnn"  # the training row says how it trained
    for row in ("| older | 1 |", "| mlp | 1 |", f"| {cnn} | 1 |", "| mlp | 256 |", "| cnn | 1 |"):
        assert row in markdown
    assert ("A row marked bfloat16 trained under bfloat16 autocast" in markdown) == amx_available()
    assert "in memory" in markdown and "num_workers=0" in markdown
    assert "| multiply-adds / image | GFLOP/s training | share of peak |" in markdown
    assert "| mlp | 1 |" in markdown and "| 0.67 M |" in markdown  # the MLP's 668,672
    assert "Share of peak: of the float32 peak of the cores torch used, 1 cores x 2 FMA units" in markdown
    assert markdown.strip() in stdout  # the command prints the same tables it writes
    assert not list(out.glob("*.tmp"))  # written atomically, nothing left behind
    # progress while it runs: one line per recipe and one per epoch, before the tables
    for name in ("older", "mlp", "cnn"):
        assert f"training {name}\n  epoch  1/1: test accuracy " in stdout
    assert stdout.index("training cnn") < stdout.index("| recipe |")


def test_markdown_marks_missed_thresholds_and_full_runs():
    result = json.loads(json.dumps({
        "smoke": False, "command": "python -m fashion_course bench", "total_seconds": 1.0,
        "machine": {"cpu": "x", "logical_cpus": 2, "torch_threads": 2, "gpu": "G", "torch": "t",
                    "torchvision": "v", "onnxruntime": "o", "python": "p", "load_average": [1.0]},
        "data": {"loaders": {"in_memory": {"seconds": 1.0, "samples_per_second": 100.0},
                             "dataloader_workers_0": {"seconds": 2.0, "samples_per_second": 2.0}}},
        "training": {"cnn": {"epochs": [{}], "test_accuracy": 0.9, "flip_tta_accuracy": 0.91,
                             "seconds": 3.0, "cpu_seconds": 4.0,
                             "first_reached": {"0.930": None}}},
        "inference": {},
    }))
    markdown = to_markdown(result)
    assert "GPU G" in markdown and "Smoke" not in markdown
    assert "| torchvision DataLoader, num_workers=0 | 2.00 | 2 | 50x |" in markdown
    assert "| cnn | 1 | 90.00% | 91.00% | 3.0 | 4.0 | - |" in markdown
    assert "| model | batch |" not in markdown  # no models timed for inference: no empty table
    assert "x older" not in markdown.split("| cnn |")[1]  # no older row: no ratio, no note on it

    # With the older recipe in the run, each row says how many times its training time it took
    older = {"epochs": [{}] * 5, "test_accuracy": 0.65, "seconds": 2.0, "cpu_seconds": 4.0,
             "first_reached": {"0.930": None}, "seconds_vs_older": 1.0}
    result["training"] = {"older": older, **result["training"]}
    result["training"]["cnn"]["seconds_vs_older"] = 1.5
    markdown = to_markdown(result)
    assert "| train seconds (wall) | CPU seconds | x older | first epoch >= 93 % |" in markdown
    assert "| older | 5 | 65.00% | - | 2.0 | 4.0 | 1.0 | - |" in markdown
    assert "| cnn | 1 | 90.00% | 91.00% | 3.0 | 4.0 | 1.5 | - |" in markdown
    assert "x older: the recipe's training seconds divided by those of `older`" in markdown


def test_autocast_wrapper_runs_in_bfloat16_and_returns_float32_logits():
    torch.manual_seed(0)
    model = fc.build_model("cnn").eval()
    wrapped = Autocast(model)
    assert list(wrapped.parameters()) == list(model.parameters())  # the optimizer sees the same
    inside = []
    model.features[0][0].register_forward_hook(lambda module, args, out: inside.append(out.dtype))
    X = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        fast, exact = wrapped(X), model(X)
    assert inside == [torch.bfloat16, torch.float32]  # the convolution ran in bfloat16, then not
    assert fast.dtype == torch.float32 and fast.shape == (8, 10)
    assert not torch.equal(fast, exact)  # really computed in lower precision
    # Untrained logits are about 0.1 in size (here at most 0.099); bfloat16 changes them by at most
    # 3.7e-4 (5.3e-4 over seeds 0-4). 2e-3 is four times the worst seed, and 1/50 of the logits.
    assert exact.abs().max() > 0.05
    torch.testing.assert_close(fast, exact, atol=2e-3, rtol=0)


def test_only_a_cnn_on_a_cuda_gpu_or_an_amx_cpu_takes_the_fast_path():
    """The decision the benchmark makes, checked without a GPU (a device name is enough) and for a
    CPU with and without AMX (``amx=`` stands in for the CPU's flags)."""
    cnn, mlp = fc.RECIPES["cnn"], fc.RECIPES["mlp"]
    assert fast_path(torch.device("cuda"), cnn) and fast_path("cuda:1", cnn)
    assert fast_path(torch.device("cuda", 0), fc.RECIPES["cnn_best"])
    assert not fast_path(torch.device("cuda"), mlp) and not fast_path("cuda", fc.RECIPES["older"])
    for device in ("mps", "meta"):
        assert not fast_path(torch.device(device), cnn)
    assert fast_path("cpu", cnn, amx=True)
    assert fast_path(torch.device("cpu"), fc.RECIPES["cnn_best"], amx=True)
    assert not fast_path("cpu", cnn, amx=False)
    assert not fast_path("cpu", mlp, amx=True) and not fast_path("cpu", fc.RECIPES["older"], amx=True)
    assert fast_path("cpu", cnn) == amx_available()  # by default: this machine's CPU


def test_amx_is_read_from_the_cpu_flags():
    """amx_available agrees with the kernel's own list of the CPU's features (Linux)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags on this system")
    assert amx_available() == ("amx_tile" in flags and "amx_bf16" in flags)


def test_the_fast_path_trains_a_channels_last_cnn_under_autocast(train_split, test_split, monkeypatch):
    """train_timed(fast=True), the GPU path, run on the CPU: bfloat16 inside, float32 out, it learns."""
    torch.set_num_threads(1)
    data = (train_split[0][:1024], train_split[1][:1024], test_split[0][:500], test_split[1][:500])
    recipe = fc.Recipe(model="cnn", channels=(8, 16, 32), optimizer="adamw", lr=3e-3, batch_size=64,
                       epochs=1, augment=False)
    conv_dtypes = set()
    real_forward = Autocast.forward

    def spying(self, x):  # what the first convolution computes in, each time the runner is called
        hook = self.model.features[0][0].register_forward_hook(lambda m, a, out: conv_dtypes.add(out.dtype))
        try:
            return real_forward(self, x)
        finally:
            hook.remove()

    monkeypatch.setattr(Autocast, "forward", spying)
    model, rows, _ = train_timed(recipe, device=torch.device("cpu"), data=data, fast=True)
    assert conv_dtypes == {torch.bfloat16}, "train_timed(fast=True) did not train under bfloat16 autocast"
    assert model.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert next(model.parameters()).dtype == torch.float32  # the weights themselves stay float32
    # 16 steps of AdamW on 1,024 images: 65.4 %, 64.8 %, 69.8 % on 500 test images (seeds 0-2; the
    # same in float32: 64.6-68.8 %); 10 % is guessing. 50 % leaves 14 points below the lowest.
    assert rows[0]["test_accuracy"] >= 0.50, rows


def test_multiply_adds_of_known_layers():
    # The MLP: 784 -> 512 -> 512 -> 10, one multiply-add per weight.
    assert multiply_adds(fc.NeuralNetwork()) == 784 * 512 + 512 * 512 + 512 * 10
    # A convolution: out_channels x output positions x (in_channels / groups) x kernel area.
    conv = torch.nn.Conv2d(4, 8, kernel_size=3, padding=1)
    assert multiply_adds(conv, (4, 10, 10)) == 8 * 10 * 10 * 4 * 3 * 3
    strided = torch.nn.Conv2d(4, 8, kernel_size=3, stride=2, groups=2)  # 10x10 -> 4x4
    assert multiply_adds(strided, (4, 10, 10)) == 8 * 4 * 4 * 2 * 3 * 3
    # The course's CNN, stage by stage: 28x28, 14x14 and 7x7 outputs, then the classifier.
    cnn = fc.FashionCNN()
    expected = (28 * 28 * 24 * 1 * 9 + 14 * 14 * 64 * 24 * 9 + 7 * 7 * 96 * 64 * 9
                + 96 * 7 * 7 * 256 + 256 * 10)
    assert multiply_adds(cnn) == expected == 6_795_136
    earlier = fc.FashionCNN((32, 64, 96), feature_dropout=0.25)  # dropout does no multiply-adds
    assert multiply_adds(earlier) == expected + 28 * 28 * 8 * 9 + 14 * 14 * 64 * 8 * 9 == 7_754_752
    assert cnn.training  # counting does not leave the model in eval mode


def test_training_flop_counts_forward_and_backward():
    # Forward: 2 operations per multiply-add. Backward: the weight gradients of every layer, and the
    # input gradients of every layer but the first (the images need none).
    first, rest = 784 * 512, 512 * 512 + 512 * 10
    assert training_flop(fc.NeuralNetwork()) == 2 * (2 * first + 3 * rest)
    model = fc.FashionCNN()
    before = [p.clone() for p in model.parameters()]
    flop = training_flop(model)
    assert 5.5 * multiply_adds(model) < flop < 6 * multiply_adds(model)
    assert all(p.grad is None for p in model.parameters())  # counted on a copy
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_amx_available_asks_torch_and_survives_an_older_one(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert amx_available() is False
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert amx_available() is True
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the check
    assert amx_available() is False


def test_amx_peak_formula():
    peak = amx_peak(2, ghz=2.6)
    assert peak["gflops"] == pytest.approx(2 * 1024 * 2.6)  # cores x bfloat16 operations per cycle x GHz
    assert peak["formula"] == "2 cores x 1024 bfloat16 operations per cycle (AMX) x 2.60 GHz = 5324.8 GFLOP/s"


def test_cpu_peak_formula():
    avx2 = cpu_peak(2, flags={"fma", "avx2"}, ghz=2.5)
    assert avx2["gflops"] == pytest.approx(2 * 2 * 8 * 2 * 2.5)  # cores x FMA units x lanes x 2 x GHz
    assert avx2["formula"] == ("2 cores x 2 FMA units (assumed) x 8 float32 lanes (AVX2) x 2 operations "
                               "x 2.50 GHz = 160.0 GFLOP/s")
    assert cpu_peak(4, flags={"avx2", "avx512f"}, ghz=2.0)["gflops"] == pytest.approx(4 * 2 * 16 * 2 * 2.0)
    assert cpu_peak(1, flags=set(), ghz=3.0)["float32_lanes"] == 4
    named = cpu_peak(2, flags={"avx2"}, cpu_model="Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz")
    assert named["ghz"] == 2.5
