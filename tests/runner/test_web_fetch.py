"""web_fetch against a local HTTP server (allowed by WEB_FETCH_ALLOWED_HOSTS), and its refusals."""

import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from runner.tools.base import ToolError
from runner.tools.web_fetch import web_fetch
from tests.fake_llm_server import QuietServer

REFUSED = r"^refused: (\S+ is not a public address|\S+ is a cloud metadata host)$"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        port = self.server.server_address[1]
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


def test_follows_allowed_redirects_and_head(site, allow_local):
    assert web_fetch(None, {"url": f"{site}/to-page"})["url"].endswith("/page")
    head = web_fetch(None, {"url": f"{site}/page", "method": "HEAD"})
    assert head["status"] == 200 and "content" not in head


def test_size_cap_truncates(site, allow_local, settings):
    settings.WEB_FETCH_MAX_BYTES = 1000
    result = web_fetch(None, {"url": f"{site}/big"})
    assert result["truncated"] is True and len(result["content"]) == 1000


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


@pytest.mark.parametrize("args", [{"url": "ftp://example.com/"}, {"url": ""}, {"url": "http://x/", "method": "POST"}])
def test_bad_arguments(args):
    with pytest.raises(ToolError):
        web_fetch(None, args)
