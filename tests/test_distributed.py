"""DistributedDataParallel with torchrun on the CPU (gloo), as 10_distributed teaches it.

Every test that starts processes goes through ``fc.run_torchrun`` (a timeout, every agent and
worker killed at the end) on 127.0.0.1 only, and checks afterwards that no process it started is
left: each run carries a marker in its environment, and no live process may still hold it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import uuid
from pathlib import Path

import pytest
import torch
from torch import nn

import fashion_course as fc

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300  # seconds for one torchrun launch, on a loaded 2-core CPU


def launch(*commands, marker, **kwargs):
    env = {"FASHION_COURSE_TEST_RUN": marker, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), "FASHION_COURSE_DEVICE": "cpu"}
    return fc.run_torchrun(*commands, timeout=kwargs.pop("timeout", TIMEOUT), env=env, **kwargs)


def one_machine(nproc: int, *args: str, restarts: int = 0) -> list[str]:
    """torchrun's arguments for ``nproc`` processes here, with a c10d rendezvous on a free port."""
    return ["--nproc-per-node", str(nproc), "--max-restarts", str(restarts), "--rdzv-backend", "c10d",
            "--rdzv-endpoint", f"127.0.0.1:{fc.free_port()}", "--local-addr", "127.0.0.1", *args]


def assert_none_left(value: str) -> None:
    """No live process carries the marker ``value`` (any found are killed, then reported)."""
    import psutil

    left = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("FASHION_COURSE_TEST_RUN") == value:
                left.append(process)
        except (psutil.Error, OSError):
            continue
    for process in left:
        process.kill()
    assert not left, f"processes left behind: {[p.pid for p in left]}"


@pytest.fixture
def marker():
    """A marker for this test's processes; afterwards none of them may be alive."""
    value = uuid.uuid4().hex
    yield value
    assert_none_left(value)


def accuracy_of(output: str) -> float:
    return float(re.search(r"^test accuracy: ([\d.]+)%", output, re.M).group(1)) / 100


# --- in one process: the pieces -------------------------------------------------------------------


def synthetic_loader(n=1000, batch_size=256, augment=None, alternate_flips=False):
    generator = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (n,), generator=generator)
    return fc.InMemoryLoader(images, labels, batch_size=batch_size, shuffle=True, augment=augment,
                             alternate_flips=alternate_flips, generator=generator)


@pytest.mark.parametrize("augment", [None, fc.batch_augmentation(max_shift=1, erase=0.5)])
def test_the_shards_of_all_ranks_make_up_the_one_process_batches(augment):
    loader = synthetic_loader(augment=augment)
    whole = fc.ShardedLoader(loader, world_size=1, seed=3)
    halves = [fc.ShardedLoader(loader, rank=r, world_size=2, seed=3) for r in range(2)]
    for sharded in (whole, *halves):
        sharded.set_epoch(4)
    batches = list(whole)
    assert len(batches) == len(halves[0]) == 4 and halves[0].num_samples == 1000
    for (X, y), (X0, y0), (X1, y1) in zip(batches, *halves, strict=True):
        assert len(y0) == len(y1) == len(y) // 2
        assert torch.equal(torch.cat([X0, X1]), X) and torch.equal(torch.cat([y0, y1]), y)
    # DistributedSampler's order: a permutation seeded with seed + epoch
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(3 + 4))
    assert torch.equal(batches[0][1], loader.y[order[:256]])


def test_sharded_alternating_flips_follow_the_loaders_phase_and_the_epochs_parity():
    loader = synthetic_loader(alternate_flips=True)
    loader.y = torch.arange(loader.num_samples)  # labels that say which image each sample is
    halves = [fc.ShardedLoader(loader, rank=r, world_size=2, seed=3) for r in range(2)]
    for epoch in (4, 5):
        for sharded in halves:
            sharded.set_epoch(epoch)
        for X, y in (batch for sharded in halves for batch in sharded):
            due = loader.flip_phase[y] ^ bool(epoch % 2)  # mirrored in this epoch
            assert torch.equal(X[due], loader.X[y[due]].flip(3))
            assert torch.equal(X[~due], loader.X[y[~due]])
    assert 0.4 < loader.flip_phase.float().mean() < 0.6


def test_set_epoch_gives_each_epoch_its_own_order_and_repeats_it():
    sharded = fc.ShardedLoader(synthetic_loader(), rank=1, world_size=2)
    sharded.set_epoch(1)
    first = torch.cat([y for _, y in sharded])
    assert torch.equal(first, torch.cat([y for _, y in sharded]))
    sharded.set_epoch(2)
    assert not torch.equal(first, torch.cat([y for _, y in sharded]))


def test_a_short_last_batch_is_shared_equally():
    sharded = fc.ShardedLoader(synthetic_loader(n=1001, batch_size=8), rank=2, world_size=4)
    sizes = [len(y) for _, y in sharded]
    assert sizes == [2] * 125  # the last batch of 1 sample cannot be split in 4: it is dropped
    assert sharded.num_samples == 1000


def test_bad_set_ups_raise_one_clear_line_before_any_process_starts():
    with pytest.raises(fc.DistributedSetupError, match=r"^3 processes cannot share a batch of 256"):
        fc.check_batch_split(256, 3)
    with pytest.raises(fc.DistributedSetupError, match="unknown backend 'mpi'"):
        fc.choose_backend("cpu", "mpi")
    assert fc.choose_backend("cpu") == "gloo"
    if not torch.cuda.is_available():
        with pytest.raises(fc.DistributedSetupError, match=r"^backend 'nccl' needs CUDA GPUs"):
            fc.choose_backend("cpu", "nccl")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(fc.DistributedSetupError) as error:
            fc.run_torchrun(["--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
                             str(port), "-m", "fashion_course", "train"], timeout=30)
    message = str(error.value)
    assert f"port {port} on 127.0.0.1 is already in use" in message and "\n" not in message


def test_a_snapshot_of_another_run_is_refused(tmp_path):
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    path = fc.save_snapshot(tmp_path / "s.pt", model=model, optimizer=optimizer, scheduler=None, epoch=1,
                            history=fc.History(), run={"seed": 0})
    assert fc.load_snapshot(path, {"seed": 0})["epoch"] == 1
    assert fc.load_snapshot(tmp_path / "none.pt", {"seed": 0}) is None
    with pytest.raises(fc.DistributedSetupError, match="saved by a different run"):
        fc.load_snapshot(path, {"seed": 1})


# --- several processes ---------------------------------------------------------------------------

ORACLE = """
import sys
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
import fashion_course as fc

ctx = fc.setup_distributed("cpu")
torch.manual_seed(0)
model = fc.build_model("mlp")
ddp = DDP(model)
generator = torch.Generator().manual_seed(5)
images = torch.randint(0, 256, (2048, 28, 28), dtype=torch.uint8, generator=generator)
labels = torch.randint(0, 10, (2048,), generator=generator)
loader = fc.InMemoryLoader(images, labels, batch_size=256, shuffle=True)
shards = fc.ShardedLoader(loader, rank=ctx.rank, world_size=ctx.world_size, seed=0)
shards.set_epoch(1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
for step, (X, y) in zip(range(int(sys.argv[2])), shards):
    optimizer.zero_grad()
    nn.functional.cross_entropy(ddp(X), y).backward()
    optimizer.step()
if ctx.is_main:
    torch.save(model.state_dict(), sys.argv[1])
fc.print0(f"rank {ctx.rank} of {ctx.world_size} ({ctx.backend}): {step + 1} steps")
fc.teardown_distributed()
"""


def test_two_process_ddp_equals_one_process_on_the_concatenated_batch(tmp_path, marker):
    """The oracle: DDP's averaged gradients are the gradients of the whole batch."""
    steps = 5
    script = tmp_path / "oracle.py"
    script.write_text(ORACLE)
    (run,) = launch(one_machine(2, str(script), str(tmp_path / "ddp.pt"), str(steps)), marker=marker)
    assert run.returncode == 0, run.output
    assert f"rank 0 of 2 (gloo): {steps} steps" in run.output
    ddp_state = torch.load(tmp_path / "ddp.pt", weights_only=True)

    torch.manual_seed(0)
    model = fc.build_model("mlp")
    generator = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (2048, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (2048,), generator=generator)
    X_all = fc.InMemoryLoader(images, labels).X
    order = torch.randperm(2048, generator=torch.Generator().manual_seed(0 + 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for step in range(steps):
        batch = order[step * 256 : (step + 1) * 256]  # the two ranks' shards, concatenated
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(X_all[batch]), labels[batch]).backward()
        optimizer.step()
    moved = 0.0
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp_state[name], value, atol=1e-6, rtol=0, msg=name)
        moved = max(moved, (value - fc.build_model("mlp").state_dict()[name]).abs().max().item())
    assert moved > 1e-3  # the steps changed the weights: the comparison is not of two fresh models


def test_torchrun_train_end_to_end(tmp_path, marker, real_data):
    """`torchrun --nproc-per-node 2 -m fashion_course train --epochs 1`: one checkpoint, ONNX parity."""
    out = tmp_path / "out"
    (run,) = launch(one_machine(2, "-m", "fashion_course", "train", "--epochs", "1", "--threads", "1",
                                "--out", str(out)), marker=marker)
    assert run.returncode == 0, run.output
    assert "on 2 processes (gloo backend, cpu), batch 256 = 2 x 128 per process" in run.output
    assert len(re.findall(r"^Training the", run.output, re.M)) == 1  # rank 0 alone prints
    assert "ONNX predictions agree on 100.00% of the test set" in run.output
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.pth"]  # snapshot removed
    accuracy = accuracy_of(run.output)
    assert accuracy >= 0.82  # one epoch of the MLP recipe on 60,000 images
    # The epoch's sharded test scores the model rank 0 saves: the recipe's batch norm buffers are
    # rank 0's on every rank (each rank's last training pass updates its own copy)
    epoch_line = re.search(r"^epoch  1/1: .* test accuracy ([\d.]+)%", run.output, re.M)
    assert float(epoch_line.group(1)) / 100 == pytest.approx(accuracy, abs=5e-5)
    payload = fc.load_checkpoint(out / "model.pth")
    assert payload["metrics"]["test_accuracy"] == pytest.approx(accuracy, abs=5e-5)
    assert payload["metrics"]["world_size"] == 2
    model = fc.load_model(out / "model.pth")
    X = fc.InMemoryLoader(*fc.load_tensors(False, root=real_data.root)).X[:512]
    assert fc.onnx_parity(model, fc.onnx_session(out / "model.onnx"), X) < 1e-4


SMALL = ["-m", "fashion_course", "train", "--epochs", "3", "--train-images", "12000", "--threads", "1"]


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory, real_data):
    """Two torchrun agents as two one-process nodes, meeting at a c10d rendezvous on 127.0.0.1."""
    out = tmp_path_factory.mktemp("two_nodes")
    port = fc.free_port()
    node = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
            f"127.0.0.1:{port}", "--rdzv-id", "two-nodes", "--local-addr", "127.0.0.1", *SMALL]
    marker = uuid.uuid4().hex
    runs = launch([*node, "--out", str(out / "a")], [*node, "--out", str(out / "b")], marker=marker)
    assert_none_left(marker)
    return runs, out


def test_two_agents_on_one_machine_train_as_two_nodes(two_nodes):
    runs, out = two_nodes
    assert [r.returncode for r in runs] == [0, 0], runs[0].output + runs[1].output
    both = runs[0].output + runs[1].output
    assert len(re.findall(r"^Training the 'mlp' recipe for 3 epochs on 2 processes", both, re.M)) == 1
    assert len(re.findall(r"^epoch  3/3", both, re.M)) == 1
    # the agent whose worker became rank 0 wrote the files, into its own --out
    written = [d for d in ("a", "b") if (out / d / "model.pth").exists()]
    assert len(written) == 1 and sorted(p.name for p in (out / written[0]).iterdir()) == [
        "model.onnx", "model.pth"]


def test_a_killed_worker_is_restarted_and_resumes_from_the_snapshot(tmp_path, marker, two_nodes):
    killed = []

    def kill_after_first_snapshot(agent, line, process):
        if line.startswith("epoch  1/3") and not killed:
            pid = fc.worker_pids(process.pid)[1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    (run,) = launch(one_machine(2, *SMALL, "--out", str(tmp_path), restarts=1), marker=marker,
                    on_line=kill_after_first_snapshot)
    assert killed, run.output
    assert run.returncode == 0, run.output
    assert f"(pid: {killed[0]})" in run.output  # torchrun saw the SIGKILL
    assert "torchrun restarted the group (restart 1)" in run.output
    resumed = re.search(r"^resuming from epoch (\d) \(snapshot of epoch (\d)", run.output, re.M)
    assert resumed and int(resumed.group(1)) in (2, 3), run.output  # not from epoch 1
    assert int(resumed.group(1)) == int(resumed.group(2)) + 1
    # the same final accuracy as an uninterrupted run of the same seed (the two-node run above)
    uninterrupted = "".join(r.output for r in two_nodes[0])
    assert accuracy_of(run.output) == accuracy_of(uninterrupted)


def test_a_world_size_that_does_not_divide_the_batch_gives_one_line(tmp_path, marker):
    (run,) = launch(one_machine(3, "-m", "fashion_course", "train", "--out", str(tmp_path)), marker=marker,
                    timeout=120)
    assert run.returncode not in (0, None), run.output
    errors = [line for line in run.lines if line.startswith("error:")]
    assert errors == ["error: 3 processes cannot share a batch of 256 equally; start a number of "
                      "processes that divides 256 (e.g. 1, 2 or 4)"], run.output
    assert "fashion_course/" not in run.output  # no traceback from the workers (torchrun prints its own)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("how", ["option", "environment"])
def test_nccl_without_cuda_gives_one_line(tmp_path, marker, how, monkeypatch):
    option = ["--backend", "nccl"] if how == "option" else []
    if how == "environment":
        monkeypatch.setenv("FASHION_COURSE_BACKEND", "nccl")
    (run,) = launch(one_machine(2, "-m", "fashion_course", "train", *option, "--out", str(tmp_path)),
                    marker=marker, timeout=120)
    assert run.returncode not in (0, None), run.output
    errors = [line for line in run.lines if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: backend 'nccl' needs CUDA GPUs"), run.output


def test_plain_train_refuses_the_torchrun_options():
    import subprocess

    done = subprocess.run([sys.executable, "-m", "fashion_course", "train", "--backend", "gloo"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --backend, --sync-bn, --snapshot and --train-images are for training under torchrun: "
        "torchrun --nproc-per-node 2 -m fashion_course train ..."]
