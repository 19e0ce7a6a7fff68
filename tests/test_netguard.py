"""The address guard at connect time (everruns/core/netguard.py), against real local servers: the connection goes
to the address that was checked (DNS rebinding reaches nothing), and a transport that refuses redirects
never reaches the redirect's target."""

import asyncio

import httpx
import pytest

from everruns.core import netguard
from tests.fake_llm_server import FakeLLM
from tests.rebinding import PUBLIC, no_public_traffic, rebinding_resolver

SECRET = "loopback-only-3b8d0a61"


@pytest.fixture
def internal_server():
    server = FakeLLM(fixed={"status": 200, "html": SECRET}).start()
    yield server
    server.stop()


def test_a_rebinding_name_is_connected_at_its_checked_address(monkeypatch, internal_server):
    answers = rebinding_resolver(monkeypatch, "rebind.test")
    targets = no_public_traffic(monkeypatch)
    with httpx.Client(transport=netguard.GuardedTransport([])) as client:
        with pytest.raises(httpx.ConnectError, match="not reached from tests"):
            client.get(f"http://rebind.test:{internal_server.port}/")
    assert targets == [PUBLIC] and answers["rebind.test"] == 1  # one lookup, and its answer used
    assert internal_server.requests == []


def test_a_rebinding_name_is_connected_at_its_checked_address_async(monkeypatch, internal_server):
    answers = rebinding_resolver(monkeypatch, "rebind.test")
    targets = no_public_traffic(monkeypatch)

    async def fetch():
        async with httpx.AsyncClient(transport=netguard.AsyncGuardedTransport([])) as client:
            await client.get(f"http://rebind.test:{internal_server.port}/")

    with pytest.raises(httpx.ConnectError, match="not reached from tests"):
        asyncio.run(fetch())
    assert targets == [PUBLIC] and answers["rebind.test"] == 1
    assert internal_server.requests == []


def test_a_name_that_answers_loopback_is_refused_at_connect(monkeypatch, internal_server):
    rebinding_resolver(monkeypatch, "rebind.test")
    netguard.check_url(f"http://rebind.test:{internal_server.port}/", [])  # the first answer: public, passes
    with httpx.Client(transport=netguard.GuardedTransport([])) as client:
        with pytest.raises(netguard.RefusedAddress, match="127.0.0.1 is not a public address"):
            client.get(f"http://rebind.test:{internal_server.port}/")
    assert internal_server.requests == []


def test_an_allowed_host_is_connected_as_named(internal_server):
    allowed = [f"127.0.0.1:{internal_server.port}"]
    with httpx.Client(transport=netguard.GuardedTransport(lambda: allowed)) as client:
        assert SECRET in client.get(f"{internal_server.base_url}/").text


@pytest.fixture
def redirecting():
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_transport_that_refuses_redirects_never_reaches_their_target(redirecting, internal_server, status):
    allowed = ["127.0.0.1"]
    redirecting.reply({"status": status, "redirect": f"{internal_server.base_url}/"})
    transport = netguard.GuardedTransport(allowed, refuse_redirects=True)
    with httpx.Client(transport=transport, follow_redirects=True) as client:
        with pytest.raises(netguard.RefusedRedirect, match=f"answered HTTP {status} with a redirect"):
            client.post(f"{redirecting.base_url}/chat/completions", json={})
    assert internal_server.requests == []


def test_the_async_transport_refuses_redirects_too(redirecting, internal_server):
    redirecting.reply({"status": 307, "redirect": f"{internal_server.base_url}/"})

    async def post():
        transport = netguard.AsyncGuardedTransport(["127.0.0.1"], refuse_redirects=True)
        async with httpx.AsyncClient(transport=transport, follow_redirects=True) as client:
            await client.post(f"{redirecting.base_url}/chat/completions", json={})

    with pytest.raises(netguard.RefusedRedirect):
        asyncio.run(post())
    assert internal_server.requests == []
