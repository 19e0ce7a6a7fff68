"""Which network addresses the server may reach on a user's behalf: `web_fetch` URLs and LLM providers' base URLs.

Only public addresses: loopback, private, link-local (cloud metadata included), multicast, reserved,
IPv4-mapped forms of those and other non-global addresses are refused, and so are cloud metadata host
names. A host name counts by every address its DNS answer holds, not just the first. An operator may allow
private hosts by name (WEB_FETCH_ALLOWED_HOSTS, LLM_ALLOWED_HOSTS): an entry is `host` (any port) or
`host:port` (`[v6]:port` for an IPv6 literal), matched against the host as the URL writes it.
"""

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddress(Exception):
    pass


SIX_TO_FOUR = ipaddress.ip_network("2002::/16")


def check_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address) and ip in SIX_TO_FOUR:
        # 6to4 wraps an IPv4 address (2002:7f00:1:: is 127.0.0.1) that a relay would reach for us; Python
        # 3.11 calls these global. 6to4 is deprecated (RFC 7526): refuse all of it.
        raise RefusedAddress(f"refused: {ip} is a 6to4 address")
    if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local:
        raise RefusedAddress(f"refused: {ip} is not a public address")


def _entry(entry: str) -> tuple[str, int | None] | None:
    """`host`, `host:port`, `[v6]:port` or a bare IPv6 literal -> (host, port or None); None if malformed."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, port = entry.split(":")
    else:
        host, port = entry, ""
    if port and not (port.isascii() and port.isdigit()):
        return None
    return host, (int(port) if port else None)


def host_allowed(host: str, port: int | None, allowed: Iterable[str]) -> bool:
    host = host.strip("[]").lower()
    for entry in allowed:
        parsed = _entry(entry)
        if parsed and parsed[0] == host and parsed[1] in (None, port):
            return True
    return False


def resolve_checked(host: str, port: int, allowed: Iterable[str] = ()) -> list | None:
    """The addresses `host` resolves to, every one of them public; None when `allowed` lists the host (not
    checked). Raises RefusedAddress, or socket.gaierror when the name does not resolve."""
    name = host.strip("[]").lower()
    if host_allowed(name, port, allowed):
        return None
    if name in METADATA_HOSTS:
        raise RefusedAddress(f"refused: {name} is a cloud metadata host")
    infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for ip in addresses:
        check_address(ip)  # every answer must be public, not just the first
    return addresses


def check_url(url: str, allowed: Iterable[str]) -> None:
    """Refuses (RefusedAddress) an http(s) URL whose host is not public and not allowed. A name that does
    not resolve passes: nothing can be reached through it now, and the next check sees its new answer."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise RefusedAddress("refused: the URL is not valid") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise RefusedAddress("refused: only http and https URLs with a host are allowed")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise RefusedAddress("refused: the URL's port is not valid") from None
    try:
        resolve_checked(parts.hostname, port, allowed)
    except (socket.gaierror, UnicodeError):
        return
