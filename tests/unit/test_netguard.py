"""The address rules shared by web_fetch and LLM base URLs, and the provider rules built on them."""

import ipaddress

import pytest

from agents import provider_types
from everruns.core import netguard


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address):
    with pytest.raises(netguard.RefusedAddress):
        netguard.check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    netguard.check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host,port,allowed,expected",
    [
        ("localhost", 11434, ["localhost"], True),
        ("LOCALHOST", 80, ["localhost"], True),
        ("localhost", 11434, ["localhost:11434"], True),
        ("localhost", 11435, ["localhost:11434"], False),
        ("vllm.internal", 8000, ["localhost", "vllm.internal:8000"], True),
        ("[::1]", 8000, ["[::1]:8000"], True),
        ("::1", 9000, ["[::1]:8000"], False),
        ("::1", 9000, ["::1"], True),
        ("127.0.0.1", 80, [], False),
        ("127.0.0.1", 80, ["127.0.0.1:http"], False),  # not a port: the entry matches nothing
    ],
)
def test_allowed_hosts_match_by_name_and_optional_port(host, port, allowed, expected):
    assert netguard.host_allowed(host, port, allowed) is expected


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://[::1]/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://metadata.google.internal/computeMetadata/v1",
        "http://2130706433/",  # 127.0.0.1 as one number
        "ftp://8.8.8.8/",
        "http:///no-host",
        "http://[::1/",
    ],
)
def test_check_url_refuses(url):
    with pytest.raises(netguard.RefusedAddress):
        netguard.check_url(url, [])


def test_check_url_passes_public_allowed_and_unresolvable_hosts():
    netguard.check_url("https://8.8.8.8/v1", [])
    netguard.check_url("http://127.0.0.1:8000/v1", ["127.0.0.1:8000"])
    netguard.check_url("http://no-such-host.invalid/v1", [])  # nothing to reach; checked again at call time


@pytest.mark.parametrize(
    "provider_type,base_url,official",
    [
        ("openai", None, True),
        ("openai", "", True),
        ("openai", "https://api.openai.com/v1", True),
        ("openai", "https://api.openai.com", True),
        ("openai", "HTTPS://API.OPENAI.COM:443/v1/", True),
        ("openai", "http://api.openai.com/v1", False),
        ("openai", "https://api.openai.com:8443/v1", False),
        ("openai", "https://api.openai.com.evil.example/v1", False),
        ("openai", "https://api.anthropic.com", False),
        ("anthropic", "https://api.anthropic.com", True),
        ("azure", "https://me.openai.azure.com", False),
        ("ollama", "http://localhost:11434", False),
    ],
)
def test_official_endpoints(provider_type, base_url, official):
    assert provider_types.is_official_endpoint(provider_type, base_url) is official


def test_every_key_variable_but_azures_has_an_official_endpoint():
    assert set(provider_types.KEY_ENV) - set(provider_types.OFFICIAL_ENDPOINTS) == {"azure"}


@pytest.mark.parametrize(
    "settings,errors",
    [
        ({}, []),
        ({"timeout": 0, "latency_ms": 0, "tokens_per_second": 0}, []),
        ({"timeout": 600, "latency_ms": 600_000, "tokens_per_second": 1, "other": {"x": 1}}, []),
        ({"timeout": 600.5}, ["timeout"]),
        ({"timeout": float("nan")}, ["timeout"]),
        ({"timeout": float("inf")}, ["timeout"]),
        ({"latency_ms": True}, ["latency_ms"]),
        ({"latency_ms": "5"}, ["latency_ms"]),
        ({"tokens_per_second": 0.5, "timeout": -1}, ["timeout", "tokens_per_second"]),
    ],
)
def test_settings_bounds(settings, errors):
    found = provider_types.settings_errors(settings)
    assert sorted(message.split(":")[0] for message in found) == errors


def test_settings_are_clamped_into_their_bounds():
    assert provider_types.clamped_settings(
        {"timeout": 10**9, "latency_ms": float("inf"), "tokens_per_second": 0.001, "other": 1}
    ) == {"timeout": 600, "latency_ms": 600_000, "tokens_per_second": 1, "other": 1}
    assert provider_types.clamped_settings({"timeout": float("nan"), "latency_ms": -3, "tokens_per_second": "x"}) == {}
    assert provider_types.clamped_settings(None) == {}
