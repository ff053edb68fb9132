"""The helpers on a dataset that is not Fashion-MNIST: colour 32x32 images with their own classes.

A folder of generated PNGs laid out as ``class_name/*.png`` (read with torchvision's
``ImageFolder``) stands in for a learner's own photos; the README's example runs on ``FakeData``.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets
from torchvision.transforms import ToTensor

import fashion_course as fc

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
NAMES = ("rows", "columns", "checks")  # deliberately not in ImageFolder's alphabetical order


def pattern(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 32x32 colour image of stripes across, stripes down, or a checkerboard, with noise."""
    y, x = np.mgrid[:32, :32]
    period = int(rng.integers(3, 6))
    mask = {"rows": (y // period) % 2, "columns": (x // period) % 2,
            "checks": ((y // period) + (x // period)) % 2}[kind]
    colour = rng.uniform(0.5, 1.0, size=3)
    image = mask[..., None] * colour + rng.normal(0, 0.08, size=(32, 32, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """``patterns/<class>/*.png``: 24 images of each of the three classes."""
    root = tmp_path_factory.mktemp("patterns")
    rng = np.random.default_rng(0)
    for kind in NAMES:
        (root / kind).mkdir()
        for i in range(24):
            Image.fromarray(pattern(kind, rng)).save(root / kind / f"{kind}{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def dataset(folder):
    return datasets.ImageFolder(folder, transform=ToTensor())


@pytest.fixture(scope="module")
def loader(dataset):
    return torch.utils.data.DataLoader(dataset, batch_size=16)


@pytest.fixture(scope="module")
def trained(dataset, loader):
    """A small MLP for 3x32x32 images and 3 classes, trained a few epochs with ``fc.fit``."""
    torch.manual_seed(0)
    model = fc.NeuralNetwork(hidden=64, num_classes=3, in_channels=3, image_size=32)
    shuffled = torch.utils.data.DataLoader(dataset, batch_size=16, shuffle=True,
                                           generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = fc.fit(model, shuffled, loader, epochs=6, optimizer=optimizer)
    return model, history


def test_image_folder_trains_and_evaluates_with_its_own_class_names(dataset, loader, trained):
    model, history = trained
    assert dataset.classes == sorted(NAMES)
    assert history.test_accuracy[-1] >= 0.9, str(history)
    result = fc.evaluate(model, loader, classes=dataset.classes)
    assert result.classes == tuple(dataset.classes)
    assert result.confusion.shape == (3, 3) and int(result.confusion.sum()) == len(dataset)
    assert result.confusion.sum(1).tolist() == [24, 24, 24]
    assert result.accuracy == pytest.approx(history.test_accuracy[-1])
    report = result.report()
    for i, name in enumerate(dataset.classes):
        assert re.search(rf"^\s+{i} {name}\s+24\s+{int(result.confusion[i, i])}\s", report, re.M)
    assert report.startswith(f"accuracy {result.accuracy:.2%} ")


def test_a_checkpoint_of_other_images_reloads_with_its_shape_and_names(dataset, loader, trained,
                                                                       tmp_path):
    model, _ = trained
    path = fc.save_checkpoint(tmp_path / "patterns.pth", model, classes=dataset.classes)
    payload = fc.load_checkpoint(path)
    assert payload["classes"] == dataset.classes
    assert payload["config"] == {"hidden": 64, "num_classes": 3, "in_channels": 3, "image_size": 32}
    again = fc.load_model(path)
    assert again.classes == tuple(dataset.classes) and fc.input_shape(again) == (3, 32, 32)
    before, after = fc.evaluate(model, loader, classes=dataset.classes), fc.evaluate(again, loader)
    assert after.classes == tuple(dataset.classes)  # read from the model, not Fashion-MNIST's
    assert torch.equal(before.predictions, after.predictions)
    with pytest.raises(ValueError, match="3 outputs but 2 class names"):
        fc.save_checkpoint(tmp_path / "bad.pth", model, classes=["a", "b"])


def test_fashion_models_keep_their_config_and_checkpoint_contents():
    assert fc.NeuralNetwork().config == {"hidden": 512, "num_classes": 10}
    assert set(fc.FashionCNN().config) == {"channels", "num_classes", "hidden", "dropout",
                                          "feature_dropout"}
    assert fc.input_shape(fc.FashionCNN()) == (1, 28, 28)
    assert fc.evaluate.__kwdefaults__ == {"num_classes": None, "classes": None}


def test_a_cnn_takes_other_image_sizes_and_exports_them_to_onnx(tmp_path):
    torch.manual_seed(0)
    model = fc.FashionCNN((4, 8, 8), num_classes=3, hidden=16, in_channels=3,
                          image_size=(32, 24)).eval()
    X = torch.randn(5, 3, 32, 24)
    assert model(X).shape == (5, 3)
    again = fc.build_model("cnn", **model.config)
    assert again.config == model.config and fc.input_shape(again) == (3, 32, 24)
    with pytest.raises(ValueError, match="3 outputs but 10 class names"):
        fc.export_onnx(model, tmp_path / "unnamed.onnx")
    path = fc.export_onnx(model, tmp_path / "cnn.onnx", classes=NAMES)
    with pytest.raises(fc.OnnxModelError, match=r"\(batch, 1, 28, 28\)"):
        fc.onnx_session(path)  # the default still insists on Fashion-MNIST's shape
    session = fc.onnx_session(path, input_shape=(3, 32, 24))
    assert fc.onnx_parity(model, session, X) <= 1e-4
    with pytest.raises(fc.OnnxModelError, match=r"\(batch, 3, 32, 24\), but got \(5, 1, 28, 28\)"):
        fc.onnx_logits(session, torch.zeros(5, 1, 28, 28))


@pytest.mark.parametrize("make", [
    lambda: fc.NeuralNetwork(),
    lambda: fc.FashionCNN(),
])
def test_a_mismatched_shape_is_one_clear_message(make, loader):
    model = make()
    name = type(model).__name__
    X, y = next(iter(loader))
    with pytest.raises(ValueError) as caught:
        model(X)
    message = str(caught.value)
    assert f"{name} expects a batch of images of shape (batch, 1, 28, 28)" in message
    assert f"got {tuple(X.shape)}" in message
    assert f"{name}(num_classes=..., in_channels=3, image_size=32)" in message
    # the same message, not a matrix-multiplication error, from every helper that runs the model
    for call in (lambda: fc.predict(model, X), lambda: fc.evaluate(model, loader),
                 lambda: fc.test_loop(loader, model, torch.nn.CrossEntropyLoss()),
                 lambda: fc.train_loop(loader, model, torch.nn.CrossEntropyLoss(),
                                       torch.optim.SGD(model.parameters(), lr=0.1))):
        with pytest.raises(ValueError, match=re.escape(f"got {tuple(X.shape)}")):
            call()


def test_fashion_mnist_inputs_still_pass_the_shape_check():
    mlp, cnn = fc.NeuralNetwork().eval(), fc.FashionCNN().eval()
    assert mlp(torch.zeros(2, 28, 28)).shape == (2, 10)  # the study note's (N, 28, 28)
    assert mlp(torch.zeros(2, 784)).shape == (2, 10)
    assert cnn(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError, match=r"without a batch dimension: pass X.unsqueeze\(0\)"):
        cnn(torch.zeros(1, 28, 28))


def test_evaluate_refuses_names_that_do_not_fit(trained, loader):
    model, _ = trained
    with pytest.raises(ValueError, match="3 class scores but 10 classes"):
        fc.evaluate(model, loader, classes=fc.CLASSES)
    with pytest.raises(ValueError, match="labels run from 0 to 2, but there are only 2 classes"):
        two = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 2))
        fc.evaluate(two, loader, classes=["a", "b"])


def tick_labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels()]


def test_plots_name_the_classes_they_are_given(dataset, loader, trained):
    model, _ = trained
    names = ["stripes across", "checkerboard", "stripes down"]  # ImageFolder order: checks, ...
    result = fc.evaluate(model, loader, classes=names)
    fig, ax = plt.subplots()
    fc.plot_confusion_matrix(result.confusion, ax=ax, classes=result.classes)
    assert tick_labels(ax.xaxis) == names and tick_labels(ax.yaxis) == names
    plt.close(fig)
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="3 classes but 10 class names"):
        fc.plot_confusion_matrix(result.confusion, ax=ax)  # Fashion-MNIST's names do not fit
    plt.close(fig)

    images = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor(dataset.targets)
    wrong = (labels + 1) % 3  # every prediction wrong, so every image is drawn
    fig = fc.plot_misclassified(images, labels, wrong, count=4, ncols=4, classes=names)
    assert [a.get_title() for a in fig.axes] == [
        f"{names[labels[i]]}\n-> {names[wrong[i]]}" for i in range(4)]
    assert fig.axes[0].get_images()[0].get_array().shape == (32, 32, 3)  # drawn in colour
    plt.close(fig)

    fig = fc.plot_sample_grid(dataset, rows=2, cols=2, classes=names,
                              generator=torch.Generator().manual_seed(0))
    picks = torch.randint(len(dataset), (4,), generator=torch.Generator().manual_seed(0)).tolist()
    assert [a.get_title() for a in fig.axes] == [names[dataset.targets[i]] for i in picks]
    plt.close(fig)

    fig = fc.plot_class_grid(images, labels, per_class=2, classes=names)
    assert [fig.axes[2 * c].get_ylabel() for c in range(3)] == names
    plt.close(fig)
    with pytest.raises(ValueError, match="label 2 has no name among the 2 classes"):
        fc.plot_sample_grid(dataset, rows=3, cols=3, classes=names[:2],
                            generator=torch.Generator().manual_seed(0))  # picks 63: label 2
    with pytest.raises(ValueError, match="label 2 has no name among the 2 classes"):
        fc.plot_class_grid(images, labels, per_class=2, classes=names[:2])
    plt.close("all")


def test_classifier_uses_the_names_of_the_model(tmp_path):
    """A learner's own classes for Fashion-MNIST-sized photos, from a module, .pth and .onnx."""
    torch.manual_seed(0)
    names = ["boots", "bags", "tops"]
    model = fc.NeuralNetwork(hidden=16, num_classes=3).eval()
    photos = EXAMPLES[:3]
    direct = fc.classify_images(photos, model=model, classes=names, top=3)
    assert all(sorted(n for n, _ in p.top) == sorted(names) for p in direct)
    pth = fc.save_checkpoint(tmp_path / "own.pth", model, classes=names)
    onnx = fc.export_onnx(fc.load_model(pth), tmp_path / "own.onnx")
    for source in (pth, onnx):
        again = fc.classify_images(photos, model=source, top=3)
        assert [p.top[0][0] for p in again] == [p.top[0][0] for p in direct]
        assert [p.top[0][1] for p in again] == pytest.approx([p.top[0][1] for p in direct],
                                                             abs=1e-4)
    classifier = fc.load_classifier(pth)
    assert classifier.classes == tuple(names)
    with pytest.raises(ValueError, match="--top must be between 1 and 3, not 4"):
        fc.classify_images(photos, model=classifier, top=4)
    with pytest.raises(ValueError, match="3 outputs but 10 class names"):
        fc.load_classifier(model, classes=fc.CLASSES)
    unnamed = fc.Classifier(lambda X: torch.zeros(len(X), 3), (0.0, 1.0), "three-way")
    with pytest.raises(ValueError, match="three-way gives 3 class scores but has 10 class names"):
        unnamed.classify([fc.prepare_image(photos[0])])


def test_photos_are_refused_for_a_model_of_other_images():
    model = fc.NeuralNetwork(hidden=8, num_classes=3, in_channels=3, image_size=32)
    with pytest.raises(ValueError, match=r"takes images of shape \(3, 32, 32\), but photos are "
                                         r"prepared as \(1, 28, 28\)"):
        fc.classify_images(EXAMPLES[:1], model=model, classes=NAMES)


def test_labelled_images_match_folders_to_class_names(tmp_path):
    for name in ("Ankle boot", "t-shirt-top", "bag"):
        (tmp_path / name).mkdir()
    for path in ("Ankle boot/a.png", "t-shirt-top/b.JPG", "t-shirt-top/.hidden.png",
                 "t-shirt-top/notes.txt", "bag/c.png"):
        (tmp_path / path).write_bytes(b"")
    found = fc.labelled_images(tmp_path)
    assert [(p.relative_to(tmp_path).as_posix(), label) for p, label in found] == [
        ("Ankle boot/a.png", 9), ("bag/c.png", 8), ("t-shirt-top/b.JPG", 0)]
    assert fc.folder_name("T-shirt/top") == "t-shirt-top"


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- reuse-example:start -->\n```python\n(.*?)```\n"
                      r"<!-- reuse-example:end -->", text, re.S)
    assert found, "README.md lost its reuse example markers"
    return found.group(1)


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    exec(compile(readme_example(), "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "circle" in out and "confusion matrix" in out
    assert out.strip().endswith("('circle', 'square', 'star', 'heart', 'arrow')")
    assert fc.load_checkpoint(tmp_path / "shapes.pth")["classes"] == [
        "circle", "square", "star", "heart", "arrow"]
    ax = plt.gca()
    assert tick_labels(ax.xaxis) == ["circle", "square", "star", "heart", "arrow"]
    plt.close("all")
