"""Rules of the test session (root conftest.py): no network, also in subprocesses; in CI, no skips."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
from network_guard.sitecustomize import is_local

ELSEWHERE = ("192.0.2.1", 80)  # TEST-NET-1 (RFC 5737): never a real host


def test_a_connection_to_another_machine_fails_clearly_in_the_test_process():
    with pytest.raises(ConnectionRefusedError, match="must not use the network.*192.0.2.1"):
        socket.create_connection(ELSEWHERE, timeout=1)
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s, pytest.raises(ConnectionRefusedError):
        s.connect(("2001:db8::1", 80, 0, 0))
    with socket.socket() as s:
        with pytest.raises(ConnectionRefusedError):  # connect_ex raises instead of returning errno
            s.connect_ex(ELSEWHERE)


def test_a_download_through_urllib_is_refused_as_an_ordinary_network_error():
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError, match="must not use the network"):
        urllib.request.urlopen("http://192.0.2.1/fashion-mnist.gz", timeout=1)


def test_loopback_and_local_sockets_still_work(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        threading.Thread(target=lambda: server.accept()[0].sendall(b"hi"), daemon=True).start()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            assert client.recv(2) == b"hi"
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(
            ("localhost", server.getsockname()[1]), timeout=5):
        pass
    if hasattr(socket, "AF_UNIX"):
        path = str(tmp_path / "s")
        with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
            server.bind(path)
            server.listen()
            client.connect(path)
    for address in [("127.0.0.1", 1), ("127.1.2.3", 1), ("::1", 1, 0, 0), ("localhost", 1),
                    ("::ffff:127.0.0.1", 1), ("0.0.0.0", 1), "/tmp/socket"]:
        assert is_local(address), address
    for address in [ELSEWHERE, ("10.0.0.1", 80), ("example.org", 443), ("::ffff:8.8.8.8", 53)]:
        assert not is_local(address), address


def test_every_python_subprocess_is_guarded_too():
    """The command line, the benchmark, torchrun and notebook kernels import it as sitecustomize."""
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0].endswith("network_guard")
    probe = ("import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=1)\n"
             "except ConnectionRefusedError as e:\n    print('refused:', e)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("refused: the tests must not use the network"), done.stdout + done.stderr


@pytest.mark.parametrize("ci, expected", [("true", "1 failed, 1 skipped"), ("", "2 skipped")])
def test_in_ci_only_a_gpu_test_may_skip(tmp_path, ci, expected):
    (tmp_path / "test_x.py").write_text(
        "import pytest\n"
        "def test_data():\n    pytest.skip('Fashion-MNIST is not on this machine')\n"
        "def test_gpu():\n    pytest.skip('needs a CUDA GPU')\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CI": ci, "PYTHONPATH": os.pathsep.join([str(root), os.environ["PYTHONPATH"]])}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
                           "test_x.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert expected in done.stdout, done.stdout
    if ci:
        assert "skipped in CI, where everything must run" in done.stdout


def _configure(**options):
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("root_conftest", root / "conftest.py")
    root_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root_conftest)  # installing the guard again is a no-op

    option = argparse.Namespace(**{"nbval": False, "nbval_lax": False, "nbval_sanitize_with": None,
                                   "sanitize_with": None, **options})
    root_conftest.pytest_configure(types.SimpleNamespace(option=option))
    return option


def test_pytest_nbval_applies_the_sanitize_rules_without_being_told():
    root = Path(__file__).resolve().parent.parent
    for flag in ("nbval", "nbval_lax"):
        sanitize = _configure(**{flag: True}).nbval_sanitize_with
        assert Path(sanitize) == root / "notebooks" / "sanitize.cfg" and Path(sanitize).is_absolute()
    assert _configure(nbval=True, nbval_sanitize_with="mine.cfg").nbval_sanitize_with == "mine.cfg"
    assert _configure(nbval=True, sanitize_with="old.cfg").nbval_sanitize_with is None  # nbval's alias
    assert _configure().nbval_sanitize_with is None  # the unit tests alone: nbval not active
