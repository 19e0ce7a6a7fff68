"""The debug pages and the admin in a real Chromium, against a real web process and worker on the test
database. The web process runs the production shape (AUTH_MODE=api_key), so the pages are used as staff
through Django's admin login; the browser reaches it through a proxy whose network a test can cut.
Screenshots of every page go to tests/browser/screenshots/ (see conftest.py)."""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from agents.models import Agent
from everruns.api.keys import api_key_create
from sessions.log import append_event, append_message
from sessions.models import Event, Session
from tests import processes
from tests.browser.netcut import CuttableProxy
from tests.browser.pageload import PageLoad
from tests.conftest import wait_for
from tests.factories import make_agent, make_model, make_session

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
expect.set_options(timeout=15_000)

PASSWORD = "debug-pages-password"
VIEWPORTS = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
UUID = r"[0-9a-f-]{36}"


@pytest.fixture(scope="module", autouse=True)
def orm_beside_playwright():
    """Playwright's sync API marks an event loop as running on this thread, and Django then refuses ORM calls,
    although nothing runs on that loop while a test makes them: allowed in this module only."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass(frozen=True)
class Site:
    url: str  # what the browser uses: the proxy
    direct: str  # the web process itself, for the test's own API calls
    proxy: CuttableProxy


@pytest.fixture(scope="module")
def site(django_db_setup, log_dir, worker):
    proc, url = processes.start_web(log_dir, **processes.WEB_ENV, AUTH_MODE="api_key")
    proxy = CuttableProxy(url)
    yield Site(url=proxy.url, direct=url, proxy=proxy)
    proxy.stop()
    proc.stop()


@pytest.fixture
def staff(seeded_tx, django_user_model):
    """Staff, not a superuser: that is all the debug pages ask for."""
    return django_user_model.objects.create_user("ops", password=PASSWORD, is_staff=True)


@pytest.fixture
def api(seeded_tx, site) -> requests.Session:
    """The test's own client of the API (an API key), beside the browser."""
    client = requests.Session()
    client.headers["Authorization"] = f"Bearer {api_key_create(name='browser tests')[1]}"
    return client


@pytest.fixture
def page(browser, site, staff, request, screenshot_dir):
    """A logged-in page; what it shows at the end of the test, passed or failed, is saved as a PNG."""
    context = browser.new_context(viewport=VIEWPORTS["laptop"], accept_downloads=True)
    page = context.new_page()
    log_in(page, site.url, "/debug/")
    yield page
    shot(page, screenshot_dir, request.node.name)
    context.close()


def log_in(page, url: str, path: str, username: str = "ops") -> None:
    page.goto(f"{url}{path}")
    expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(f"{url}{path}")


def shot(page, screenshot_dir: Path, name: str) -> None:
    path = screenshot_dir / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    print(f"screenshot: {path}")


def session_url(site, session) -> str:
    return f"{site.url}/debug/agents/{session.agent_id}/sessions/{session.pk}/"


def open_session(page, site, session) -> None:
    page.goto(session_url(site, session))
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")


def send(page, text: str) -> None:
    page.fill("#message-form textarea", text)
    page.press("#message-form textarea", "Enter")
    expect(page.locator("#message-form textarea")).to_have_value("")


def stored_events(session) -> list[list]:
    return [
        [s, t] for s, t in Event.objects.filter(session=session).order_by("sequence").values_list("sequence", "type")
    ]


def timeline(page) -> list[list]:
    return page.locator("#timeline .ev").evaluate_all("rows => rows.map(r => [Number(r.dataset.seq), r.dataset.type])")


def turns_ended(session) -> int:
    return Event.objects.filter(session=session, type__in=["turn.completed", "turn.failed", "turn.cancelled"]).count()


def assert_every_event_once(page, session) -> None:
    stored = stored_events(session)
    expect(page.locator("#timeline .ev")).to_have_count(len(stored))
    assert timeline(page) == stored
    expect(page.locator("#timeline")).to_have_attribute("data-duplicates", "0")
    expect(page.locator("#timeline")).to_have_attribute("data-gaps", "0")


def test_create_an_agent_in_the_page_send_a_message_and_see_the_answer_stream_in(page, site, screenshot_dir):
    model = make_model(model_id="llmsim-streaming", settings={"tokens_per_second": 8})  # a few words a second
    page.reload()  # the form lists the models there are
    if page.get_attribute("#new-agent", "open") is None:
        page.click("#new-agent summary")
    page.fill("#agent-form [name=name]", "Streaming helper")
    page.fill("#agent-form [name=system_prompt]", "You answer slowly.")
    page.fill("#agent-form [name=tags]", "demo, browser")
    page.check("#agent-form [name=capabilities][value=test_math]")
    page.select_option("#agent-form [name=default_model_id]", str(model.pk))
    page.click("#agent-form button[type=submit]")

    expect(page).to_have_url(re.compile(rf"/debug/agents/{UUID}/$"))
    expect(page.locator("h1")).to_contain_text("Streaming helper")
    agent = Agent.objects.get(name="Streaming helper")
    assert (agent.capabilities, agent.tags, agent.default_model_id) == (["test_math"], ["demo", "browser"], model.pk)
    shot(page, screenshot_dir, "debug-agent")

    page.click("#start-session button")
    expect(page).to_have_url(re.compile(rf"/debug/agents/{agent.pk}/sessions/{UUID}/$"))
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    send(page, "Tell me something about clouds")

    expect(page.locator(".msg.user .text")).to_have_text("Tell me something about clouds")
    streaming = page.locator(".msg.assistant.streaming .text")
    expect(streaming).to_have_text(re.compile(r"\S"))
    partial = streaming.inner_text()
    answer = 'You said: "Tell me something about clouds". This is a simulated reply from llmsim.'
    final = page.locator(".msg.assistant:not(.streaming) .text")
    expect(final).to_have_text(answer)
    assert answer.startswith(partial) and len(partial) < len(answer), partial
    expect(page.locator("#status")).to_have_text("pending")
    expect(page.locator("#usage-in")).not_to_have_text("0")
    expect(page.locator("#cancel-form")).to_be_hidden()


def test_a_tool_call_with_its_arguments_and_result_and_the_timeline_of_its_events(page, site, screenshot_dir):
    session = make_session(make_agent(name="Calculator", capabilities=["test_math"]))
    open_session(page, site, session)
    send(page, "What is 7 + 8?")

    call = page.locator(".tool-call")
    expect(call.locator(".tool-name")).to_have_text("add")
    expect(call.locator("pre.args")).to_have_text('{"a":7,"b":8}')
    expect(call.locator(".result pre")).to_have_text('{"result":15}')
    expect(call.locator(".call-status")).to_contain_text("success")
    expect(page.locator(".msg.assistant .text").last).to_have_text("7 + 8 = 15.")
    expect(page.locator(".turn-end")).to_have_count(1)
    assert_every_event_once(page, session)

    for finished in ("llm.completed", "tool.completed", "turn.completed"):  # paired with its start
        expect(page.locator(f'#timeline .ev[data-type="{finished}"] .dur').first).to_have_text(re.compile(r"\d ms|s$"))
    page.select_option("#type-filter", "tool.*")
    expect(page.locator("#timeline .ev:visible")).to_have_count(2)
    started = page.locator('#timeline .ev[data-type="tool.started"]')
    started.locator("summary").click()
    expect(started.locator("pre")).to_contain_text('"name": "add"')
    page.select_option("#type-filter", "")
    expect(page.locator("#timeline .ev:visible")).to_have_count(len(stored_events(session)))

    page.click("#context-panel summary")
    context = page.locator("#context .context")
    expect(context).to_contain_text('"content": "7 + 8 = 15."')  # refreshed when the turn ended
    expect(context.locator(".chip.tool")).to_have_text(["add", "subtract", "multiply", "divide"])
    shot(page, screenshot_dir, "debug-session-tool-call")


def test_approve_and_deny_a_tool_call(page, site, screenshot_dir):
    agent = make_agent(name="Careful", capabilities=["test_math"])
    Agent.objects.filter(pk=agent.pk).update(tool_policy={"add": "ask"})
    session = make_session(agent)
    open_session(page, site, session)
    send(page, "What is 2 + 5?")

    approval = page.locator(".approval")
    expect(approval.locator("button.approve")).to_be_visible()
    expect(page.locator("#status")).to_have_text("waiting")
    expect(page.locator(".tool-call .call-status")).to_have_text("waiting for approval")
    expect(page.locator("#usage-in")).not_to_have_text("0")  # the first call's tokens, while the turn waits
    shot(page, screenshot_dir, "debug-session-approval")
    approval.locator("input").fill("looks right")
    approval.locator("button.approve").click()

    expect(approval).to_contain_text("Approved")
    expect(page.locator(".tool-call .result pre")).to_have_text('{"result":7}')
    expect(page.locator(".msg.assistant .text").last).to_have_text("2 + 5 = 7.")
    expect(page.locator("#status")).to_have_text("pending")
    resolved = Event.objects.get(session=session, type="tool.approval_resolved").data
    assert resolved["approved"] is True and resolved["reason"] == "looks right"

    send(page, "What is 3 + 4?")
    denial = page.locator(".approval").nth(1)
    denial.locator("input").fill("not now")
    denial.locator("button.deny").click()
    expect(denial).to_contain_text("Denied")
    expect(page.locator(".tool-call .result.error pre")).to_contain_text("denied: not now")
    expect(page.locator(".turn-end")).to_have_count(2)
    expect(page.locator("#status")).to_have_text("pending")


def test_an_approval_request_from_the_log_shows_its_buttons_and_its_outcome_live(page, site):
    """The page's side of approvals, from events written straight to the log (sessions.log): the request may
    even come before the message that made the call."""
    session = make_session(make_agent(name="Logged", capabilities=["test_math"]))
    call = {"type": "tool_call", "id": "call_logged", "name": "add", "arguments": {"a": 1, "b": 2}}
    append_message(session_id=session.pk, role="user", content=[{"type": "text", "text": "What is 1 + 2?"}])
    request = {"tool_call_id": call["id"], "name": "add", "arguments": call["arguments"]}
    append_event(session_id=session.pk, type="tool.approval_requested", data=request)
    append_message(session_id=session.pk, role="assistant", content=[call], metadata={"model": "llmsim-1"})
    Session.objects.filter(pk=session.pk).update(status=Session.Status.WAITING)
    append_event(session_id=session.pk, type="session.status", data={"status": "waiting", "previous": "running"})
    open_session(page, site, session)

    block = page.locator(".msg.assistant .tool-call")
    expect(block.locator(".approval button.approve")).to_be_visible()
    expect(block.locator(".approval button.deny")).to_be_visible()
    expect(block.locator("pre.args")).to_have_text('{"a":1,"b":2}')
    expect(page.locator(".orphan")).to_have_count(0)
    expect(page.locator("#status")).to_have_text("waiting")
    expect(page.locator("#cancel-form")).to_be_visible()

    append_event(
        session_id=session.pk, type="tool.approval_resolved", data={**request, "approved": False, "reason": "no"}
    )
    expect(block.locator(".approval")).to_contain_text("Denied")
    expect(block.locator(".approval button")).to_have_count(0)
    expect(block.locator(".call-status")).to_have_text("denied")
    assert_every_event_once(page, session)


def test_cancel_a_slow_turn(page, site):
    slow = make_model(model_id="llmsim-slow", settings={"tokens_per_second": 1})  # a word a second
    session = make_session(make_agent(name="Slow"), model_id=slow.pk)
    open_session(page, site, session)
    send(page, "Take your time")

    expect(page.locator("#status")).to_have_text("running")
    expect(page.locator(".msg.assistant.streaming .text")).to_have_text(re.compile(r"\S"))  # mid-answer
    page.click("#cancel")
    expect(page.locator(".notice.warn")).to_contain_text("Turn cancelled: Cancelled from the debug page")
    expect(page.locator("#status")).to_have_text("pending")
    expect(page.locator("#cancel-form")).to_be_hidden()
    # The partial answer is kept, marked, and shown once: no stream is left running on the page.
    expect(page.locator(".msg.assistant")).to_have_count(1)
    expect(page.locator(".msg.assistant .meta")).to_contain_text("cancelled")
    kept = page.locator(".msg.assistant .text").inner_text()
    assert 'You said: "Take your time". This is a simulated reply from llmsim.'.startswith(kept) and kept
    assert Event.objects.filter(session=session, type="turn.cancelled").count() == 1
    assert_every_event_once(page, session)


def test_the_stream_resumes_without_duplicates_after_the_network_is_cut(page, site, api, screenshot_dir):
    session = make_session(make_agent(name="Resumer", capabilities=["test_math"]))
    open_session(page, site, session)
    send(page, "What is 1 + 1?")
    expect(page.locator(".turn-end")).to_have_count(1)
    seen = len(stored_events(session))

    site.proxy.cut()
    try:
        expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        # A turn runs while the page is cut off: its events reach only the log.
        messages = f"{site.direct}/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"
        posted = api.post(messages, json={"message": {"content": [{"type": "text", "text": "What is 3 + 4?"}]}})
        assert posted.status_code == 201, posted.text
        wait_for(lambda: turns_ended(session) == 2, message="the second turn to end")
        expect(page.locator("#timeline .ev")).to_have_count(seen)
        shot(page, screenshot_dir, "debug-session-cut-off")
    finally:
        site.proxy.restore()

    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=30_000)
    expect(page.locator(".turn-end")).to_have_count(2)
    expect(page.locator(".msg.assistant .text").last).to_have_text("3 + 4 = 7.")
    expect(page.locator(".msg.user")).to_have_count(2)
    assert_every_event_once(page, session)


def test_the_stream_resumes_without_duplicates_after_the_browser_was_offline(page, site, api):
    session = make_session(make_agent(name="Offline", capabilities=["test_math"]))
    open_session(page, site, session)
    send(page, "What is 2 + 2?")
    expect(page.locator(".turn-end")).to_have_count(1)

    page.context.set_offline(True)
    expect(page.locator("#conn")).to_have_attribute("data-state", "offline")
    messages = f"{site.direct}/v1/agents/{session.agent_id}/sessions/{session.pk}/messages"
    assert api.post(messages, json={"message": {"content": [{"type": "text", "text": "What is 5 * 5?"}]}}).ok
    wait_for(lambda: turns_ended(session) == 2, message="the second turn to end")
    page.context.set_offline(False)

    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator(".msg.assistant .text").last).to_have_text("5 * 5 = 25.")
    assert_every_event_once(page, session)


def test_a_reload_shows_the_same_history(page, site):
    session = make_session(make_agent(name="Reloaded", capabilities=["test_math"]))
    open_session(page, site, session)
    send(page, "What is 6 * 7?")
    expect(page.locator(".turn-end")).to_have_count(1)
    expect(page.locator(".msg.assistant .meta")).to_have_count(2)
    conversation, events = page.inner_text("#conversation"), timeline(page)

    page.reload()
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(page.locator("#timeline .ev")).to_have_count(len(events))
    expect(page.locator(".turn-end")).to_have_count(1)
    assert page.inner_text("#conversation") == conversation
    assert timeline(page) == events == stored_events(session)


def test_export_an_agent_then_import_it(page, site, screenshot_dir):
    agent = make_agent(
        name="Forecaster",
        description="Weather, briefly",
        tags=["weather"],
        capabilities=["test_weather"],
        system_prompt="You forecast.\n\nAlways in metric units.",
    )
    page.goto(f"{site.url}/debug/agents/{agent.pk}/")
    with page.expect_download() as downloaded:
        page.click("#export")
    download = downloaded.value
    assert download.suggested_filename == "Forecaster.md"
    text = Path(download.path()).read_text()
    assert text.startswith("---\nname: Forecaster\n") and text.endswith("---\nYou forecast.\n\nAlways in metric units.")
    Agent.objects.filter(pk=agent.pk).update(name="Forecaster (original)")

    page.goto(f"{site.url}/debug/")
    page.click("#import-agent summary")
    page.set_input_files("#import-form [name=file]", download.path())
    page.click("#import-form button[type=submit]")
    expect(page).to_have_url(re.compile(rf"/debug/agents/{UUID}/$"))
    expect(page.locator("h1")).to_contain_text("Forecaster")
    imported = Agent.objects.get(name="Forecaster")
    assert imported.pk != agent.pk
    assert (imported.description, imported.tags, imported.capabilities) == (
        "Weather, briefly",
        ["weather"],
        ["test_weather"],
    )
    assert imported.system_prompt == agent.system_prompt

    page.goto(f"{site.url}/debug/")
    page.click("#import-agent summary")
    page.fill("#import-form [name=text]", "Haiku writer\nAnswer in haiku only.")
    page.click("#import-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Haiku writer")
    page.goto(f"{site.url}/debug/")
    page.click("#import-agent summary")
    page.fill("#import-form [name=text]", "---\nname: Broken\ncapabilities: [teleport]\n---\nPrompt")
    page.click("#import-form button[type=submit]")
    expect(page.locator("#import-form .form-error")).to_contain_text("teleport")
    shot(page, screenshot_dir, "debug-import-error")


def test_admin_login_and_archive_an_agent(browser, site, seeded_tx, django_user_model, screenshot_dir):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    agent = make_agent(name="To be archived")
    context = browser.new_context(viewport=VIEWPORTS["laptop"])
    page = context.new_page()
    try:
        log_in(page, site.url, "/admin/", username="admin")
        expect(page.locator("#user-tools")).to_contain_text("Debug pages")
        page.goto(f"{site.url}/admin/agents/agent/")
        page.check(f'input[name=_selected_action][value="{agent.pk}"]')
        page.select_option("select[name=action]", "archive")
        page.click("button[name=index]")
        expect(page.locator(".messagelist")).to_contain_text("Archived 1 agent(s).")
        agent.refresh_from_db()
        assert agent.status == "archived"
        shot(page, screenshot_dir, "admin-archived")
    finally:
        context.close()


def test_every_page_on_a_laptop_and_a_phone(browser, site, staff, api, screenshot_dir):
    """Screenshots of the main pages at both sizes; every file from our own origin, nothing wider than
    the screen."""
    agent = make_agent(name="Showcase", description="For the screenshots", capabilities=["test_math", "current_time"])
    session = make_session(agent, title="What is 7 + 8?")
    base = f"{site.direct}/v1/agents/{agent.pk}/sessions/{session.pk}"
    assert api.post(f"{base}/messages", json={"message": {"content": [{"type": "text", "text": "What is 7 + 8?"}]}}).ok
    wait_for(lambda: turns_ended(session) == 1, message="the turn to end")
    pages = {
        "agents": "/debug/",
        "agent": f"/debug/agents/{agent.pk}/",
        "session": f"/debug/agents/{agent.pk}/sessions/{session.pk}/",
        "context": f"/debug/agents/{agent.pk}/sessions/{session.pk}/context/",
        "capabilities": "/debug/capabilities/",
        "providers": "/debug/providers/",
    }
    for size, viewport in VIEWPORTS.items():
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        try:
            log_in(page, site.url, "/debug/")
            load = PageLoad(page, site.url)
            for name, path in pages.items():
                page.goto(f"{site.url}{path}")
                if name == "session":
                    expect(page.locator(".turn-end")).to_have_count(1)
                    page.click("#context-panel summary")
                shot(page, screenshot_dir, f"debug-{name}-{size}")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], f"{name} is {width}px wide on a {viewport['width']}px {size}"
            # Leaving the session page ends its event stream and any fetch in flight: aborted, not failed.
            left = [p for p in load.problems if not p.endswith("net::ERR_ABORTED")]
            assert left == []
        finally:
            context.close()


def test_pages_are_open_without_a_login_when_auth_mode_is_none(browser, web, seeded_tx):
    """The quick start's shape (`make run`): no login, and the page's API calls need no key."""
    context = browser.new_context(viewport=VIEWPORTS["laptop"])
    page = context.new_page()
    try:
        page.goto(f"{web}/debug/")
        expect(page).to_have_url(f"{web}/debug/")
        page.fill("#agent-form [name=name]", "Open agent")
        page.fill("#agent-form [name=system_prompt]", "Hello.")
        page.click("#agent-form button[type=submit]")
        expect(page.locator("h1")).to_contain_text("Open agent")
        page.click("#start-session button")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        send(page, "Hi")
        expect(page.locator(".msg.assistant:not(.streaming) .text")).to_contain_text("simulated reply")
    finally:
        context.close()
