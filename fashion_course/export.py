"""Checkpoints that describe themselves, and ONNX export checked against onnxruntime.

Taught in 06_save_load_onnx. Files are written beside their target and renamed into place, so a
run killed during a save leaves the previous file intact. Checkpoints load with
``weights_only=True``: a pickle that would run code is refused, never executed.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data import CLASSES, MEAN, STD
from .models import IMAGE_SHAPE, build_model, model_name

__all__ = [
    "CheckpointError",
    "OnnxModelError",
    "atomic_path",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "export_onnx",
    "onnx_session",
    "onnx_logits",
    "onnx_parity",
    "LoadedModel",
    "load_any",
]

FORMAT = "fashion_course.checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot (or must not) be loaded; the message says why and what to do."""


class OnnxModelError(Exception):
    """An ONNX file that is missing, unreadable or does not take the images it is given."""


def model_classes(model: nn.Module, classes=None) -> tuple[str, ...]:
    """The class names for a model: ``classes`` if given, else its own, else Fashion-MNIST's.

    Refuses names whose count differs from the model's number of outputs, since every plot and
    report would then put the wrong name on a class.
    """
    names = tuple(str(c) for c in (classes if classes is not None else
                                   getattr(model, "classes", CLASSES)))
    outputs = getattr(model, "config", {}).get("num_classes")
    if outputs is not None and outputs != len(names):
        raise ValueError(
            f"{type(model).__name__} has {outputs} outputs but {len(names)} class names were "
            f"given ({', '.join(names[:12])}); pass classes= with one name per output"
        )
    return names


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A process killed while writing (SIGKILL, power loss) cannot clean up: its hidden
    ``.NAME.PID.XXXX.tmp`` file stays beside the intact target. The next successful save of the
    same file removes such files once the process that wrote them no longer exists.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it normal permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
        _remove_debris(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists (POSIX)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else, or we cannot tell: keep its file
        return True
    return True


def _remove_debris(path: Path) -> None:
    """Delete the temporary files of earlier saves of ``path`` whose writing process is gone."""
    if os.name != "posix":  # on Windows os.kill would end the process instead of asking
        return
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.\w+\.tmp")
    for candidate in path.parent.iterdir():
        match = pattern.fullmatch(candidate.name)
        if match and int(match.group(1)) != os.getpid() and not _process_exists(int(match.group(1))):
            with contextlib.suppress(OSError):
                candidate.unlink()


def _is_channels_last(model: nn.Module) -> bool:
    weights = [p for p in model.parameters() if p.dim() == 4]
    # (a weight with one input channel is contiguous in both layouts, so "any" for the second)
    return (
        bool(weights)
        and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
        and any(not p.is_contiguous() for p in weights)
    )


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    epoch: int | None = None,
    metrics: dict | None = None,
    normalization: tuple[float, float] | None = None,
    classes=None,
) -> Path:
    """Save weights plus everything needed to rebuild and use the model; returns the path.

    The file holds only tensors, numbers, strings, lists and dicts, so it loads with
    ``weights_only=True``. Pass ``optimizer`` and ``epoch`` to make it resumable, and
    ``classes`` (one name per output) for a model of your own dataset; the default is the
    model's ``classes`` attribute (set by :func:`load_model`), else Fashion-MNIST's.
    """
    mean, std = normalization or getattr(model, "normalization", (MEAN, STD))
    names = model_classes(model, classes)
    payload = {
        "format": FORMAT,
        "architecture": model_name(model),
        "config": dict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "classes": list(names),
        "normalization": {"mean": float(mean), "std": float(std)},
        "torch_version": torch.__version__.split("+")[0],
        # the memory layout the model was trained in: restored on loading, so that the reloaded
        # model computes bit for bit what the saved one did
        "channels_last": _is_channels_last(model),
    }
    if optimizer is not None:
        payload["optimizer_state_dict"] = optimizer.state_dict()
    if epoch is not None:
        payload["epoch"] = int(epoch)
    if metrics:
        payload["metrics"] = {k: float(v) for k, v in metrics.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, *, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` onto ``map_location`` (CPU by default)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist; train a model first with `python -m fashion_course train`"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's first line is generic (and has terminal colour codes); the useful one names
        # the global that was refused, e.g. "Unsupported global: GLOBAL builtins.print ..."
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
        lines = [line for line in lines if line]
        reason = next((line for line in lines if "Unsupported global" in line), lines[0] if lines else "")
        reason = reason.removeprefix("WeightsUnpickler error: ").split(". Please use")[0]
        raise CheckpointError(
            f"{path} was refused: it contains pickled Python objects that could run code when "
            f"loaded ({reason[:160]}). Only load checkpoints you trust; re-save it as a plain "
            "state_dict"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:160]}); "
            "it may be truncated or another kind of file"
        ) from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path} holds a {type(payload).__name__}, not a checkpoint dict")
    if payload.get("format") != FORMAT:
        if all(isinstance(v, torch.Tensor) for v in payload.values()):
            raise CheckpointError(
                f"{path} is a bare state_dict without a description of its model; load it with "
                "model.load_state_dict(torch.load(path, weights_only=True)) into the right model"
            )
        raise CheckpointError(f"{path} is not a fashion_course checkpoint (no format marker)")
    return payload


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model a checkpoint describes, load its weights, and put it in eval mode."""
    payload = load_checkpoint(path)
    try:
        model = build_model(payload["architecture"], **payload.get("config", {}))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild its model ({exc})") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise CheckpointError(
            f"{path}: its weights do not fit a {payload['architecture']!r} model ({detail}); "
            "the file was saved from a different architecture or edited"
        ) from None
    if payload.get("channels_last") is True:
        model = model.to(memory_format=torch.channels_last)
    norm = payload.get("normalization", {"mean": MEAN, "std": STD})
    model.normalization = (norm["mean"], norm["std"])
    classes = payload.get("classes", CLASSES)
    try:
        model.classes = model_classes(model, classes)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return model.to(device).eval()


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    dynamic_batch: bool = True,
    opset_version: int = 18,
    classes=None,
) -> Path:
    """Export to ONNX with input ``images`` of shape ``(batch, 1, 28, 28)``, written atomically.

    (A model built for other images, ``in_channels``/``image_size``, takes its own shape.) With
    ``dynamic_batch`` the batch dimension is symbolic, so the file accepts any batch size. The
    normalisation statistics and class names (``classes``, else the model's, else Fashion-MNIST's)
    are stored in the file's metadata.
    """
    import onnx

    names = model_classes(model, classes)

    # The exporter traces a copy in the default memory format: a channels_last model (the CNN
    # recipe's) computes the same function, but its strides confuse the dynamic batch dimension.
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    device = next(model.parameters()).device
    # a dynamic batch is traced with 2 examples: a batch of 1 would be taken for a constant
    shape = getattr(model, "input_shape", IMAGE_SHAPE)
    dummy = torch.zeros(2 if dynamic_batch else 1, *shape, device=device)
    dynamic_shapes = {"x": {0: torch.export.Dim("batch", min=1, max=65536)}} if dynamic_batch else None
    path = Path(path)
    with atomic_path(path) as tmp:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            program = torch.onnx.export(
                model, (dummy,), dynamo=True, input_names=["images"], output_names=["logits"],
                dynamic_shapes=dynamic_shapes, opset_version=opset_version, verbose=False,
            )
        proto = program.model_proto
        mean, std = getattr(model, "normalization", (MEAN, STD))
        for key, value in {
            "architecture": model_name(model),
            "classes": "|".join(names),
            "mean": str(mean),
            "std": str(std),
        }.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save_model(proto, str(tmp))
    return path


def onnx_session(path: str | os.PathLike, *, input_shape: tuple[int, int, int] | None = IMAGE_SHAPE):
    """An onnxruntime CPU session for a course ONNX file, refusing files that don't take 28x28.

    ``input_shape`` is the ``(channels, height, width)`` the file must take; None accepts any
    single image-batch input (a model built for other images).
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"{path} does not exist; export one with `python -m fashion_course export`")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise OnnxModelError(
            f"{path} is not a loadable ONNX model ({str(exc).splitlines()[0][:200]})"
        ) from None
    inputs = session.get_inputs()
    shape = inputs[0].shape if len(inputs) == 1 else None
    wanted = list(input_shape) if input_shape is not None else None
    if (shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:])
            or (wanted is not None and list(shape[1:]) != wanted)):
        expected = f"(batch, {', '.join(map(str, wanted))})" if wanted else "(batch, C, H, W)"
        raise OnnxModelError(
            f"{path} expects input {[i.shape for i in inputs]}, not one {expected} image "
            "batch; export a course model with `python -m fashion_course export`"
        )
    return session


def onnx_logits(session, X) -> torch.Tensor:
    """Run a session on a batch (tensor or array, ``(N, 1, 28, 28)``); returns logits as a tensor."""
    import numpy as np

    array = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    array = array.astype(np.float32, copy=False)
    fixed, *expected = session.get_inputs()[0].shape
    if list(array.shape[1:]) != expected:
        raise OnnxModelError(
            f"this ONNX model expects a batch of images of shape (batch, "
            f"{', '.join(map(str, expected))}), but got {tuple(array.shape)}: convert your "
            "images to that shape first"
        )
    if isinstance(fixed, int) and fixed != len(array):
        raise OnnxModelError(
            f"this ONNX model was exported for batches of exactly {fixed} but got {len(array)}; "
            "export it again with a dynamic batch dimension"
        )
    name = session.get_inputs()[0].name
    return torch.from_numpy(session.run(None, {name: array})[0])


def onnx_parity(model: nn.Module, session, X: torch.Tensor) -> float:
    """Max absolute difference between PyTorch's and onnxruntime's logits on ``X``."""
    from .training import predict

    return (predict(model, X) - onnx_logits(session, X)).abs().max().item()


@dataclass(frozen=True)
class LoadedModel:
    """A saved model ready to run: ``logits_fn(X)`` on a normalised batch, and what it expects."""

    logits_fn: Callable[[torch.Tensor], torch.Tensor]
    normalization: tuple[float, float]
    classes: tuple[str, ...]
    input_shape: tuple[int, int, int]


def load_any(path: str | os.PathLike) -> LoadedModel:
    """Load a ``.pth`` checkpoint or an ``.onnx`` file behind one interface.

    Used by ``python -m fashion_course evaluate`` and :func:`fashion_course.load_classifier`; the
    class names and normalisation come from the file (Fashion-MNIST's when an ONNX file has none).
    """
    path = Path(path)
    if path.suffix == ".onnx":
        # only files that take Fashion-MNIST's (1, 28, 28): what `predict` and `evaluate` feed
        # them; a file of other images is read with onnx_session(path, input_shape=...)
        session = onnx_session(path)
        meta = session.get_modelmeta().custom_metadata_map
        norm = (float(meta.get("mean", MEAN)), float(meta.get("std", STD)))
        classes = tuple(meta["classes"].split("|")) if meta.get("classes") else CLASSES
        shape = tuple(session.get_inputs()[0].shape[1:])
        return LoadedModel(lambda X: onnx_logits(session, X), norm, classes, shape)
    from .training import predict

    model = load_model(path)
    return LoadedModel(
        lambda X: predict(model, X), model.normalization, model.classes, tuple(model.input_shape)
    )
