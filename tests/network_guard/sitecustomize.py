"""No network during the tests: a connection to anything but this machine fails with a clear message.

The root conftest.py runs this file in the pytest process and puts its folder first on PYTHONPATH,
so that every Python subprocess a test starts (the command line, the benchmark, torchrun, the
Jupyter kernels of the nbval run) imports it as ``sitecustomize`` and is guarded the same way.
Loopback (127.0.0.0/8, ::1, localhost) and local sockets (AF_UNIX) keep working: kernels talk to
pytest over loopback, and distributed tests rendezvous on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket

MESSAGE = ("the tests must not use the network: a connection to {!r} was refused "
           "(tests/network_guard/sitecustomize.py allows only 127.0.0.1, ::1 and localhost)")


class NetworkBlockedError(ConnectionRefusedError):
    """Raised instead of connecting to another machine (an OSError, like a refused connection)."""


def is_local(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths, abstract sockets, netlink ids
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    host = host.split("%", 1)[0]  # an IPv6 scope id
    if host.lower() in ("localhost", "localhost.localdomain", ""):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:  # a host name: only its resolved address, which create_connection passes
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _guarded(method):
    def guarded(self, address, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(address):
            raise NetworkBlockedError(MESSAGE.format(address))
        return method(self, address, *args)

    guarded.__name__ = method.__name__
    guarded.__wrapped__ = method
    return guarded


def install() -> None:
    """Guard ``socket.socket.connect`` and ``connect_ex`` (every Python client goes through them)."""
    if getattr(socket.socket.connect, "__wrapped__", None) is None:
        socket.socket.connect = _guarded(socket.socket.connect)
        socket.socket.connect_ex = _guarded(socket.socket.connect_ex)


install()
