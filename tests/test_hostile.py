"""Hostile and broken input: every case ends in one clear line, a non-zero exit, nothing lost.

Each case is checked twice: through the Python API (the right exception, naming the file and
saying what to do) and through `python -m fashion_course ...` in a real subprocess (exit status
not 0, exactly one line on stderr starting with "error:", no traceback, and every file in the
folder byte-for-byte and mtime-for-mtime as it was).
"""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch

import fashion_course as fc
from fashion_course import data as fcdata

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = sorted((ROOT / "examples").glob("trouser_*.png"))[0]
NAMES = list(fcdata.IDX_FILES)
NETWORK_GUARD = ROOT / "tests" / "network_guard"


# ---------------------------------------------------------------------------------- helpers


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    merged = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fashion_course", *map(str, args)],
        capture_output=True, text=True, timeout=600, env=merged, cwd=cwd,
    )


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` (links not followed) with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if not p.is_symlink() else b"link",
                                     p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()
    }


def assert_refused(done, *phrases: str) -> str:
    """Non-zero exit, one line on stderr starting with 'error:', no traceback; returns it."""
    assert done.returncode not in (0, None), done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A small, valid course checkpoint: the hostile cases are about files, not accuracy."""
    path = tmp_path_factory.mktemp("model") / "model.pth"
    torch.manual_seed(0)
    fc.save_checkpoint(path, fc.NeuralNetwork(hidden=16))
    return path


# ------------------------------------------------------------------------ data files (IDX/gzip)


def _data_folder(real_data, folder: Path) -> Path:
    """The four real files, as links, flat in ``folder`` (the layout of a manual download)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        os.symlink(real_data.raw(name), folder / name)
    return folder


def _replace(folder: Path, name: str, data: bytes) -> Path:
    (folder / name).unlink()
    (folder / name).write_bytes(data)
    return folder / name


@pytest.mark.parametrize(
    "case, mangle, phrase",
    [
        ("truncated", lambda b: b[: len(b) // 2], "the file is truncated or altered"),
        ("altered", lambda b: b[:5000] + bytes([b[5000] ^ 0xFF]) + b[5001:], "wrong checksum"),
        ("wrong magic", lambda b: b"\x1f\x8b\x08\x03" + b[4:], "wrong checksum"),
    ],
)
def test_broken_idx_file_is_refused_and_left_alone(real_data, tmp_path, case, mangle, phrase):
    folder = _data_folder(real_data, tmp_path / "data")
    victim = _replace(folder, NAMES[-1], mangle(real_data.raw(NAMES[-1]).read_bytes()))
    before = snapshot(folder)

    with pytest.raises(fc.DataCorruptError, match=phrase) as info:
        fc.find_data(folder, download=False)
    assert str(victim) in str(info.value) and "get the data again" in str(info.value)

    line = assert_refused(run_cli("data", "--root", folder, "--no-download"), str(victim), phrase)
    assert "get the data again" in line
    assert snapshot(folder) == before  # not deleted, not replaced, nothing added


def test_wrong_magic_is_named_by_the_idx_reader(real_data, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x01" + real_data.raw(NAMES[-1]).read_bytes()[4:])
    with pytest.raises(fc.DataCorruptError, match="not an unsigned-byte IDX file") as info:
        fc.read_idx(path)
    assert "00000d01" in str(info.value)  # the bytes it found


def _gzip_bomb(path: Path, gigabytes: int) -> None:
    """A valid gzip file of a few MB that inflates to ``gigabytes`` GiB of zeros."""
    member = gzip.compress(bytes(64 * 2**20), compresslevel=9, mtime=0)  # 64 MiB -> ~65 kB
    with open(path, "wb") as fh:
        for _ in range(gigabytes * 16):
            fh.write(member)


@pytest.fixture
def inflated_bytes(monkeypatch) -> list[int]:
    """Counts every byte that gzip hands to the package while the test runs (read, read1, readinto,
    gzip.decompress): what the IDX reader asked to inflate, whatever it did with it afterwards."""
    counted: list[int] = []

    def counting(method):
        def wrapper(*args, **kwargs):
            result = method(*args, **kwargs)
            counted.append(result if isinstance(result, int) else len(result))
            return result
        return wrapper

    for name in ("read", "read1", "readinto", "readinto1"):
        monkeypatch.setattr(gzip.GzipFile, name, counting(getattr(gzip.GzipFile, name)))
    monkeypatch.setattr(gzip, "decompress", counting(gzip.decompress))
    return counted


def test_gzip_bomb_is_refused_after_reading_one_byte_too_many(real_data, tmp_path, inflated_bytes):
    folder = _data_folder(real_data, tmp_path / "data")
    (folder / NAMES[0]).unlink()
    bomb = folder / f"{NAMES[0]}.gz"
    _gzip_bomb(bomb, 4)
    assert bomb.stat().st_size < 5 * 2**20
    before = snapshot(folder)

    with pytest.raises(fc.DataCorruptError, match="decompresses to data larger than"):
        fc.find_data(folder, download=False)
    # Of the 4 GiB the file inflates to, exactly the expected size and one byte more were read.
    assert sum(inflated_bytes) == fcdata.IDX_FILES[NAMES[0]][0] + 1
    assert_refused(run_cli("data", "--root", folder, "--no-download"), str(bomb), "larger than")
    assert snapshot(folder) == before


@pytest.mark.parametrize("name", NAMES)
def test_every_idx_file_is_read_to_one_byte_past_its_size(real_data, tmp_path, inflated_bytes, name):
    """The same for each file, with a small bomb (64 MiB of zeros after the real bytes)."""
    folder = _data_folder(real_data, tmp_path / "data")
    (folder / name).unlink()
    real = real_data.raw(name).read_bytes()
    (folder / f"{name}.gz").write_bytes(gzip.compress(real + bytes(64 * 2**20), compresslevel=1, mtime=0))
    with pytest.raises(fc.DataCorruptError, match="decompresses to data larger than"):
        fc.find_data(folder, download=False)
    assert sum(inflated_bytes) == len(real) + 1


@pytest.fixture
def package_without_data(tmp_path) -> Path:
    """A copy of the package in a folder with no data/ beside it: a fresh checkout, no data."""
    shutil.copytree(ROOT / "fashion_course", tmp_path / "checkout" / "fashion_course",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "empty").mkdir()
    return tmp_path


@pytest.mark.parametrize("command", ["data", "train"])
@pytest.mark.parametrize("download", ["switched off", "fails"])
def test_no_data_anywhere_names_every_way_to_get_it(package_without_data, command, download):
    tmp = package_without_data
    # the copy first; then the network guard (tests/network_guard), which refuses every connection
    # to another machine in this subprocess too: "fails" is a download that really is attempted
    env = {"FASHION_COURSE_DATA": str(tmp / "empty"), "FASHION_COURSE_SYSTEM_DATA": str(tmp / "empty"),
           "PYTHONPATH": os.pathsep.join([str(tmp / "checkout"), str(NETWORK_GUARD)])}
    env["FASHION_COURSE_NO_DOWNLOAD"] = "1" if download == "switched off" else ""
    args = ["train", "--epochs", "1", "--out", tmp / "out"] if command == "train" else ["data"]
    done = run_cli(*args, env=env, cwd=tmp / "checkout")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("error: Fashion-MNIST was not found")
    for way in ("apt-get install dataset-fashion-mnist", "zalandoresearch/fashion-mnist",
                "FASHION_COURSE_DATA", "--root", "torchvision then downloads"):
        assert way in done.stderr
    assert ("downloading is switched off" if download == "switched off" else "download") in done.stderr
    assert not (tmp / "out" / "model.pth").exists()
    assert not any(p.is_file() for p in (tmp / "empty").rglob("*"))


# ------------------------------------------------------------------------------------ images


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _huge_png(path: Path, width: int, height: int) -> None:
    """A 200-byte PNG whose header declares ``width`` x ``height`` pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
                     + _png_chunk(b"IDAT", zlib.compress(bytes(1000))) + _png_chunk(b"IEND", b""))


def _not_an_image(path: Path) -> None:
    path.write_text("name,price\nshirt,10\n")


def _truncated_png(path: Path) -> None:
    path.write_bytes(EXAMPLE.read_bytes()[: EXAMPLE.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize(
    "make, name, phrases",
    [
        (_not_an_image, "prices.png", ["is not an image", "use a PNG or JPEG"]),
        (_empty, "empty.jpg", ["is not an image", "the file is empty"]),
        (_truncated_png, "half.png", ["is damaged or truncated", "save or export it again"]),
        (lambda p: _huge_png(p, 8_000, 8_000), "64mp.png",  # above the course's own limit
         ["is too large to handle", "8000x8000 pixels", "the limit is 40 megapixels", "shrink it"]),
        (lambda p: _huge_png(p, 12_000, 12_000), "144mp.png",  # where Pillow itself only warns
         ["is too large to handle", "144,000,000 pixels", "shrink it"]),
        (lambda p: _huge_png(p, 300_000, 300_000), "bomb.png",  # where Pillow refuses in open()
         ["is too large to handle", "90,000,000,000 pixels", "shrink it"]),
    ],
)
def test_bad_image_is_refused(tmp_path, tiny_model, make, name, phrases):
    path = tmp_path / name
    make(path)
    before = snapshot(tmp_path)
    with pytest.raises(fc.ImageError) as info:
        fc.prepare_image(path)
    for phrase in [str(path), *phrases]:
        assert phrase in str(info.value)
    assert_refused(run_cli("predict", EXAMPLE, path, "--model", tiny_model), str(path), *phrases)
    assert snapshot(tmp_path) == before


def test_huge_image_is_refused_before_it_is_decoded(tmp_path):
    path = tmp_path / "huge.png"
    _huge_png(path, 8_000, 8_000)  # 64 megapixels declared, 1,000 bytes of pixel data
    # Decoding would have failed on the missing data; the size check comes first.
    with pytest.raises(fc.ImageError, match="8000x8000 pixels"):
        fc.open_image(path)
    # The same file under a higher limit reaches the decoder, which reports the damage instead.
    with pytest.raises(fc.ImageError, match="damaged or truncated"):
        fc.open_image(path, max_pixels=80_000_000)


def test_missing_image_is_one_line(tmp_path, tiny_model):
    assert_refused(run_cli("predict", tmp_path / "nope.png", "--model", tiny_model), "does not exist")


# ------------------------------------------------------------------------ checkpoints and ONNX


class _Payload:
    """Unpickling this object would create a file: the shape of a real malicious checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _pickle_payload(path: Path, tiny_model: Path) -> None:
    payload = torch.load(tiny_model, weights_only=True)
    payload["metrics"] = _Payload(path.parent / "payload-ran")
    torch.save(payload, path)


def _other_architecture(path: Path, tiny_model: Path) -> None:
    payload = torch.load(tiny_model, weights_only=True)
    payload["state_dict"] = fc.FashionCNN(channels=(4, 8, 8)).state_dict()  # still says "mlp"
    torch.save(payload, path)


def _missing_keys(path: Path, tiny_model: Path) -> None:
    payload = torch.load(tiny_model, weights_only=True)
    del payload["state_dict"]["linear_relu_stack.4.bias"]
    torch.save(payload, path)


def _foreign_state_dict(path: Path, tiny_model: Path) -> None:
    from torchvision.models import resnet18

    torch.save(resnet18(num_classes=10).state_dict(), path)


def _truncated_checkpoint(path: Path, tiny_model: Path) -> None:
    path.write_bytes(tiny_model.read_bytes()[:4000])


def _wrong_input_onnx(path: Path, tiny_model: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["logits"])], "rgb32",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 32, 32])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)


def _not_onnx(path: Path, tiny_model: Path) -> None:
    path.write_bytes(b"\x08\x07garbage" * 10)


@pytest.mark.parametrize(
    "make, name, error, phrases",
    [
        (_pickle_payload, "evil.pth", fc.CheckpointError,
         ["was refused", "could run code", "Only load checkpoints you trust"]),
        (_other_architecture, "cnn_as_mlp.pth", fc.CheckpointError,
         ["do not fit a 'mlp' model", "different architecture"]),
        (_missing_keys, "missing.pth", fc.CheckpointError,
         ["do not fit a 'mlp' model", "linear_relu_stack.4.bias"]),
        (_foreign_state_dict, "resnet.pth", fc.CheckpointError,
         ["bare state_dict", "load_state_dict"]),
        (_truncated_checkpoint, "cut.pth", fc.CheckpointError,
         ["not a readable PyTorch checkpoint", "truncated"]),
        (_wrong_input_onnx, "rgb.onnx", fc.OnnxModelError,
         ["expects input [[1, 3, 32, 32]]", "(batch, 1, 28, 28)", "python -m fashion_course export"]),
        (_not_onnx, "junk.onnx", fc.OnnxModelError, ["is not a loadable ONNX model"]),
    ],
)
def test_bad_model_file_is_refused(tmp_path, tiny_model, make, name, error, phrases):
    path = tmp_path / name
    make(path, tiny_model)
    (tmp_path / "model.onnx").write_bytes(b"the previous export")
    before = snapshot(tmp_path)

    with pytest.raises(error) as info:
        fc.load_classifier(path)
    for phrase in [str(path), *phrases]:
        assert phrase in str(info.value), str(info.value)

    assert_refused(run_cli("predict", EXAMPLE, "--model", path), str(path), *phrases)
    assert_refused(run_cli("evaluate", path), str(path))
    if path.suffix == ".pth":  # export must fail before it touches the existing target
        assert_refused(run_cli("export", path, "-o", tmp_path / "model.onnx"), str(path))
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "payload-ran").exists()


def test_the_pickle_payload_is_real(tmp_path, tiny_model):
    """The refused checkpoint above does run code when loaded the unsafe way (so the test can fail)."""
    path = tmp_path / "evil.pth"
    _pickle_payload(path, tiny_model)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert not (tmp_path / "payload-ran").exists()
    subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(path)!r}, weights_only=False)"],
                   check=False, capture_output=True, timeout=300)
    assert (tmp_path / "payload-ran").exists()
