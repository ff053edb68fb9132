"""Training on several processes with DistributedDataParallel (DDP), launched by ``torchrun``.

Taught in 10_distributed. Each process (a *rank*) holds a replica of the model and trains on its
own shard of every batch; after ``backward`` DDP averages the gradients over all ranks with an
all-reduce, so every replica takes the same step. Here: setting up and tearing down the process
group (gloo on the CPU, NCCL on CUDA GPUs), sharding the in-memory loader by rank, output from
rank 0 only, and per-epoch snapshots from which a restarted group resumes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistributedSetupError",
    "DistributedContext",
    "launched_by_torchrun",
    "choose_backend",
    "setup_distributed",
    "teardown_distributed",
    "print0",
    "check_batch_split",
    "ShardedLoader",
    "save_snapshot",
    "load_snapshot",
    "train_distributed",
    "free_port",
    "check_port",
    "TorchrunRun",
    "run_torchrun",
    "worker_pids",
]


class DistributedSetupError(ValueError):
    """A set-up that cannot work (backend, world size, port); the message says what to change."""


@dataclass(frozen=True)
class DistributedContext:
    """Who this process is: ``rank`` of ``world_size``, ``local_rank`` on its machine, and where."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints, saves and exports."""
        return self.rank == 0


def launched_by_torchrun() -> bool:
    """True in a worker that ``torchrun`` started (it sets RANK, WORLD_SIZE, LOCAL_RANK...)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def choose_backend(device: str | torch.device, requested: str | None = None) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise; a requested backend is checked, not trusted.

    ``requested`` (or the ``FASHION_COURSE_BACKEND`` environment variable) overrides the choice;
    NCCL talks only to NVIDIA GPUs, so asking for it without one is an error, not a hang.
    """
    device = torch.device(device)
    wanted = requested or os.environ.get("FASHION_COURSE_BACKEND") or None
    if wanted is None:
        return "nccl" if device.type == "cuda" else "gloo"
    wanted = wanted.lower()
    if wanted not in ("gloo", "nccl"):
        raise DistributedSetupError(f"unknown backend {wanted!r}; use 'gloo' (CPU) or 'nccl' (CUDA GPUs)")
    if wanted == "nccl" and not torch.cuda.is_available():
        raise DistributedSetupError(
            "backend 'nccl' needs CUDA GPUs and this PyTorch sees none; use 'gloo', the default on "
            "the CPU (check --backend and FASHION_COURSE_BACKEND)")
    if wanted == "nccl" and device.type != "cuda":
        raise DistributedSetupError(
            f"backend 'nccl' works on CUDA tensors only, but the device is {device.type!r}; "
            "use --device cuda, or the backend 'gloo'")
    return wanted


def setup_distributed(
    device: str | torch.device | None = None, backend: str | None = None, *, timeout_s: float = 300
) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment; returns the context.

    Each rank on a CUDA machine takes the GPU of its ``LOCAL_RANK``. Outside ``torchrun`` this is
    a group of one and no process group is created.
    """
    from .environment import choose_device

    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = choose_device(device)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedSetupError(
                f"local rank {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per node (--nproc-per-node)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = choose_backend(device, backend)
    if launched_by_torchrun() and not dist.is_initialized():
        dist.init_process_group(backend, store=_attempt_store(rank, world_size, timeout_s), rank=rank,
                                world_size=world_size, timeout=timedelta(seconds=timeout_s))
    return DistributedContext(rank, world_size, local_rank, backend, device)


def _attempt_store(rank: int, world_size: int, timeout_s: float):
    """torchrun's key-value store, with keys of their own for each restart of the group.

    With a c10d rendezvous, torchrun keeps one store for all restarts; the keys the killed group
    left behind (where each rank listened) could send a restarted rank to a dead address, where it
    would wait until the timeout. A prefix per restart (``TORCHELASTIC_RESTART_COUNT``) avoids it.
    """
    agent_hosts = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size,
                          is_master=rank == 0 and not agent_hosts, timeout=timedelta(seconds=timeout_s))
    return dist.PrefixStore(f"fashion_course/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', 0)}",
                            store)


def teardown_distributed() -> None:
    """Leave the process group (every rank, at the end, also after an error)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def print0(*args, **kwargs) -> None:
    """``print`` on rank 0 only (every rank runs the same script: one copy of each line is enough)."""
    if int(os.environ.get("RANK", 0)) == 0:
        print(*args, **{"flush": True, **kwargs})


def check_batch_split(batch_size: int, world_size: int) -> None:
    """Raise :class:`DistributedSetupError` unless ``world_size`` processes can share a batch equally."""
    if world_size < 1 or batch_size % world_size:
        raise DistributedSetupError(
            f"{world_size} processes cannot share a batch of {batch_size} equally; start a number "
            f"of processes that divides {batch_size} (e.g. 1, 2 or 4)")


class ShardedLoader:
    """This rank's share of every batch of an :class:`~fashion_course.InMemoryLoader`.

    All ranks draw the same order for an epoch (seeded with ``seed + epoch``, as torch's
    ``DistributedSampler`` does, so call :meth:`set_epoch` before each epoch or every epoch repeats
    the first one's order); each global batch of ``batch_size`` samples is cut into ``world_size``
    equal shards, and rank ``r`` takes shard ``r``. Augmentation is drawn for the whole batch, so
    the ranks together see exactly the batches that one process would see.
    """

    def __init__(self, loader, *, rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        check_batch_split(loader.batch_size, world_size)
        self.loader, self.rank, self.world_size, self.seed = loader, rank, world_size, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Steps per epoch: a last batch smaller than the number of ranks is left out."""
        full, last = divmod(self.loader.num_samples, self.loader.batch_size)
        return full + (0 if self.loader.drop_last or last < self.world_size else 1)

    @property
    def num_samples(self) -> int:
        """Samples all ranks together train on in an epoch."""
        full, last = divmod(self.loader.num_samples, self.loader.batch_size)
        if self.loader.drop_last:
            last = 0
        return full * self.loader.batch_size + last - last % self.world_size

    def __iter__(self):
        from .loaders import alternating_flips

        source = self.loader
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        n = source.num_samples
        if source.shuffle:
            order = torch.randperm(n, generator=generator).to(source.device)
        else:
            order = torch.arange(n, device=source.device)
        for i in range(len(self)):
            index = order[i * source.batch_size : (i + 1) * source.batch_size]
            X = source.X[index]
            if source.flip_phase is not None:  # the loader's alternate_flips: by this epoch's parity
                X = alternating_flips(X, index, source.flip_phase, self.epoch)
            if source.augment is not None:
                X = source.augment(X, generator=generator)
            share = len(index) // self.world_size  # a short last batch loses at most W-1 samples
            mine = slice(self.rank * share, (self.rank + 1) * share)
            yield X[mine], source.y[index][mine]


def save_snapshot(path, *, model: nn.Module, optimizer, scheduler, epoch: int, history,
                  run: dict) -> Path:
    """Everything needed to continue after ``epoch``, written atomically (call it on rank 0)."""
    from .export import atomic_path

    payload = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch, "history": history.as_dict(), "run": run,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_snapshot(path, run: dict) -> dict | None:
    """The snapshot at ``path`` (None when there is none); refused if another run wrote it."""
    path = Path(path)
    if not path.exists():
        return None
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("run") != run:
        raise DistributedSetupError(
            f"the snapshot {path.name} was saved by a different run (model, epochs or seed differ); "
            "delete it, or choose another --out folder")
    return payload


def _snapshot_from_rank0(path, run: dict, ctx: DistributedContext) -> dict | None:
    """Rank 0's snapshot, sent to every rank: on several machines only rank 0's disk holds it."""
    found: list = [None, None]
    if ctx.is_main:
        try:
            found[0] = load_snapshot(path, run)
        except (DistributedSetupError, OSError, RuntimeError) as exc:
            found[1] = str(exc)
    if dist.is_initialized() and ctx.world_size > 1:
        dist.broadcast_object_list(found, src=0)
    if found[1] is not None:
        raise DistributedSetupError(found[1])
    return found[0]


def _run_description(recipe, seed: int, sync_bn: bool, train_images: int | None) -> dict:
    return {"recipe": asdict(recipe), "seed": seed, "sync_bn": sync_bn, "train_images": train_images}


def _all_sum(values: list[float], ctx: DistributedContext) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    if dist.is_initialized():
        dist.all_reduce(tensor)  # every rank gets the sum over all ranks
    return tensor.tolist()


def _test_sharded(model: nn.Module, loader, loss_fn, ctx: DistributedContext) -> tuple[float, float]:
    """Loss and accuracy on the whole split, each rank evaluating one contiguous part of it.

    Every rank first takes rank 0's buffers (batch norm's running averages). DDP copies them from
    rank 0 at the start of each training forward pass, but that pass then updates each rank's copy
    with its own shard, so after training they differ slightly; without this the ranks would score
    slightly different models, none of them exactly the one rank 0 saves.
    """
    if dist.is_initialized() and ctx.world_size > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
    n = loader.num_samples
    start, stop = n * ctx.rank // ctx.world_size, n * (ctx.rank + 1) // ctx.world_size
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(start, stop, loader.batch_size):
            end = min(i + loader.batch_size, stop)
            X, y = loader.X[i:end], loader.y[i:end]
            pred = model(X)
            loss_sum += loss_fn(pred, y).item() * len(y)
            correct += (pred.argmax(1) == y).sum().item()
    loss_sum, correct = _all_sum([loss_sum, correct], ctx)
    return loss_sum / n, correct / n


def train_distributed(
    recipe,
    ctx: DistributedContext,
    *,
    root=None,
    epochs: int | None = None,
    seed: int = 0,
    snapshot=None,
    sync_bn: bool = False,
    train_images: int | None = None,
    on_epoch=None,
    log=None,
):
    """Train a recipe under DDP on every rank; returns ``(model, history)`` (the plain model).

    Every rank starts from the same seed; ``snapshot`` (a path) is written by rank 0 after each
    epoch and, when it exists at the start, training resumes after the epoch it holds. The
    effective batch is the recipe's batch: each of the ``world_size`` ranks computes
    ``batch_size / world_size`` samples of it, so the learning rate stays the recipe's.
    ``log`` (e.g. :func:`print0`) gets a line for the resume, each epoch and the throughput.
    ``train_images`` keeps only the first that many training images: a quick look at the mechanism.
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .loaders import in_memory_loaders
    from .training import (
        RECIPES,
        History,
        augmentation,
        build_recipe_model,
        make_optimizer,
        prepare_model,
        train_loop,
    )

    recipe = RECIPES[recipe] if isinstance(recipe, str) else recipe
    epochs = epochs or recipe.epochs
    recipe = replace(recipe, epochs=epochs)
    torch.manual_seed(seed)
    model = build_recipe_model(recipe).to(ctx.device)
    if sync_bn:
        if ctx.device.type == "cpu":
            raise DistributedSetupError("SyncBatchNorm runs on GPUs only; leave out --sync-bn on the CPU")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    train_loader, test_loader = in_memory_loaders(
        recipe.batch_size, root=root, device=ctx.device, normalize=recipe.normalize,
        augment=augmentation(recipe), seed=seed,
        alternate_flips=recipe.alternates_flips)
    if train_images is not None:
        if not 0 < train_images <= train_loader.num_samples:
            raise DistributedSetupError(
                f"train_images must be between 1 and {train_loader.num_samples}, got {train_images}")
        train_loader.X, train_loader.y = train_loader.X[:train_images], train_loader.y[:train_images]
    prepare_model(recipe, model, train_loader)  # the same data on every rank: the same stem
    shards = ShardedLoader(train_loader, rank=ctx.rank, world_size=ctx.world_size, seed=seed)
    optimizer, scheduler = make_optimizer(recipe, model, len(shards))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    history, first = History(), 1
    run = _run_description(recipe, seed, sync_bn, train_images)
    state = _snapshot_from_rank0(snapshot, run, ctx) if snapshot is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history, first = History(**state["history"]), state["epoch"] + 1
        if log is not None:
            log(f"resuming from epoch {first} (snapshot of epoch {state['epoch']}: {Path(snapshot).name})")
    # DDP copies rank 0's weights to every rank, then averages gradients in buckets during backward
    ddp = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    for epoch in range(first, epochs + 1):
        shards.set_epoch(epoch)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        start = time.perf_counter()
        train_loss, train_acc = train_loop(shards, ddp, loss_fn, optimizer, scheduler=scheduler)
        if ctx.device.type == "cuda":
            torch.cuda.synchronize(ctx.device)
        seconds = time.perf_counter() - start
        train_loss, train_acc, seconds = (v / ctx.world_size for v in _all_sum(
            [train_loss, train_acc, seconds], ctx))
        test_loss, test_acc = _test_sharded(model, test_loader, loss_fn, ctx)
        history.train_loss.append(train_loss)
        history.train_accuracy.append(train_acc)
        history.test_loss.append(test_loss)
        history.test_accuracy.append(test_acc)
        history.seconds.append((history.seconds[-1] if history.seconds else 0.0) + seconds)
        if snapshot is not None and ctx.is_main:
            save_snapshot(snapshot, model=model, optimizer=optimizer, scheduler=scheduler,
                          epoch=epoch, history=history, run=run)
        if log is not None:
            log(f"epoch {epoch:2d}/{epochs}: train loss {train_loss:.4f}  test loss {test_loss:.4f}  "
                f"test accuracy {test_acc:.2%}  ({seconds:.1f} s, {shards.num_samples / seconds:,.0f} "
                f"images/s){'; snapshot saved' if snapshot is not None else ''}")
        if on_epoch is not None:
            on_epoch(epoch, history)
    if log is not None and history.seconds:
        log(f"throughput: {shards.num_samples * len(history.seconds) / history.seconds[-1]:,.0f} "
            f"images/s over {len(history.seconds)} epochs on {ctx.world_size} processes")
    model.normalization = (train_loader.mean, train_loader.std)
    return model, history


# --- launching torchrun from Python (the notebook and the tests) ----------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nobody listens on right now (the system picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_port(port: int, host: str = "127.0.0.1") -> None:
    """Raise :class:`DistributedSetupError` when ``port`` on ``host`` is taken.

    torchrun itself would fail there with a long traceback (static rendezvous) or wait for minutes
    (c10d rendezvous, which takes the busy port for another agent's).
    """
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            raise DistributedSetupError(
                f"port {port} on {host} is already in use (another training run, or another program); "
                f"choose a free one, e.g. {free_port(host)}") from None


def _ports(args: list[str]) -> list[int]:
    ports = []
    for i, arg in enumerate(args[:-1]):
        value = args[i + 1]
        if arg in ("--master-port", "--master_port"):
            ports.append(int(value))
        elif arg in ("--rdzv-endpoint", "--rdzv_endpoint") and ":" in value:
            ports.append(int(value.rsplit(":", 1)[1]))
    return ports


@dataclass
class TorchrunRun:
    """One torchrun agent: its ``returncode``, its ``output`` (stdout and stderr) and ``seconds``."""

    returncode: int | None
    output: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.output.splitlines()


def worker_pids(agent_pid: int) -> dict[int, int]:
    """``{rank: pid}`` of the workers a torchrun agent has started (to kill one, as a failure would)."""
    import psutil

    pids = {}
    for child in psutil.Process(agent_pid).children(recursive=True):
        try:
            rank = child.environ().get("RANK")
        except (psutil.Error, OSError):
            continue
        if rank is not None:
            pids[int(rank)] = child.pid
    return pids


def _stop(process: subprocess.Popen) -> None:
    """End an agent and every worker it started: SIGTERM first (torchrun stops its workers), then SIGKILL."""
    import psutil

    try:
        family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.Error:
        family = []
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            pass
    for member in family:
        try:
            member.kill()
        except psutil.Error:
            pass
    process.wait()


def run_torchrun(*commands: list[str], timeout: float = 300, env: dict | None = None, on_line=None,
             cwd=None) -> list[TorchrunRun]:
    """Run one ``torchrun`` agent per argument list, all at once, and wait for every one.

    Each list holds torchrun's arguments, e.g. ``["--nproc-per-node", "2", "-m", "fashion_course",
    "train"]``. The ports they name are checked first. ``on_line(agent, line, process)`` sees each
    line as it comes (to print progress, or to kill a worker); after ``timeout`` seconds every
    agent and worker still running is killed, and so they are on any error.
    """
    for port in sorted(set(p for args in commands for p in _ports(args))):
        check_port(port)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    processes, outputs, readers = [], [[] for _ in commands], []
    start, timed_out = time.perf_counter(), False
    try:
        for args in commands:
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "torch.distributed.run", *args], stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, env=environment, cwd=cwd, start_new_session=True))

        def read(index: int, process: subprocess.Popen) -> None:
            for line in process.stdout:
                outputs[index].append(line)
                if on_line is not None:
                    on_line(index, line.rstrip("\n"), process)

        for index, process in enumerate(processes):
            readers.append(threading.Thread(target=read, args=(index, process), daemon=True))
            readers[-1].start()
        for process in processes:
            try:
                process.wait(max(0.1, timeout - (time.perf_counter() - start)))
            except subprocess.TimeoutExpired:
                timed_out = True
                break
    finally:
        for process in processes:
            _stop(process)
        for reader in readers:
            reader.join(10)
    seconds = time.perf_counter() - start
    return [TorchrunRun(None if timed_out else p.returncode,
                        "".join(out) + (f"\n[stopped after {timeout:.0f} s]\n" if timed_out else ""),
                        seconds) for p, out in zip(processes, outputs, strict=True)]
