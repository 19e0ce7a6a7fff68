"""The debug pages under /debug/: server-rendered reads (selectors), and plain JavaScript (static/debug/) that
writes through the JSON API and follows a session live over its event stream.

Access: open with AUTH_MODE=none; otherwise a logged-in active staff user (Django's admin login). The
pages' own API calls then use the same session cookie, with the CSRF token for writes
(everruns/api/auth.py), and the event stream accepts the cookie too (sessions/streams/sse.py): no key or token is
ever put in a page.
"""

import functools
import json

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET

from agents import selectors as agent_selectors
from agents.models import Agent
from everruns.core.errors import NotFound
from everruns.debug import context, selectors
from sessions import selectors as session_selectors
from sessions.models import Session
from sessions.webhooks import selectors as webhook_selectors

PAGE_SIZE = 50
# Everything a page loads comes from this origin; no inline script or style can run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def allowed(user) -> bool:
    return settings.AUTH_MODE == "none" or bool(user.is_authenticated and user.is_active and user.is_staff)


def debug_page(view):
    @functools.wraps(view)
    @require_GET
    def wrapped(request, *args, **kwargs):
        if not allowed(request.user):
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        try:
            response = view(request, *args, **kwargs)
        except NotFound:
            raise Http404 from None
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        add_never_cache_headers(response)
        return response

    return wrapped


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


@debug_page
def agents_page(request):
    status = request.GET.get("status") or "active"
    if status not in ("active", "archived", "all"):
        status = "active"
    search = (request.GET.get("q") or "").replace("\x00", "").strip()
    return render(
        request,
        "debug/agents.html",
        {
            "page": _page(request, selectors.agents_with_counts(status=status, search=search or None)),
            "status": status,
            "q": search,
            "capabilities": agent_selectors.capability_list(),
            "models": selectors.model_choices(),
        },
    )


@debug_page
def agent_page(request, agent_id):
    agent = agent_selectors.agent_get(agent_id=agent_id)
    return render(
        request,
        "debug/agent.html",
        {
            "agent": agent,
            "archived": agent.status == Agent.Status.ARCHIVED,
            "capabilities": [_capability(c) for c in agent.capabilities or []],
            "page": _page(request, selectors.agent_sessions(agent_id=agent.pk)),
        },
    )


@debug_page
def session_page(request, agent_id, session_id):
    session = session_selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
    return render(
        request,
        "debug/session.html",
        {
            "session": session,
            "agent": session.agent,
            "busy": session.status in (Session.Status.RUNNING, Session.Status.WAITING),
            "call": context.next_call(session),
        },
    )


@debug_page
def context_page(request, agent_id, session_id):
    """The next LLM call's context; `?fragment=1` is the part the session page swaps in when a turn ends."""
    session = session_selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
    template = "debug/_context.html" if request.GET.get("fragment") else "debug/context.html"
    return render(request, template, {"session": session, "agent": session.agent, "call": context.next_call(session)})


@debug_page
def deliveries_page(request, agent_id, session_id):
    """The session's webhook deliveries: where each event went, how many attempts, what came back."""
    session = session_selectors.session_get(agent_id=agent_id, session_id=session_id, with_agent=True)
    deliveries = webhook_selectors.session_deliveries(session_id=session.pk)
    return render(
        request, "debug/deliveries.html", {"session": session, "agent": session.agent, "deliveries": deliveries}
    )


@debug_page
def capabilities_page(request):
    capabilities = [
        {**c, "tools": [{**t, "parameters_json": json.dumps(t["parameters"], indent=2)} for t in c["tools"]]}
        for c in agent_selectors.capability_list()
    ]
    return render(request, "debug/capabilities.html", {"capabilities": capabilities})


@debug_page
def providers_page(request):
    # Providers as the API shows them: `api_key_set`, never the key.
    context = {"providers": selectors.providers_with_models(), "mcp_servers": selectors.mcp_servers()}
    return render(request, "debug/providers.html", context)


def _capability(capability_id: str) -> dict:
    try:
        return agent_selectors.capability_get(capability_id=capability_id)
    except NotFound:
        return {"id": capability_id, "name": capability_id, "description": "(no longer available)", "tools": []}
