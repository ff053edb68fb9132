"""`python -m fashion_course doctor`: exit 0 when healthy, and each problem reported with its fix.

The torchvision operator failure is provoked for real, without touching the installed packages:
a copy of the installed torchvision without its compiled library is put first on PYTHONPATH of a
child process. Its Python code then registers ``torchvision::nms`` against a library that never
loaded, exactly as a torchvision built for another torch does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fashion_course import data as fcdata
from fashion_course import doctor

LINE = re.compile(r"^\[(  ok|warn|FAIL)\] \S.{12} \S")


def run_doctor(env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "fashion_course", "doctor"], capture_output=True, text=True,
        timeout=600, env={**os.environ, **(env or {})},
    )


def test_healthy_machine_exits_0_with_one_line_per_check(real_data):
    done = run_doctor()
    assert done.returncode == 0, done.stdout + done.stderr
    *lines, verdict = done.stdout.splitlines()
    assert verdict == "everything the course needs is in place"
    assert all(LINE.match(line) for line in lines), lines
    names = [line[7:20].strip() for line in lines]
    for name in ("python", "torch", "torchvision", "tv operators", "cpu", "device", "threads",
                 "onnx", "onnxruntime", "pillow", "data", "data folder"):
        assert name in names
    text = done.stdout
    import torch

    assert f"torch.version.cuda = {torch.version.cuda}" in text
    assert "[  ok] tv operators" in text and "verified (size and SHA-256)" in text
    if torch.cuda.is_available():  # every GPU is listed by name
        for i in range(torch.cuda.device_count()):
            assert f"cuda:{i}" in text and torch.cuda.get_device_name(i) in text


@pytest.fixture(scope="module")
def torchvision_without_operators(tmp_path_factory) -> Path:
    """A folder holding a copy of torchvision minus its compiled library (the _C* file)."""
    import torchvision

    folder = tmp_path_factory.mktemp("mismatched")
    shutil.copytree(Path(torchvision.__file__).parent, folder / "torchvision",
                    ignore=shutil.ignore_patterns("_C*", "__pycache__"))
    assert not list((folder / "torchvision").glob("_C*"))
    return folder


def test_torchvision_operator_mismatch_is_explained(torchvision_without_operators):
    env = {**os.environ, "PYTHONPATH": str(torchvision_without_operators),
           "PYTHONDONTWRITEBYTECODE": "1"}
    # The failure is real: importing this torchvision raises the error learners meet.
    raw = subprocess.run([sys.executable, "-c", "import torchvision"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert raw.returncode != 0
    assert "operator torchvision::nms does not exist" in raw.stderr

    check = doctor.torchvision_ops_check(env=env)
    assert check.status == "FAIL" and check.name == "tv operators"
    assert "not built for this torch" in check.detail
    assert "operator torchvision::nms does not exist" in check.detail
    assert "reinstall both" in check.fix and "torchvision==" in check.fix

    done = run_doctor(env={"PYTHONPATH": str(torchvision_without_operators),
                           "PYTHONDONTWRITEBYTECODE": "1"})
    assert done.returncode == 1 and "Traceback" not in done.stdout + done.stderr
    failing = [line for line in done.stdout.splitlines() if line.startswith("[FAIL]")]
    assert len(failing) == 1 and failing[0].startswith("[FAIL] tv operators")
    assert "-> fix: torch and torchvision come from different builds" in failing[0]
    assert done.stdout.rstrip().endswith("1 problem(s) stop the course: apply the fixes above")

    # Nothing was broken: the real torchvision still passes.
    assert doctor.torchvision_ops_check().status == "ok"


def test_torchvision_release_mapping():
    assert doctor._expected_torchvision("2.14.1+cu130") == "0.29"
    assert doctor._expected_torchvision("2.11.0+cu128") == "0.26"
    assert doctor._expected_torchvision("2.4.0") == "0.19"
    assert doctor._expected_torchvision("nonsense") is None
    import torch
    import torchvision

    assert torchvision.__version__.startswith(doctor._expected_torchvision(torch.__version__) + ".")


def test_missing_data_is_a_failure_with_every_way_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv(fcdata.ENV_DATA, raising=False)
    monkeypatch.setenv(fcdata.ENV_SYSTEM, str(tmp_path / "system"))
    monkeypatch.setattr(fcdata, "_REPO", tmp_path / "repo")
    data, folder = doctor._data_checks()
    assert data.status == "FAIL" and data.detail.startswith("Fashion-MNIST was not found")
    for way in ("apt-get install dataset-fashion-mnist", "FASHION_COURSE_DATA", "torchvision"):
        assert way in data.fix
    assert "\n" not in str(data)
    assert folder.status == "ok"  # the folder itself is fine (and was created)


def test_unwritable_data_folder_is_a_failure(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(fcdata.ENV_DATA, str(tmp_path / "a-file" / "data"))
    folder = doctor._data_checks()[-1]
    assert folder.status == "FAIL" and "cannot write to" in folder.detail
    assert "FASHION_COURSE_DATA" in folder.fix


def test_bad_device_or_thread_setting_is_a_failure(monkeypatch):
    monkeypatch.setattr(doctor, "torchvision_ops_check", lambda: doctor.Check("tv operators", "ok", ""))
    monkeypatch.setenv("FASHION_COURSE_DEVICE", "cuda:7")
    monkeypatch.setenv("FASHION_COURSE_THREADS", "two")
    checks = {c.name: c for c in doctor._torch_checks()}
    assert checks["device"].status == "FAIL" and "cuda:7" in checks["device"].detail
    assert checks["threads"].status == "FAIL" and "FASHION_COURSE_THREADS" in checks["threads"].fix


def test_a_crashing_check_becomes_a_line_not_a_traceback():
    def broken():
        raise RuntimeError("CUDA driver initialization failed")

    (check,) = doctor._guarded("torch", broken)
    assert check.status == "FAIL" and "CUDA driver initialization failed" in check.detail
    assert doctor.format_report([check]).endswith("1 problem(s) stop the course: apply the fixes above")


def test_report_lines_carry_their_fix():
    line = str(doctor.Check("onnx", "FAIL", "not installed", "pip install -r requirements.txt"))
    assert line == "[FAIL] onnx          not installed  -> fix: pip install -r requirements.txt"


@pytest.fixture
def torch_that_does_not_import(tmp_path):
    """PYTHONPATH with a ``torch`` package first that fails to import, as a broken install does."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        'raise ImportError("libtorch_cpu.so: cannot open shared object file (simulated)")\n'
    )
    package_root = str(Path(fcdata.__file__).resolve().parent.parent)
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), package_root])}


def test_doctor_reports_a_torch_that_does_not_import(torch_that_does_not_import):
    done = run_doctor(torch_that_does_not_import)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stdout.splitlines()
    (torch_line,) = [line for line in lines if line[7:20].strip() == "torch"]
    assert torch_line.startswith("[FAIL]") and "simulated" in torch_line
    assert "pip install -r requirements.txt" in torch_line
    assert any(line.startswith("[  ok] numpy") for line in lines)  # the other checks still ran
    assert lines[-1].endswith("apply the fixes above")


def test_without_torch_other_commands_and_names_say_how_to_install(torch_that_does_not_import):
    env = {**os.environ, **torch_that_does_not_import}
    done = subprocess.run([sys.executable, "-m", "fashion_course", "train"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert "PyTorch does not import" in line and "pip install -r requirements.txt" in line
    probe = (
        "import fashion_course as fc\n"
        "assert fc.TORCH_IMPORT_ERROR is not None and callable(fc.run_checks)\n"
        "try:\n"
        "    fc.fit\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "fashion_course.fit needs PyTorch" in done.stdout
    assert "pip install -r requirements.txt" in done.stdout


# ------------------------------------------------- device selection, with the GPU answers simulated


@pytest.fixture
def machine(monkeypatch):
    """Pretend which accelerators exist: ``machine(cuda=2)``, ``machine(mps=True)``, ``machine()``."""
    import torch

    def pretend(cuda: int = 0, mps: bool = False):
        monkeypatch.delenv("FASHION_COURSE_DEVICE", raising=False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        kind = "cuda" if cuda else ("mps" if mps else None)
        if hasattr(torch, "accelerator"):
            monkeypatch.setattr(torch.accelerator, "is_available", lambda: kind is not None)
            monkeypatch.setattr(torch.accelerator, "current_accelerator", lambda: torch.device(kind))

    return pretend


@pytest.mark.parametrize("cuda, mps, best", [(0, False, "cpu"), (1, False, "cuda"), (2, False, "cuda"),
                                             (0, True, "mps")])
def test_choose_device_takes_the_best_device_there_is(machine, cuda, mps, best):
    import fashion_course as fc

    machine(cuda=cuda, mps=mps)
    assert fc.choose_device() == torch_device(best)


def test_choose_device_follows_the_request_and_refuses_what_is_not_there(machine, monkeypatch):
    import fashion_course as fc

    machine(cuda=1)
    assert fc.choose_device("cpu") == torch_device("cpu")  # a GPU machine can still compare the CPU
    monkeypatch.setenv("FASHION_COURSE_DEVICE", "cpu")  # the canonical run of the notebooks
    assert fc.choose_device() == torch_device("cpu")
    assert fc.choose_device("cuda:0") == torch_device("cuda:0")  # the argument beats the variable
    with pytest.raises(ValueError, match=r"'cuda:1' was requested but only 1 CUDA device\(s\) exist"):
        fc.choose_device("cuda:1")
    with pytest.raises(ValueError, match="'gpu' is not a device name"):
        fc.choose_device("gpu")
    machine()
    with pytest.raises(ValueError, match="'cuda' was requested but this PyTorch sees no CUDA GPU"):
        fc.choose_device("cuda")  # never a silent fall back to the CPU
    with pytest.raises(ValueError, match="MPS is not available"):
        fc.choose_device("mps")


def torch_device(name):
    import torch

    return torch.device(name)
