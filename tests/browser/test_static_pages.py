"""The admin and Swagger UI in a real Chromium: every file they load is served by our own web process
(offline), in every shape a user starts, and the pages render."""

import pytest
import requests

from tests.browser.pageload import PageLoad

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TRANSPARENT = "rgba(0, 0, 0, 0)"


@pytest.fixture
def page(browser, request, screenshot_dir):
    """A fresh browser page; what it shows at the end of the test, passed or failed, is saved as a PNG."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    path = screenshot_dir / f"{request.node.name}.png"
    page.screenshot(path=path)
    print(f"screenshot: {path}")
    context.close()


def test_swagger_ui_lists_every_operation(site, page):
    load = PageLoad(page, site.url)
    page.goto(f"{site.url}/swagger-ui/", wait_until="networkidle")
    assert load.problems == []
    page.wait_for_selector(".opblock", timeout=15_000)

    schema = requests.get(f"{site.url}/api-doc/openapi.json", timeout=10).json()
    expected = {
        f"operations-{operation['tags'][0]}-{operation['operationId']}"
        for methods in schema["paths"].values()
        for operation in methods.values()
    }
    rendered = set(page.eval_on_selector_all(".opblock", "blocks => blocks.map(b => b.id)"))
    assert rendered == expected
    agents_list = page.locator("#operations-v1-agents_list")
    assert agents_list.locator(".opblock-summary-method").inner_text() == "GET"
    assert agents_list.locator(".opblock-summary-path").inner_text() == "/v1/agents"


def test_admin_login_page_is_styled(site, page):
    load = PageLoad(page, site.url)
    page.goto(f"{site.url}/admin/login/", wait_until="networkidle")
    assert load.problems == []
    for stylesheet in ("base.css", "login.css"):
        response = load.responses[f"/static/admin/css/{stylesheet}"]
        assert response.status == 200
        # Only collectstatic writes compressed copies: a compressed response shows its output is served.
        encoding = response.all_headers().get("content-encoding")
        assert (encoding in ("gzip", "br")) if site.collected else (encoding is None), encoding
    # base.css: the header's colour and the admin's font; login.css: the narrow login box.
    assert page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor") != TRANSPARENT
    assert "Segoe UI" in page.eval_on_selector("body", "e => getComputedStyle(e).fontFamily")
    assert page.eval_on_selector("#container", "e => e.getBoundingClientRect().width") < 640
    assert page.locator("input[name=username]").is_visible()
