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

# The MLP recipe's 15 epochs: 91.20-91.24 % (seeds 0-2, 2 threads; README, 05_optimization_loop
# asserts the same)
MLP_RECIPE_ACCURACY = 0.90
# max |PyTorch - onnxruntime| on a trained model's logits (up to 5.8 after 2 epochs): 1.4e-6 on
# 1,000 test images, about 3e-6 after 10-15 epochs; 2e-5 allows about six times the larger
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


# `evaluate MODEL --images FOLDER`: a learner's own labelled photos, FOLDER/<class>/*.png

EXAMPLE_PHOTOS = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.png"))
OWN_CLASSES = ["boots", "bags", "tops"]


def photo_folder(root: Path, photos=EXAMPLE_PHOTOS) -> Path:
    """Photos named like ``ankle-boot_test00000.png`` copied to ``root/ankle-boot/``."""
    for photo in photos:
        folder = root / photo.name.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, folder / photo.name)
    return root


def report_rows(stdout: str) -> dict[str, list[int]]:
    """The per-class table of the report: ``{class: [index, images, correct]}``."""
    table = stdout.split(" class ")[1].split("\n\n")[0].splitlines()[1:]
    rows = [re.fullmatch(r"\s*(\d+) (.+?)\s+(\d+)\s+(\d+)\s+(\S+)", line) for line in table]
    return {m.group(2): [int(m.group(1)), int(m.group(3)), int(m.group(4))] for m in rows}


def report_matrix(stdout: str, classes) -> torch.Tensor:
    lines = stdout.split("confusion matrix")[1].split("\n\n")[0].splitlines()[2:]
    assert len(lines) == len(classes)
    return torch.tensor([[int(v) for v in line.split(name, 1)[1].split()]
                         for line, name in zip(lines, classes, strict=True)])


def test_evaluate_images_reports_per_class_results_on_the_example_photos(trained, tmp_path):
    out, _ = trained
    folder = photo_folder(tmp_path / "photos")
    done = run_cli("evaluate", str(out / "model.pth"), "--images", str(folder))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    correct, total = map(int, re.search(r"accuracy [\d.]+% \((\d+) of (\d+) images\)",
                                        done.stdout).groups())
    assert total == 12 and correct >= 11, done.stdout  # the rate tests/test_predict.py states
    # the oracle: predict's own path, photo by photo
    truth = {fc.folder_name(c): i for i, c in enumerate(fc.CLASSES)}
    answers = fc.classify_images(EXAMPLE_PHOTOS, model=out / "model.pth", top=1, threshold=0)
    expected = torch.zeros(10, 10, dtype=torch.long)
    for photo, answer in zip(EXAMPLE_PHOTOS, answers, strict=True):
        expected[truth[photo.name.split("_")[0]], fc.CLASSES.index(answer.top[0][0])] += 1
    assert torch.equal(report_matrix(done.stdout, fc.CLASSES), expected)
    assert correct == int(expected.trace())
    rows = report_rows(done.stdout)
    assert list(rows) == list(fc.CLASSES)
    assert rows["Shirt"][:2] == [6, 2] and rows["Coat"][:2] == [4, 2] and rows["Bag"][:2] == [8, 1]
    assert [r[2] for r in rows.values()] == expected.diag().tolist()
    assert done.stdout.count(" -> ") == 12 - correct  # one line per mistake, naming the photo
    onnx = run_cli("evaluate", str(out / "model.onnx"), "--images", str(folder))
    assert onnx.returncode == 0, onnx.stderr
    assert onnx.stdout.split("\n", 1)[1] == done.stdout.split("\n", 1)[1]


def own_model(path: Path, **config) -> Path:
    """An untrained 3-class model of the learner's own classes (names stored in the file)."""
    torch.manual_seed(0)
    model = fc.NeuralNetwork(hidden=8, num_classes=3, **config)
    return fc.save_checkpoint(path, model, classes=OWN_CLASSES)


def test_evaluate_images_uses_the_class_names_stored_in_the_model(tmp_path):
    model = own_model(tmp_path / "own.pth")
    folder = tmp_path / "photos"
    for name, photos in (("boots", EXAMPLE_PHOTOS[:2]), ("Tops", EXAMPLE_PHOTOS[2:3])):
        (folder / name).mkdir(parents=True)
        for photo in photos:
            shutil.copy(photo, folder / name / photo.name)
    done = run_cli("evaluate", str(model), "--images", str(folder))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    rows = report_rows(done.stdout)
    assert list(rows) == OWN_CLASSES
    assert [rows[c][1] for c in OWN_CLASSES] == [2, 0, 1]
    assert re.search(r"\((\d) of 3 images\)", done.stdout)


def write_case(case: str, folder: Path) -> str:
    """Lay out one mistaken folder; returns what the one-line error must say."""
    if case == "missing":
        return "is not a folder"
    folder.mkdir()
    if case == "empty":
        return "has no class folders; lay the photos out as"
    if case == "fashion-names":  # Fashion-MNIST's folder names for a model of other classes
        photo_folder(folder, EXAMPLE_PHOTOS[:2])
        return "(ankle-boot, bag); name each class folder after one of the model's classes: boots, bags, tops"
    if case == "unknown":
        photo_folder(folder, EXAMPLE_PHOTOS[:1])
        (folder / "boots").mkdir()
        return "(ankle-boot)"
    (folder / "boots").mkdir()
    if case == "no-images":
        (folder / "boots" / "notes.txt").write_text("photos to take\n")
        return "has class folders but no images in them"
    if case == "corrupt":
        (folder / "boots" / "broken.png").write_bytes(b"this is not a picture")
        return "broken.png is not an image this program can read"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["missing", "empty", "fashion-names", "unknown", "no-images",
                                  "corrupt"])
def test_evaluate_images_mistakes_are_one_clear_message(case, tmp_path):
    model = own_model(tmp_path / "own.pth")
    folder = tmp_path / "photos"
    expected = write_case(case, folder)
    done = run_cli("evaluate", str(model), "--images", str(folder))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_evaluate_images_refuses_a_model_of_other_images(tmp_path):
    model = own_model(tmp_path / "colour.pth", in_channels=3, image_size=32)
    folder = photo_folder(tmp_path / "photos", EXAMPLE_PHOTOS[:1])
    done = run_cli("evaluate", str(model), "--images", str(folder))
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "takes images of shape (3, 32, 32), but photos are prepared as (1, 28, 28)" in done.stderr
