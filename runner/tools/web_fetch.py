"""web_fetch: real HTTP(S) GET/HEAD with time and size limits and text extraction.

Server-side request forgery is refused where it matters, at connect time: every TCP connection
(the first request and each redirect) goes through the address guard's transport (everruns/core/netguard.py),
whose network backend resolves the host itself
and refuses loopback, private, link-local (cloud metadata included), multicast, reserved and other
non-global addresses. A hostname whose DNS answer points there is refused the same way, and the
connection goes to the checked address (no second lookup to rebind). WEB_FETCH_ALLOWED_HOSTS lists
host names that skip the check (for local testing).

The tool stops by itself at its deadline (WEB_FETCH_TIMEOUT): a tool thread that overruns is abandoned
by the runtime but keeps running, so the limit cannot be left to the runtime. httpx's read timeout is per
read, and a server trickling a byte at a time would reset it forever; so every connect, handshake, read
and write waits at most until the deadline (DeadlineStream). A gzip body is inflated by us, at most
WEB_FETCH_MAX_BYTES of it (httpx inflates a whole network chunk at once: 204 KB of gzip became 77 MiB).
"""

import functools
import re
import time
import zlib
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

from everruns.core.netguard import GuardedBackend, GuardedTransport, RefusedAddress
from runner.tools.base import Capability, Tool, ToolError, obj


def until(deadline: float, timeout: float | None, error: type[Exception]) -> float:
    """httpx's timeout for one wait, shortened to end by the deadline; `error` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the fetch's time limit passed")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the fetch's deadline."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float):
        self.stream, self.deadline = stream, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, until(self.deadline, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, until(self.deadline, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        timeout = until(self.deadline, timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, timeout), self.deadline)

    def get_extra_info(self, info: str):
        return self.stream.get_extra_info(info)


class DeadlineBackend(GuardedBackend):
    """The address guard's backend (each connection to a checked address, everruns/core/netguard.py), every wait
    of whose connections ends by the fetch's deadline."""

    def __init__(self, allowed_hosts: list[str], deadline: float):
        super().__init__(allowed_hosts)
        self.deadline = deadline

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        timeout = until(self.deadline, timeout, httpcore.ConnectTimeout)
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        return DeadlineStream(stream, self.deadline)


def guarded_client(timeout: httpx.Timeout, deadline: float) -> httpx.Client:
    allowed = settings.WEB_FETCH_ALLOWED_HOSTS
    return httpx.Client(
        # Redirects are followed by the client; each hop's connection goes through the guarded backend.
        transport=GuardedTransport(allowed, network_backend=DeadlineBackend(allowed, deadline)),
        timeout=timeout,
        follow_redirects=True,
        max_redirects=settings.WEB_FETCH_MAX_REDIRECTS,
        trust_env=False,
        # Only gzip, which read_body inflates with a bound (httpx would also ask for deflate, br and zstd).
        headers={"User-Agent": "Everruns-web_fetch/1.0", "Accept-Encoding": "gzip"},
    )


# A page's readable text: headings and list items marked, block elements on their own lines, nothing of
# scripts, styles and the head (but its title).
SKIP = ("script", "style", "noscript", "template", "svg", "head")
BLOCK = ("p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre", "table")
BLOCK += ("ul", "ol")
MARKS = {"h1": "# ", "h2": "## ", "h3": "### ", "li": "- "}


# The page is parsed by libxml2's HTML parser (lxml), linear in its input: html.parser took minutes on
# `"<a" * 80000` (its regular expressions backtrack), holding the GIL all the while. Comments and processing
# instructions stay out of the tree. libxml2 nests at most 2048 elements deep with `huge_tree` (256 without)
# and drops what lies deeper; the body is at most WEB_FETCH_MAX_BYTES anyway.
@functools.cache
def _lxml():
    """lxml's etree and the HTML parser, loaded on the first page: the web process lists this tool, never runs it
    (lxml is 6 MB of its memory)."""
    import lxml.html  # noqa: PLC0415 - see the docstring
    from lxml import etree  # noqa: PLC0415

    return etree, lxml.html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, huge_tree=True)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML page. Only block elements are visited in Python; stripping the skipped ones
    and joining the text run in libxml2, so 2 MiB of tiny inline elements convert in a fraction of a second."""
    etree, parser = _lxml()
    try:
        # Bytes with the encoding given: a page's own <meta charset> or XML declaration cannot re-decode it.
        root = etree.fromstring(html.encode("utf-8", errors="replace"), parser)
    except etree.LxmlError as exc:
        raise ToolError(f"could not parse the HTML: {exc}") from None
    if root is None:  # nothing but blanks
        return "", ""
    title = "".join(element.text or "" for element in root.iter("title"))
    etree.strip_elements(root, *SKIP, with_tail=False)
    for element in root.iter(*BLOCK):
        element.text = "\n" + MARKS.get(element.tag, "") + (element.text or "")
        element.tail = ("" if element.tag == "br" else "\n") + (element.tail or "")  # <br>: one newline
    text = etree.tostring(root, method="text", encoding="unicode")
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n\s*\n\s*", "\n\n", text)
    return title.strip(), text.strip()


def _inflater(content_encoding: str):
    """None for an identity body, a zlib decompressor for gzip; we asked for nothing else."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    raise ToolError(f"unsupported content encoding: {content_encoding}")


def read_body(response: httpx.Response, limit: int, cancelled=None) -> tuple[bytes, bool]:
    """At most `limit` bytes of the decoded body, and whether there was more. A gzip body is inflated
    `limit` bytes at a time at most, so memory stays bounded whatever it expands to. Stops when the
    turn is cancelled (`cancelled`: a threading.Event)."""
    inflater = _inflater(response.headers.get("content-encoding", ""))
    body, members = bytearray(), 0
    for raw in response.iter_raw():
        if cancelled is not None and cancelled.is_set():
            raise ToolError("cancelled: the turn was cancelled while the body was read")
        pending = raw
        while pending:
            if inflater is None:
                chunk, pending = pending, b""
            else:
                try:
                    chunk = inflater.decompress(pending, limit + 1 - len(body))
                except zlib.error as exc:
                    if members:  # bytes after a whole gzip member: ignored, as httpx and browsers do
                        return bytes(body), False
                    raise ToolError(f"bad gzip body: {exc}") from None
                pending = inflater.unconsumed_tail
                if inflater.eof:  # a gzip file may hold several members, one after another
                    members += 1
                    pending, inflater = inflater.unused_data, zlib.decompressobj(16 + zlib.MAX_WBITS)
            body.extend(chunk)
            if len(body) > limit:
                return bytes(body[:limit]), True
    return bytes(body), False


def web_fetch(ctx, args):
    url = args.get("url")
    method = (args.get("method") or "GET").upper()
    if not isinstance(url, str) or not url:
        raise ToolError("url is required")
    if method not in ("GET", "HEAD"):
        raise ToolError("method must be GET or HEAD")
    try:
        parts = urlsplit(url)
        hostname, _port = parts.hostname, parts.port
        httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError: urlsplit's, and IDNA's UnicodeError
        raise ToolError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not hostname:
        raise ToolError("only http and https URLs are fetched")
    deadline = time.monotonic() + settings.WEB_FETCH_TIMEOUT
    timeout = httpx.Timeout(settings.WEB_FETCH_TIMEOUT, connect=settings.WEB_FETCH_CONNECT_TIMEOUT)
    try:
        with guarded_client(timeout, deadline) as client, client.stream(method, url) as response:
            body, truncated = b"", False
            if method == "GET":
                body, truncated = read_body(response, settings.WEB_FETCH_MAX_BYTES, getattr(ctx, "cancelled", None))
            final_url, status = str(response.url), response.status_code
            content_type = response.headers.get("content-type", "")
            encoding = response.encoding or "utf-8"
    except RefusedAddress as exc:
        raise ToolError(str(exc)) from None
    except httpx.TooManyRedirects:
        raise ToolError("too many redirects") from None
    except httpx.TimeoutException:
        raise ToolError(f"timed out after {settings.WEB_FETCH_TIMEOUT:g} s") from None
    except (httpx.InvalidURL, UnicodeError) as exc:  # a redirect's Location may be invalid too
        raise ToolError(f"invalid URL: {exc}") from None
    except httpx.HTTPError as exc:
        cause = exc.__context__ or exc.__cause__
        if isinstance(cause, RefusedAddress):
            raise ToolError(str(cause)) from None
        raise ToolError(f"request failed: {exc}") from None
    result = {"url": final_url, "status": status, "content_type": content_type, "truncated": truncated}
    if method == "HEAD":
        return result
    text = body.decode(encoding, errors="replace")
    if "html" in content_type:
        result["title"], result["content"] = html_to_text(text)
    elif content_type.startswith("text/") or "json" in content_type or "xml" in content_type or not content_type:
        result["content"] = text
    else:
        result["content"] = None
        result["note"] = f"binary content ({content_type}) not shown"
    return result


CAPABILITY = Capability(
    id="web_fetch",
    name="Web fetch",
    description="Fetch a public web page or file over HTTP(S) and read it as text.",
    category="web",
    system_prompt="Use web_fetch to read web pages. Only public addresses can be fetched.",
    tools=[
        Tool(
            "web_fetch",
            "Fetch a URL (GET returns the text content; HEAD only status and headers).",
            obj({"url": {"type": "string"}, "method": {"type": "string", "enum": ["GET", "HEAD"]}}, ["url"]),
            web_fetch,
            timeout_seconds=60.0,
        )
    ],
)
