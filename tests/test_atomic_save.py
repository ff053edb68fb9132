"""Saving is atomic: a process killed in the middle of a save leaves the previous file intact.

A real child process saves a large checkpoint over an existing one and is killed with SIGKILL
(no clean-up code can run) while the new file is still being written beside the target.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import fashion_course as fc

# ~55 million parameters: a 220 MB file, so the write takes long enough to be interrupted.
CHILD = textwrap.dedent(
    """
    import sys
    import torch
    import fashion_course as fc

    torch.manual_seed(1)
    model = fc.NeuralNetwork(hidden=7000)
    print("saving", flush=True)
    fc.save_checkpoint(sys.argv[1], model)
    print("saved", flush=True)
    """
)


def _partial_files(folder: Path, target: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(f".{target.name}.") and p.suffix == ".tmp"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_checkpoint_survives_a_kill_during_the_save(tmp_path):
    target = tmp_path / "model.pth"
    torch.manual_seed(0)
    previous = fc.NeuralNetwork(hidden=32)
    fc.save_checkpoint(target, previous, epoch=3)
    before = target.read_bytes()

    child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "saving"
        deadline = time.monotonic() + 300
        partial = []
        while time.monotonic() < deadline:  # wait until the new file is being written...
            partial = [p for p in _partial_files(tmp_path, target) if p.stat().st_size > 0]
            if partial or child.poll() is not None:
                break
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)  # ...and kill it then
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert partial, "the child finished (or never started) writing before it could be killed"

    # The target is the previous checkpoint, byte for byte, and still loads.
    assert target.read_bytes() == before
    restored = fc.load_model(target)
    assert fc.load_checkpoint(target)["epoch"] == 3
    for a, b in zip(restored.state_dict().values(), previous.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    # What the kill interrupted is only the file beside it, incomplete and unusable.
    (leftover,) = _partial_files(tmp_path, target)
    assert 0 < leftover.stat().st_size < 200_000_000
    with pytest.raises(fc.CheckpointError):
        fc.load_checkpoint(leftover)

    # A file being written by a live process is never touched; the next successful save of the
    # same target removes what the dead writer left.
    live = tmp_path / f".{target.name}.1.abcd1234.tmp"  # PID 1 (init) always exists
    live.write_bytes(b"someone else's save in progress")
    fc.save_checkpoint(target, previous, epoch=4)
    assert _partial_files(tmp_path, target) == [live]
    assert fc.load_checkpoint(target)["epoch"] == 4


class _ExportFails(fc.NeuralNetwork):
    def forward(self, x):
        raise RuntimeError("this model cannot be exported")


def test_failed_onnx_export_leaves_the_previous_file_and_no_debris(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"the previous export")
    stamp = target.stat().st_mtime_ns
    with pytest.raises(Exception, match="cannot be exported"):
        fc.export_onnx(_ExportFails(hidden=8), target)
    assert target.read_bytes() == b"the previous export" and target.stat().st_mtime_ns == stamp
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]

