"""The command line end to end, as a new user runs it (real data, real subprocesses)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fashion_course as fc

NETWORK_GUARD = Path(__file__).resolve().parent / "network_guard"  # no download, even if attempted

# The MLP recipe's 10 epochs: 90.2-90.4 % (seeds 0-2; README, 05_optimization_loop asserts the same)
MLP_RECIPE_ACCURACY = 0.90
# max |PyTorch - onnxruntime| on a trained model's logits (up to 5.8 after 2 epochs): 1.4e-6 on
# 1,000 test images, about 3e-6 after 10 epochs; 2e-5 allows about six times the larger
TRAINED_PARITY = 2e-5


def run_cli(*args, env=None, cwd=None, timeout=900):
    merged = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "fashion_course", *args],
        capture_output=True, text=True, timeout=timeout, env=merged, cwd=cwd,
    )


@pytest.fixture
def bare_checkout(tmp_path):
    """A copy of the package in a fresh folder: its repository data/ folder is empty."""
    package = Path(fc.__file__).parent
    shutil.copytree(package, tmp_path / "checkout" / "fashion_course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "checkout"


@pytest.fixture(scope="module")
def trained(real_data, tmp_path_factory):
    """`python -m fashion_course train` with no model options: the README's main job (offline)."""
    out = tmp_path_factory.mktemp("trained")
    done = run_cli("train", "--out", str(out), "--threads", "2", "--root", str(real_data.root),
                   env={"FASHION_COURSE_NO_DOWNLOAD": "1"})
    assert done.returncode == 0, done.stderr
    return out, done.stdout


def test_train_reaches_90_percent_and_onnx_agrees(trained):
    out, stdout = trained
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", stdout).group(1)) / 100
    assert accuracy >= MLP_RECIPE_ACCURACY
    assert "ONNX predictions agree on 100.00% of the test set" in stdout
    payload = fc.load_checkpoint(out / "model.pth")
    assert payload["architecture"] == "mlp"
    assert payload["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=5e-5)
    images, _ = fc.load_tensors(False, root=fc.find_data(download=False).root)
    X = ((images[:1000].float() / 255 - fc.MEAN) / fc.STD).unsqueeze(1)
    parity = fc.onnx_parity(fc.load_model(out / "model.pth"), fc.onnx_session(out / "model.onnx"), X)
    assert parity <= TRAINED_PARITY, parity
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.pth"]


def test_evaluate_gives_the_same_accuracy_for_pth_and_onnx(trained):
    out, _ = trained
    pth = run_cli("evaluate", str(out / "model.pth"))
    onnx = run_cli("evaluate", str(out / "model.onnx"))
    assert pth.returncode == 0 and onnx.returncode == 0, pth.stderr + onnx.stderr
    value = lambda s: re.search(r"test accuracy ([\d.]+)%", s).group(1)  # noqa: E731
    assert value(pth.stdout) == value(onnx.stdout)


def test_export_converts_a_checkpoint(trained, tmp_path):
    out, _ = trained
    done = run_cli("export", str(out / "model.pth"), "-o", str(tmp_path / "again.onnx"))
    assert done.returncode == 0, done.stderr
    session = fc.onnx_session(tmp_path / "again.onnx")
    model = fc.load_model(out / "model.pth")
    X = torch.randn(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert fc.onnx_parity(model, session, X) <= TRAINED_PARITY


def test_data_reports_its_source(real_data):
    done = run_cli("data", "--no-download")
    assert done.returncode == 0, done.stderr
    assert "Fashion-MNIST from" in done.stdout
    assert "datasets.FashionMNIST(root=" in done.stdout


@pytest.mark.parametrize("command", [["data"], ["train", "--epochs", "1"]])
def test_no_data_and_no_network_is_one_clear_message(command, tmp_path, bare_checkout):
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {"FASHION_COURSE_SYSTEM_DATA": str(empty), "FASHION_COURSE_NO_DOWNLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(bare_checkout), str(NETWORK_GUARD)]),
           "FASHION_COURSE_DATA": None}
    extra = ["--out", str(tmp_path / "out")] if command[0] == "train" else ["--no-download"]
    done = run_cli(*command, *extra, env=env, cwd=bare_checkout)
    assert "checkout" in done.stderr  # the copy ran, not the installed package
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Fashion-MNIST was not found")
    for way in ("apt-get install dataset-fashion-mnist", "FASHION_COURSE_DATA", "torchvision"):
        assert way in done.stderr
    assert not (tmp_path / "out" / "model.pth").exists()


def test_unknown_device_is_one_clear_message(tmp_path):
    done = run_cli("train", "--device", "cuda:7", "--out", str(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: device 'cuda:7' was requested")


def test_train_cnn_for_one_epoch_saves_a_cnn_that_onnx_reproduces(real_data, tmp_path):
    """`train --model cnn` runs the CNN recipe; one epoch already passes the MLP's first epoch."""
    done = run_cli("train", "--model", "cnn", "--epochs", "1", "--out", str(tmp_path),
                   "--threads", "2", "--root", str(real_data.root))
    assert done.returncode == 0, done.stderr
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", done.stdout).group(1)) / 100
    assert accuracy >= 0.85
    tta = float(re.search(r"with flip test-time augmentation: ([\d.]+)%", done.stdout).group(1)) / 100
    assert abs(tta - accuracy) < 0.03  # two looks at each image: close to one look
    assert "ONNX predictions agree on 100.00% of the test set" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_cnn.onnx", "model_cnn.pth"]
    model = fc.load_model(tmp_path / "model_cnn.pth")
    assert isinstance(model, fc.FashionCNN)
    assert model.config == fc.build_recipe_model(fc.RECIPES["cnn"]).config
    metrics = fc.load_checkpoint(tmp_path / "model_cnn.pth")["metrics"]
    assert metrics["flip_tta_accuracy"] == pytest.approx(tta, abs=1e-4)
