"""DNS rebinding, in-process (DNS is outside our control): a name that answers a public address the first
time it is looked up and loopback after, and a network stub so that nothing is ever sent to the public one."""

import socket
from collections import Counter

import httpcore
import pytest

PUBLIC = "93.184.215.14"  # a public address: the guard lets it through; the stub keeps traffic off it


def rebinding_resolver(monkeypatch: pytest.MonkeyPatch, name: str, later: str = "127.0.0.1") -> Counter:
    """Patches socket.getaddrinfo: `name` answers PUBLIC once, then `later`; other names as before. Returns
    how many times each name was looked up."""
    real = socket.getaddrinfo
    answers: Counter = Counter()

    def getaddrinfo(host, port, *args, **kwargs):
        host = host.decode() if isinstance(host, bytes) else host
        if host != name:
            return real(host, port, *args, **kwargs)
        answers[name] += 1
        address = PUBLIC if answers[name] == 1 else later
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def no_public_traffic(monkeypatch: pytest.MonkeyPatch) -> list:
    """httpcore's own backends (under the guarded ones) refuse to connect to PUBLIC, as an unreachable host
    would, and record every host they are asked to connect to."""
    targets: list = []
    sync_connect, async_connect = httpcore.SyncBackend.connect_tcp, httpcore.AnyIOBackend.connect_tcp

    def connect(self, host, port, *args, **kwargs):
        targets.append(host)
        if host == PUBLIC:
            raise httpcore.ConnectError(f"{PUBLIC} is not reached from tests")
        return sync_connect(self, host, port, *args, **kwargs)

    async def aconnect(self, host, port, *args, **kwargs):
        targets.append(host)
        if host == PUBLIC:
            raise httpcore.ConnectError(f"{PUBLIC} is not reached from tests")
        return await async_connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect)
    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", aconnect)
    return targets
