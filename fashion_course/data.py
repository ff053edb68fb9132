"""Find, verify and load Fashion-MNIST, offline first.

Taught in 02_datasets_and_transforms. The files are looked for, in order, in an explicit ``root``,
the ``FASHION_COURSE_DATA`` folder, the repository's ``data/``, Debian's ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``), and last downloaded by torchvision. Every file is checked
(size and SHA-256 of the decompressed IDX file) before use, and laid out as
``ROOT/FashionMNIST/raw/<name>`` so that ``torchvision.datasets.FashionMNIST(ROOT)`` works too.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = [
    "CLASSES",
    "labels_map",
    "MEAN",
    "STD",
    "IDX_FILES",
    "DataError",
    "DataNotFoundError",
    "DataCorruptError",
    "DataSource",
    "default_data_dir",
    "find_data",
    "read_idx",
    "load_tensors",
    "fashion_mnist",
]

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
labels_map = dict(enumerate(CLASSES))

# Mean and standard deviation of all 60,000 training pixels scaled to [0, 1]; tests recompute them.
MEAN = 0.2860
STD = 0.3530

# name -> (size in bytes, SHA-256) of the decompressed IDX file.
IDX_FILES = {
    "train-images-idx3-ubyte": (
        47_040_016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte": (
        60_008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte": (
        7_840_016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte": (
        10_008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

ENV_DATA = "FASHION_COURSE_DATA"
ENV_SYSTEM = "FASHION_COURSE_SYSTEM_DATA"  # where Debian's copy lives; tests point it elsewhere
ENV_NO_DOWNLOAD = "FASHION_COURSE_NO_DOWNLOAD"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
_REPO = Path(__file__).resolve().parent.parent

HOW_TO_GET_DATA = f"""Fashion-MNIST was not found. Any one of these fixes it:
  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist   (files land in {SYSTEM_DIR})
  2. copy the four files train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,
     t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (from the Fashion-MNIST GitHub
     repository, zalandoresearch/fashion-mnist) into {_REPO / 'data'}
  3. put them in any folder and set {ENV_DATA}=/that/folder (or pass root=... / --root)
  4. connect to the internet once: torchvision then downloads them into the data folder"""


class DataError(Exception):
    """Base class for dataset problems a learner can fix; the message says how."""


class DataNotFoundError(DataError, FileNotFoundError):
    """No copy of Fashion-MNIST was found anywhere and it could not be downloaded."""


class DataCorruptError(DataError, ValueError):
    """A file was found but is truncated, altered or not an IDX file at all."""


@dataclass(frozen=True)
class DataSource:
    """Where the data came from (``origin``, ``found_in``) and the torchvision ``root`` to use."""

    root: Path
    origin: str
    found_in: Path

    def raw(self, name: str) -> Path:
        return self.root / "FashionMNIST" / "raw" / name

    def __str__(self) -> str:
        return f"Fashion-MNIST from {self.origin} ({self.found_in}), laid out in {self.root}"


def default_data_dir() -> Path:
    """``FASHION_COURSE_DATA`` if set, else the repository's ``data/`` folder."""
    env = os.environ.get(ENV_DATA)
    return Path(env).expanduser() if env else _REPO / "data"


def _candidates(root: str | os.PathLike | None) -> list[tuple[Path, str]]:
    if root is not None:
        return [(Path(root).expanduser(), "the folder you passed")]
    found = []
    if os.environ.get(ENV_DATA):
        found.append((Path(os.environ[ENV_DATA]).expanduser(), f"${ENV_DATA}"))
    found.append((_REPO / "data", "the repository's data/ folder"))
    system = Path(os.environ.get(ENV_SYSTEM) or SYSTEM_DIR)
    found.append((system, "Debian's dataset-fashion-mnist package"))
    return found


def _locate(folder: Path, name: str) -> Path | None:
    """The first of the places a file of this name is usually kept, or None."""
    for path in (
        folder / "FashionMNIST" / "raw" / name,
        folder / name,
        folder / "FashionMNIST" / "raw" / f"{name}.gz",
        folder / f"{name}.gz",
    ):
        if path.is_file():
            return path
    return None


def _read_checked(path: Path, name: str) -> bytes:
    """The decompressed bytes of ``path``, refused unless size and SHA-256 match."""
    size, digest = IDX_FILES[name]
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read(size + 1)  # never inflate more than one byte past the expected size
        else:
            if path.stat().st_size != size:
                raise DataCorruptError(
                    f"{path} has {path.stat().st_size:,} bytes but {name} must have {size:,}: "
                    "the file is truncated or altered; delete it and get the data again"
                )
            data = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataCorruptError(
            f"{path} cannot be read as {name} ({exc}); delete it and get the data again"
        ) from None
    if len(data) != size:
        what = "larger than" if len(data) > size else "smaller than"
        raise DataCorruptError(
            f"{path} decompresses to data {what} the {size:,} bytes of {name}: the file is "
            "truncated or altered; delete it and get the data again"
        )
    if hashlib.sha256(data).hexdigest() != digest:
        raise DataCorruptError(
            f"{path} has the right size but the wrong checksum for {name}: the file is altered; "
            "delete it and get the data again"
        )
    return data


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; a data file is not
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _lay_out(found: dict[str, Path], target: Path) -> Path:
    """Verify every file and write the decompressed copies under ``target/FashionMNIST/raw``."""
    contents = {name: _read_checked(path, name) for name, path in found.items()}
    for name, data in contents.items():
        destination = target / "FashionMNIST" / "raw" / name
        if found[name] != destination:
            if destination.exists():
                _read_checked(destination, name)  # never overwrite a file we were not asked to
            else:
                _write_atomic(destination, data)
    return target


def _download(target: Path) -> None:
    from torchvision import datasets

    quiet = io.StringIO()  # torchvision prints one line per mirror it tries
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            for train in (True, False):
                datasets.FashionMNIST(str(target), train=train, download=True)
    except Exception as exc:  # any network or HTTP failure ends the same way
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise DataNotFoundError(
            f"{HOW_TO_GET_DATA}\n(the download into {target} failed: {reason})"
        ) from None


def find_data(
    root: str | os.PathLike | None = None, *, download: bool | None = None
) -> DataSource:
    """Find Fashion-MNIST, verify it and return where it is; download only as a last resort.

    ``download`` defaults to True unless ``FASHION_COURSE_NO_DOWNLOAD`` is set. Raises
    :class:`DataNotFoundError` naming every way to get the data, or :class:`DataCorruptError`
    naming a bad file (which is left where it is).
    """
    if download is None:
        download = not os.environ.get(ENV_NO_DOWNLOAD)
    for folder, origin in _candidates(root):
        found = {name: _locate(folder, name) for name in IDX_FILES}
        if not any(found.values()):
            continue
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise DataCorruptError(
                f"{folder} has only part of Fashion-MNIST (missing {', '.join(missing)}); add the "
                "missing files or remove the others"
            )
        writable = origin != "Debian's dataset-fashion-mnist package"
        target = folder if writable else (Path(root) if root else default_data_dir())
        return DataSource(root=_lay_out(found, target), origin=origin, found_in=folder)
    target = Path(root).expanduser() if root is not None else default_data_dir()
    if not download:
        raise DataNotFoundError(f"{HOW_TO_GET_DATA}\n(downloading is switched off)")
    _download(target)
    found = {name: _locate(target, name) for name in IDX_FILES}
    _lay_out(found, target)
    return DataSource(root=target, origin="a torchvision download", found_in=target)


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (images or labels) into a uint8 tensor, checking its header first."""
    path = Path(path)
    try:
        data = path.read_bytes() if path.suffix != ".gz" else gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataCorruptError(f"{path} cannot be read as an IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08 or not 1 <= data[3] <= 4:
        raise DataCorruptError(
            f"{path} is not an unsigned-byte IDX file (its first 4 bytes are {data[:4].hex()}, "
            "expected 0000080X); it may be compressed twice, truncated or another format"
        )
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataCorruptError(f"{path} ends inside its header; the file is truncated")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + int(torch.tensor(shape).prod())
    if len(data) != expected:
        raise DataCorruptError(
            f"{path} declares shape {tuple(shape)} ({expected:,} bytes) but has {len(data):,} "
            "bytes; the file is truncated or altered"
        )
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


def load_tensors(
    train: bool = True, *, root: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split as two tensors: images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64."""
    source = find_data(root)
    prefix = "train" if train else "t10k"
    images = read_idx(source.raw(f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(source.raw(f"{prefix}-labels-idx1-ubyte")).long()
    return images, labels


def fashion_mnist(
    train: bool = True,
    *,
    root: str | os.PathLike | None = None,
    transform=None,
    target_transform=None,
):
    """``torchvision.datasets.FashionMNIST`` on the verified local copy (never downloads twice).

    ``transform`` defaults to ``ToTensor()``: a 1x28x28 float image in [0, 1].
    """
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    source = find_data(root)
    return datasets.FashionMNIST(
        root=str(source.root),
        train=train,
        download=False,
        transform=ToTensor() if transform is None else transform,
        target_transform=target_transform,
    )
