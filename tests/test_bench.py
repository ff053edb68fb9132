"""The benchmark command in its CI-sized form: it runs, and writes JSON and Markdown with every key."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import fashion_course as fc
from fashion_course.bench import Autocast, to_markdown


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
    for name, entry in result["training"].items():
        assert entry["recipe"]["model"] == ("cnn" if name == "cnn" else "mlp")
        (epoch,) = entry["epochs"]
        assert epoch["epoch"] == 1 and 0.0 <= epoch["test_accuracy"] <= 1.0
        assert entry["seconds"] == epoch["seconds"] > 0
        assert set(entry["first_reached"]) == {"0.900", "0.930", "0.940", "0.945"}
    assert 0.0 <= result["training"]["cnn"]["flip_tta_accuracy"] <= 1.0

    for name in ("mlp", "cnn"):
        entry = result["inference"][name]
        assert entry["max_abs_logit_difference"] < 1e-4  # onnxruntime computes the same logits
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
    for row in ("| older | 1 |", "| mlp | 1 |", "| cnn | 1 |", "| mlp | 256 |", "| cnn | 1 |"):
        assert row in markdown
    assert "in memory" in markdown and "num_workers=0" in markdown
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


def test_autocast_wrapper_runs_in_bfloat16_and_returns_float32_logits():
    torch.manual_seed(0)
    model = fc.build_model("cnn").eval()
    wrapped = Autocast(model)
    assert list(wrapped.parameters()) == list(model.parameters())  # the optimizer sees the same
    X = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        fast, exact = wrapped(X), model(X)
    assert fast.dtype == torch.float32 and fast.shape == (8, 10)
    assert not torch.equal(fast, exact)  # really computed in lower precision
    torch.testing.assert_close(fast, exact, atol=0.1, rtol=0.05)
