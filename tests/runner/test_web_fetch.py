"""web_fetch against a local HTTP server (allowed by WEB_FETCH_ALLOWED_HOSTS), and its refusals."""

import gzip
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler

import pytest

from runner.tools.base import ToolContext, ToolError
from runner.tools.web_fetch import web_fetch
from tests.fake_llm_server import QuietServer
from tests.rebinding import PUBLIC, no_public_traffic, rebinding_resolver

# 64 MiB of zeros in about 64 KB of gzip, made once (before any memory is measured).
GZIP_BOMB = gzip.compress(bytes(64 * 1024 * 1024), compresslevel=9)
GZIP_PAGE = gzip.compress(b"<html><title>Zipped</title><p>" + b"words " * 1000 + b"</p></html>")
REFUSED = r"^refused: (\S+ is not a public address|\S+ is a cloud metadata host|\S+ is a 6to4 address)$"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET()

    def trickle(self, head: bytes, then: bytes):
        """Send `head`, then `then` one byte every 0.2 s (or until the client hangs up)."""
        self.wfile.write(head)
        self.wfile.flush()
        for byte in then:
            time.sleep(0.2)
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return
        self.close_connection = True

    def send_body(self, ctype: str, body: bytes, encoding: str = ""):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client stopped reading, as it should past its limit
            pass

    def do_GET(self):
        port = self.server.server_address[1]
        if self.path == "/trickle-headers":
            self.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Slow: ", b"a" * 46 + b"\r\n\r\n")
            return
        if self.path == "/trickle-body":
            self.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 50\r\n\r\n", b"b" * 50)
            return
        if self.path == "/gzip-bomb":
            self.send_body("text/plain", GZIP_BOMB, "gzip")
            return
        if self.path == "/gzip-page":
            self.send_body("text/html", GZIP_PAGE, "gzip")
            return
        if self.path == "/brotli":
            self.send_body("text/plain", b"\x0b\x02\x80hello\x03", "br")
            return
        if self.path == "/bad-html":
            self.send_body("text/html", b"<html><![foo[x]]></html>")
            return
        if self.path == "/pathological-html":  # minutes of html.parser, with the GIL held
            self.send_body("text/html", b"<p>start</p>" + b"<a" * 80_000)
            return
        routes = {
            "/page": (
                200,
                "text/html",
                b"<html><head><title>Hi</title><script>x()</script></head>"
                b"<body><h1>Title</h1><p>First para.</p><ul><li>one</li></ul></body></html>",
            ),
            "/big": (200, "text/plain", b"x" * 5000),
            "/json": (200, "application/json", b'{"a": 1}'),
        }
        if self.path == "/to-localhost":
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{port}/page")
            self.end_headers()
            return
        if self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if self.path == "/to-page":
            self.send_response(301)
            self.send_header("Location", "/page")
            self.end_headers()
            return
        if self.path == "/slow":
            time.sleep(3)
        status, ctype, body = routes.get(self.path, (404, "text/plain", b"missing"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


@pytest.fixture(scope="module")
def site():
    server = QuietServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def allow_local(settings):
    settings.WEB_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]


def test_fetches_html_as_text(site, allow_local):
    result = web_fetch(None, {"url": f"{site}/page"})
    assert result["status"] == 200 and result["title"] == "Hi"
    assert "# Title" in result["content"] and "First para." in result["content"] and "- one" in result["content"]
    assert "x()" not in result["content"] and result["truncated"] is False


def test_a_page_that_took_html_parser_minutes_is_read_at_once(site, allow_local):
    started = time.monotonic()
    result = web_fetch(None, {"url": f"{site}/pathological-html"})
    assert time.monotonic() - started < 5  # a regression guard, not a benchmark
    assert result["status"] == 200 and result["content"].startswith("start")


def test_follows_allowed_redirects_and_head(site, allow_local):
    assert web_fetch(None, {"url": f"{site}/to-page"})["url"].endswith("/page")
    head = web_fetch(None, {"url": f"{site}/page", "method": "HEAD"})
    assert head["status"] == 200 and "content" not in head


def test_size_cap_truncates(site, allow_local, settings):
    settings.WEB_FETCH_MAX_BYTES = 1000
    result = web_fetch(None, {"url": f"{site}/big"})
    assert result["truncated"] is True and len(result["content"]) == 1000


def test_a_cancelled_turn_stops_the_fetch_while_the_body_arrives(site, allow_local):
    ctx = ToolContext(session_id="s")
    threading.Timer(0.5, ctx.cancelled.set).start()
    started = time.monotonic()
    with pytest.raises(ToolError, match="^cancelled"):
        web_fetch(ctx, {"url": f"{site}/trickle-body"})  # 50 bytes at 5 a second: 10 s if read to the end
    assert time.monotonic() - started < 3


def test_time_limit(site, allow_local, settings):
    settings.WEB_FETCH_TIMEOUT = 1
    with pytest.raises(ToolError, match="timed out"):
        web_fetch(None, {"url": f"{site}/slow"})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://localhost/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://metadata.google.internal/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://224.0.0.1/",
        "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/",  # 6to4 of 169.254.169.254
        "http://[2002:c000:201::]/",  # 6to4 of 192.0.2.1 (a documentation address): 6to4 is refused whole
    ],
)
def test_refuses_non_public_addresses(url):
    # Our own refusal, not the "Connection refused" of a port where nothing listens.
    with pytest.raises(ToolError, match=REFUSED):
        web_fetch(None, {"url": url})


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_refuses_a_loopback_server_that_is_listening(site, host):
    port = site.rsplit(":", 1)[1]
    with pytest.raises(ToolError, match=REFUSED):
        web_fetch(None, {"url": f"http://{host}:{port}/page"})


def test_refuses_a_redirect_to_loopback_even_from_an_allowed_host(site, allow_local):
    with pytest.raises(ToolError, match=REFUSED):
        web_fetch(None, {"url": f"{site}/to-localhost"})
    with pytest.raises(ToolError, match=REFUSED):
        web_fetch(None, {"url": f"{site}/to-metadata"})


def test_a_rebinding_name_is_fetched_from_its_checked_address_only(site, monkeypatch):
    """DNS rebinding: the name answers a public address, then loopback. The fetch connects to the address it
    checked (the public one, which the stub keeps traffic off), never to the loopback server."""
    answers = rebinding_resolver(monkeypatch, "rebind.test")
    targets = no_public_traffic(monkeypatch)
    port = site.rsplit(":", 1)[1]
    with pytest.raises(ToolError, match="not reached from tests"):
        web_fetch(None, {"url": f"http://rebind.test:{port}/page"})
    assert targets == [PUBLIC] and answers["rebind.test"] == 1


@pytest.mark.parametrize("args", [{"url": "ftp://example.com/"}, {"url": ""}, {"url": "http://x/", "method": "POST"}])
def test_bad_arguments(args):
    with pytest.raises(ToolError):
        web_fetch(None, args)


@pytest.mark.parametrize("path", ["/trickle-headers", "/trickle-body"])
def test_the_time_limit_holds_while_a_server_trickles_bytes(site, allow_local, settings, path):
    # Each byte comes well within httpx's per-read timeout; only a deadline over the whole fetch stops it.
    settings.WEB_FETCH_TIMEOUT = 1
    started = time.monotonic()
    with pytest.raises(ToolError, match="timed out after 1 s"):
        web_fetch(None, {"url": f"{site}{path}"})
    assert time.monotonic() - started < 2.5


def test_a_gzip_bomb_is_inflated_only_up_to_the_size_cap(site, allow_local, settings):
    settings.WEB_FETCH_MAX_BYTES = 1024 * 1024
    tracemalloc.start()
    try:
        result = web_fetch(None, {"url": f"{site}/gzip-bomb"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result["truncated"] is True and len(result["content"]) == 1024 * 1024
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


def test_a_gzip_page_is_read_whole(site, allow_local):
    result = web_fetch(None, {"url": f"{site}/gzip-page"})
    assert result["title"] == "Zipped" and result["content"].count("words") == 1000 and result["truncated"] is False


def test_an_encoding_it_did_not_ask_for_is_a_tool_error(site, allow_local):
    with pytest.raises(ToolError, match="unsupported content encoding: br"):
        web_fetch(None, {"url": f"{site}/brotli"})


def test_html_that_html_parser_refused_is_read(site, allow_local):
    result = web_fetch(None, {"url": f"{site}/bad-html"})  # `<![foo[x]]>`: Python 3.11's html.parser asserted
    assert result["status"] == 200 and isinstance(result["content"], str)


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://example.com:99999/", "http://exa\x00mple.com/", "http://xn--/", "http://\u2100.com/"],
)
def test_invalid_urls_are_tool_errors(url):
    with pytest.raises(ToolError, match="invalid URL"):
        web_fetch(None, {"url": url})
