"""Which network addresses the server may reach on a user's behalf: `web_fetch` URLs and LLM providers' base URLs.

Only public addresses: loopback, private, link-local (cloud metadata included), multicast, reserved,
IPv4-mapped forms of those and other non-global addresses are refused, and so are cloud metadata host
names. A host name counts by every address its DNS answer holds, not just the first. An operator may allow
private hosts by name (WEB_FETCH_ALLOWED_HOSTS, LLM_ALLOWED_HOSTS): an entry is `host` (any port) or
`host:port` (`[v6]:port` for an IPv6 literal), matched against the host as the URL writes it.

The check holds where it matters, at connect time: `GuardedTransport` and `AsyncGuardedTransport` are httpx
transports whose network backend resolves each connection's host once, checks every address of the answer,
and connects to the checked address itself (TLS still names and verifies the host), so a DNS answer that
changes between the check and the connect (DNS rebinding) reaches nothing. `refuse_redirects=True` makes a
3xx answer with a `Location` an error (`RefusedRedirect`) whatever the client's `follow_redirects` says, for
callers that must not be sent elsewhere (LLM providers); `web_fetch` follows redirects, each hop's connection
checked the same way.
"""

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

import anyio.to_thread
import httpcore
import httpx

METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedAddress(Exception):
    """A request the guard refuses (its message is ours, safe to show a client)."""


class RefusedRedirect(RefusedAddress):
    """A redirect answered to a caller that follows none."""


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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


AllowedHosts = Iterable[str] | Callable[[], Iterable[str]]


def _allowed(allowed_hosts: AllowedHosts) -> Callable[[], Iterable[str]]:
    """A list, or a callable read at each connect (so a setting changed at run time applies to pooled clients)."""
    return allowed_hosts if callable(allowed_hosts) else (lambda: allowed_hosts)


def pinned_address(host: str | bytes, port: int, allowed: Iterable[str]) -> str:
    """What to connect to for `host`: the first address of its checked DNS answer, as a literal, so that no
    second lookup happens; the host itself when `allowed` lists it (the operator's own server). Raises
    RefusedAddress, or httpcore.ConnectError when the name does not resolve."""
    name = host.decode() if isinstance(host, bytes) else host
    try:
        addresses = resolve_checked(name, port, allowed)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: the IDNA codec refusing the name
        raise httpcore.ConnectError(f"cannot resolve {name}: {exc}") from None
    return name if addresses is None else str(addresses[0])


class GuardedBackend(httpcore.SyncBackend):
    """Every TCP connection goes to a checked address (see pinned_address)."""

    def __init__(self, allowed_hosts: AllowedHosts):
        super().__init__()
        self.allowed = _allowed(allowed_hosts)

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        address = pinned_address(host, port, self.allowed())
        return super().connect_tcp(address, port, timeout, local_address, socket_options)


class AsyncGuardedBackend(httpcore.AnyIOBackend):
    """The asyncio twin of GuardedBackend; the lookup runs on a thread (getaddrinfo blocks)."""

    def __init__(self, allowed_hosts: AllowedHosts):
        super().__init__()
        self.allowed = _allowed(allowed_hosts)

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        with anyio.fail_after(timeout):
            address = await anyio.to_thread.run_sync(pinned_address, host, port, list(self.allowed()))
        return await super().connect_tcp(address, port, timeout, local_address, socket_options)


def _refuse_redirect(request: httpx.Request, response: httpx.Response) -> None:
    if response.status_code in REDIRECT_STATUSES and "location" in response.headers:
        raise RefusedRedirect(
            f"refused: {request.url.host} answered HTTP {response.status_code} with a redirect, "
            "and redirects are not followed"
        )


def _pool_args(verify, cert, http2: bool, limits: httpx.Limits) -> dict:
    return {
        "ssl_context": httpx.create_ssl_context(verify=verify, cert=cert, trust_env=False),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": True,
        "http2": http2,
    }


DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own defaults


# httpx's transports take no network backend, and the backend is the one place that sees every TCP connection
# (redirects included) and the address it goes to. So these swap the transport's connection pool (`_pool`, a
# private attribute, checked with httpx 0.28.1, pinned, and httpcore 1.0.9) for one on a guarded backend; no
# proxy is ever used (a proxy would resolve the name itself). Re-check `_pool` on an upgrade.
class GuardedTransport(httpx.HTTPTransport):
    def __init__(
        self,
        allowed_hosts: AllowedHosts,
        *,
        refuse_redirects: bool = False,
        verify=True,
        cert=None,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        network_backend: httpcore.NetworkBackend | None = None,
    ):
        super().__init__(verify=verify, cert=cert, http2=http2, limits=limits, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            **_pool_args(verify, cert, http2, limits), network_backend=network_backend or GuardedBackend(allowed_hosts)
        )
        self.refuse_redirects = refuse_redirects

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if self.refuse_redirects:
            try:
                _refuse_redirect(request, response)
            except RefusedRedirect:
                response.close()
                raise
        return response


class AsyncGuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(
        self,
        allowed_hosts: AllowedHosts,
        *,
        refuse_redirects: bool = False,
        verify=True,
        cert=None,
        http2: bool = False,
        limits: httpx.Limits = DEFAULT_LIMITS,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ):
        super().__init__(verify=verify, cert=cert, http2=http2, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            **_pool_args(verify, cert, http2, limits),
            network_backend=network_backend or AsyncGuardedBackend(allowed_hosts),
        )
        self.refuse_redirects = refuse_redirects

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if self.refuse_redirects:
            try:
                _refuse_redirect(request, response)
            except RefusedRedirect:
                await response.aclose()
                raise
        return response
