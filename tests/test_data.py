"""Finding, verifying and loading Fashion-MNIST (fashion_course.data)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch
from helpers import write_idx

import fashion_course as fc
from fashion_course import data as fcdata

NAMES = list(fcdata.IDX_FILES)


def test_class_names_are_the_official_order():
    assert len(fc.CLASSES) == 10
    assert fc.labels_map[0] == "T-shirt/top"
    assert fc.labels_map[9] == "Ankle boot"
    assert fc.labels_map[6] == "Shirt"


def test_read_idx_round_trips_a_known_array(tmp_path):
    array = torch.arange(2 * 3 * 4, dtype=torch.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x-idx3-ubyte", array)
    assert torch.equal(fc.read_idx(tmp_path / "x-idx3-ubyte"), array)
    labels = torch.tensor([3, 1, 4, 1, 5], dtype=torch.uint8)
    write_idx(tmp_path / "y-idx1-ubyte", labels)
    with open(tmp_path / "y-idx1-ubyte", "rb") as fh, gzip.open(tmp_path / "y.gz", "wb") as gz:
        gz.write(fh.read())
    assert torch.equal(fc.read_idx(tmp_path / "y.gz"), labels)


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b[:-5], "truncated"),
        (lambda b: b"\x00\x00\x09\x03" + b[4:], "not an unsigned-byte IDX file"),
        (lambda b: b[:6], "ends inside its header"),
    ],
)
def test_read_idx_refuses_broken_files(tmp_path, mangle, message):
    good = tmp_path / "good"
    write_idx(good, torch.zeros(3, 4, 4, dtype=torch.uint8))
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(mangle(good.read_bytes()))
    with pytest.raises(fc.DataCorruptError, match=message) as info:
        fc.read_idx(bad)
    assert str(bad) in str(info.value)


def _copy_real(source: fc.DataSource, folder: Path, *, gz: bool) -> None:
    """Put the four real files (raw or gzipped) flat into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        raw = source.raw(name)
        if gz:
            with open(raw, "rb") as fh, gzip.open(folder / f"{name}.gz", "wb", compresslevel=1) as out:
                shutil.copyfileobj(fh, out)
        else:
            shutil.copy(raw, folder / name)


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No environment folder, an empty system folder, no downloads: only what a test provides."""
    monkeypatch.delenv(fcdata.ENV_DATA, raising=False)
    monkeypatch.setenv(fcdata.ENV_SYSTEM, str(tmp_path / "system"))
    monkeypatch.setenv(fcdata.ENV_NO_DOWNLOAD, "1")
    monkeypatch.setattr(fcdata, "_REPO", tmp_path / "repo")
    return tmp_path


def test_explicit_root_with_gz_files_is_verified_and_laid_out_for_torchvision(real_data, isolated):
    from torchvision import datasets

    folder = isolated / "mine"
    _copy_real(real_data, folder, gz=True)
    source = fc.find_data(folder)
    assert source.origin == "the folder you passed"
    assert source.root == folder
    for name in NAMES:
        assert source.raw(name).stat().st_size == fcdata.IDX_FILES[name][0]
    test = datasets.FashionMNIST(str(source.root), train=False, download=False)
    assert len(test) == 10_000


def test_search_order_env_then_repo_then_system(real_data, isolated, monkeypatch):
    _copy_real(real_data, isolated / "system", gz=True)
    source = fc.find_data()
    assert source.origin == "Debian's dataset-fashion-mnist package"
    assert source.root == isolated / "repo" / "data"  # laid out in the repository's data/
    assert fc.find_data().origin == "the repository's data/ folder"  # found there next time

    _copy_real(real_data, isolated / "env", gz=False)
    monkeypatch.setenv(fcdata.ENV_DATA, str(isolated / "env"))
    source = fc.find_data()
    assert source.origin == f"${fcdata.ENV_DATA}"
    assert source.found_in == isolated / "env"


def test_no_data_anywhere_names_every_way_to_get_it(isolated):
    with pytest.raises(fc.DataNotFoundError) as info:
        fc.find_data()
    message = str(info.value)
    for way in ("apt-get install dataset-fashion-mnist", "FASHION_COURSE_DATA", "data",
                "torchvision then downloads"):
        assert way in message


def test_failed_download_ends_in_the_same_message(isolated, monkeypatch):
    from torchvision import datasets

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.delenv(fcdata.ENV_NO_DOWNLOAD)
    monkeypatch.setattr(datasets, "FashionMNIST", offline)
    with pytest.raises(fc.DataNotFoundError, match="name resolution") as info:
        fc.find_data()
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_altered_file_is_refused_by_name_and_left_alone(real_data, isolated):
    folder = isolated / "mine"
    _copy_real(real_data, folder, gz=False)
    victim = folder / "t10k-labels-idx1-ubyte"
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(fc.DataCorruptError, match="t10k-labels-idx1-ubyte") as info:
        fc.find_data(folder)
    assert "wrong checksum" in str(info.value)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert not (folder / "FashionMNIST").exists()


def test_partial_copy_is_reported(real_data, isolated):
    folder = isolated / "mine"
    _copy_real(real_data, folder, gz=False)
    (folder / "train-images-idx3-ubyte").unlink()
    with pytest.raises(fc.DataCorruptError, match="missing train-images-idx3-ubyte"):
        fc.find_data(folder)


def test_splits_match_torchvision_pixel_for_pixel(real_data, train_split, test_split):
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    for train, (images, labels) in ((True, train_split), (False, test_split)):
        reference = datasets.FashionMNIST(str(real_data.root), train=train, download=False)
        assert images.shape == (60_000 if train else 10_000, 28, 28)
        assert torch.equal(images, reference.data)
        assert torch.equal(labels, reference.targets)
        with_transform = fc.fashion_mnist(train, root=real_data.root)
        for i in range(0, len(reference), 997):
            image, label = with_transform[i]
            assert isinstance(label, int) and label == labels[i].item()
            assert image.shape == (1, 28, 28) and image.dtype == torch.float32
            assert torch.equal(image[0], ToTensor()(reference[i][0])[0])
            assert torch.equal(image[0], images[i].float() / 255)


def test_class_balance_and_normalisation_constants(train_split):
    images, labels = train_split
    assert torch.equal(torch.bincount(labels), torch.full((10,), 6000))
    pixels = images.double() / 255
    assert pixels.mean().item() == pytest.approx(fc.MEAN, abs=5e-5)
    assert pixels.std().item() == pytest.approx(fc.STD, abs=5e-5)


def test_dataloaders_give_normalised_batches(real_data):
    generator = torch.Generator().manual_seed(0)
    train, test = fc.dataloaders(64, root=real_data.root, generator=generator)
    X, y = next(iter(train))
    assert X.shape == (64, 1, 28, 28) and y.shape == (64,) and y.dtype == torch.int64
    assert X.min().item() == pytest.approx(-fc.MEAN / fc.STD, abs=1e-6)
    assert len(test.dataset) == 10_000


def test_train_val_split_is_seeded_and_disjoint():
    dataset = torch.utils.data.TensorDataset(torch.arange(100))
    a_train, a_val = fc.train_val_split(dataset, 20, seed=3)
    b_train, b_val = fc.train_val_split(dataset, 20, seed=3)
    assert list(a_val.indices) == list(b_val.indices)
    assert len(a_train) == 80 and len(a_val) == 20
    assert not set(a_train.indices) & set(a_val.indices)
    with pytest.raises(ValueError, match="val_size"):
        fc.train_val_split(dataset, 100)
