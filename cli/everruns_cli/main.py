"""The `everruns` commands (Click). Exit codes: 0 ok, 1 an API error (its message on stderr), 2 a usage error,
3 the turn failed (or was cancelled elsewhere), 130 interrupted (Ctrl-C)."""

import sys
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console

from everruns_cli import __version__
from everruns_cli.chat import Outcome, run_turn
from everruns_cli.client import Api, ApiError, find_agent_of_session, is_uuid, session_path
from everruns_cli.config import ConfigError, config_path, read_config, resolve, write_config
from everruns_cli.render import EventPrinter, call_text, content_text, details, error_text, json_line, table
from everruns_cli.stream import EventFollower

EXIT_API, EXIT_USAGE, EXIT_TURN_FAILED, EXIT_INTERRUPTED = 1, 2, 3, 130
DENY_REASON = "the user said no at the command line"

# Piped, tables are as wide as their content (a script reads whole ids); on a terminal, its width.
out = Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else 1000)
err = Console(stderr=True, soft_wrap=True, highlight=False)


@dataclass
class State:
    """The options every command takes (anywhere on the line) and the client they make."""

    json: bool = False
    url: str | None = None
    api_key: str | None = None
    client: Api | None = None

    def api(self) -> Api:
        if self.client is None:
            target = resolve(url=self.url, api_key=self.api_key)
            self.client = Api(target.url, target.api_key)
        return self.client


def _store(name: str):
    def callback(ctx: click.Context, param, value):
        if value:
            setattr(ctx.ensure_object(State), name, value)

    return callback


def common(f):
    """--json, --url and --api-key on every group and command, so they may stand anywhere on the line."""
    f = click.option("--api-key", expose_value=False, callback=_store("api_key"), help="API key (EVERRUNS_API_KEY).")(f)
    f = click.option("--url", expose_value=False, callback=_store("url"), help="Server URL (EVERRUNS_URL).")(f)
    return click.option(
        "--json", "json_", is_flag=True, expose_value=False, callback=_store("json"), help="Print JSON."
    )(f)


def state() -> State:
    return click.get_current_context().ensure_object(State)


def emit(data, human) -> None:
    """JSON of the API's answer with --json, else what `human()` prints."""
    if state().json:
        click.echo(json_line(data))
    else:
        human()


def model_uuid(api: Api, value: str | None) -> str | None:
    """A model's id, given its id or its `model_id` (the name a provider knows it by)."""
    if value is None or is_uuid(value):
        return value
    found = [m["id"] for m in api.items("/v1/llm-models") if m.get("model_id") == value]
    if len(found) != 1:
        what = "no model" if not found else f"{len(found)} models"
        raise click.BadParameter(f"{what} with model_id {value!r} (give the model's id)", param_hint="--model")
    return found[0]


def list_options(f):
    f = click.option("--offset", type=click.IntRange(min=0), default=None, help="Skip this many.")(f)
    return click.option("--limit", type=click.IntRange(1, 500), default=None, help="At most this many (50).")(f)


def show_list(kind: str, page: dict) -> None:
    def human():
        out.print(table(kind, page["items"]))
        if page["total"] > len(page["items"]):
            shown = f"{page['offset'] + 1}-{page['offset'] + len(page['items'])}" if page["items"] else "none"
            err.print(f"({shown} of {page['total']}; --limit/--offset for more)", style="dim")

    emit(page, human)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="everruns")
@common
def cli():
    """Talk to Everruns agents, watch sessions and approve tools from a terminal.

    The server is --url, EVERRUNS_URL, the config file (`everruns config show`) or http://localhost:9000.
    """


# --- agents ---------------------------------------------------------------------------------------


@cli.group()
@common
def agents():
    """Create, list, show, export and import agents."""


AGENT_FIELDS = [
    "id",
    "name",
    "description",
    "tags",
    "capabilities",
    "default_model_id",
    "tool_policy",
    "limits",
    "max_iterations",
    "status",
    "created_at",
]


def show_agent(agent: dict) -> None:
    def human():
        out.print(details(agent, AGENT_FIELDS))
        out.print("system_prompt", style="bold")
        out.print(agent.get("system_prompt") or "", markup=False)

    emit(agent, human)


@agents.command("list")
@click.option("--status", type=click.Choice(["active", "archived", "all"]), default=None)
@click.option("--tag", default=None, help="Only agents with this tag.")
@click.option("--search", default=None, help="Only agents whose name contains this.")
@list_options
@common
def agents_list(status, tag, search, limit, offset):
    """List agents (active ones, newest first)."""
    page = state().api().get("/v1/agents", status=status, tag=tag, search=search, limit=limit, offset=offset)
    show_list("agents", page)


def parse_policy(ctx, param, values) -> dict:
    policy = {}
    for value in values:
        name, sep, rule = value.partition("=")
        if not sep or rule not in ("auto", "ask") or not name:
            raise click.BadParameter(f"{value!r} is not TOOL=auto|ask (TOOL may be *)")
        policy[name] = rule
    return policy


@agents.command("create")
@click.option("--name", required=True)
@click.option("--system-prompt", required=True)
@click.option("--description", default=None)
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--capability", "capabilities", multiple=True, help="A capability id (repeat for more).")
@click.option("--model", default=None, help="Default model: its id or its model_id.")
@click.option("--tool-policy", multiple=True, callback=parse_policy, help="TOOL=ask or TOOL=auto (repeat).")
@click.option("--max-iterations", type=click.IntRange(min=1), default=None)
@common
def agents_create(name, system_prompt, description, tags, capabilities, model, tool_policy, max_iterations):
    """Create an agent."""
    api = state().api()
    body = {"name": name, "system_prompt": system_prompt, "tags": list(tags), "capabilities": list(capabilities)}
    optional = {
        "description": description,
        "default_model_id": model_uuid(api, model),
        "tool_policy": tool_policy or None,
        "max_iterations": max_iterations,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    show_agent(api.post("/v1/agents", body))


@agents.command("show")
@click.argument("agent_id")
@common
def agents_show(agent_id):
    """Show an agent."""
    show_agent(state().api().get(f"/v1/agents/{agent_id}"))


@agents.command("delete")
@click.argument("agent_id")
@common
def agents_delete(agent_id):
    """Archive an agent (its sessions stay readable)."""
    state().api().delete(f"/v1/agents/{agent_id}")
    emit({"id": agent_id, "status": "archived"}, lambda: out.print(f"archived agent {agent_id}"))


@agents.command("export")
@click.argument("agent_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to this file.")
@common
def agents_export(agent_id, output):
    """Export an agent as Markdown (YAML front matter and the system prompt)."""
    markdown = state().api().request("GET", f"/v1/agents/{agent_id}/export").text
    if output is not None:
        output.write_text(markdown)
    if state().json:
        click.echo(json_line({"agent_id": agent_id, "markdown": markdown, "output": str(output) if output else None}))
    elif output is None:
        click.echo(markdown, nl=not markdown.endswith("\n"))
    else:
        err.print(f"wrote {output}")


@agents.command("import")
@click.argument("file", type=click.File("r"))
@common
def agents_import(file):
    """Create an agent from Markdown (`agents export`'s format, or plain text as the system prompt); - for stdin."""
    text = file.read()
    response = (
        state()
        .api()
        .request("POST", "/v1/agents/import", content=text.encode(), headers={"Content-Type": "text/markdown"})
    )
    show_agent(response.json())


cli.add_command(agents_export, "export")
cli.add_command(agents_import, "import")


# --- sessions -------------------------------------------------------------------------------------


@cli.group()
@common
def sessions():
    """Create, list and show sessions."""


SESSION_FIELDS = ["id", "agent_id", "title", "tags", "model_id", "status", "error", "usage", "created_at"]


def show_conversation(messages: list[dict]) -> None:
    for message in messages:
        out.print(f"{message['role']}:", style="bold", end=" ")
        out.print(content_text(message.get("content")), markup=False)


@sessions.command("list")
@click.argument("agent_id")
@list_options
@common
def sessions_list(agent_id, limit, offset):
    """List an agent's sessions (newest first)."""
    show_list("sessions", state().api().get(f"/v1/agents/{agent_id}/sessions", limit=limit, offset=offset))


@sessions.command("create")
@click.argument("agent_id")
@click.option("--title", default=None)
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--model", default=None, help="The session's model: its id or its model_id.")
@common
def sessions_create(agent_id, title, tags, model):
    """Open a session on an agent."""
    api = state().api()
    body = {"title": title, "tags": list(tags), "model_id": model_uuid(api, model)}
    session = api.post(f"/v1/agents/{agent_id}/sessions", {k: v for k, v in body.items() if v})
    emit(session, lambda: out.print(details(session, SESSION_FIELDS)))


@sessions.command("show")
@click.argument("agent_id")
@click.argument("session_id")
@common
def sessions_show(agent_id, session_id):
    """Show a session and its conversation."""
    api = state().api()
    session = api.get(session_path(agent_id, session_id))

    def human():
        out.print(details(session, SESSION_FIELDS))
        messages = list(api.items(f"{session_path(agent_id, session_id)}/messages"))
        if messages:
            out.print()
            show_conversation(messages)

    emit(session, human)


@sessions.command("messages")
@click.argument("agent_id")
@click.argument("session_id")
@list_options
@common
def sessions_messages(agent_id, session_id, limit, offset):
    """List a session's messages (oldest first)."""
    page = state().api().get(f"{session_path(agent_id, session_id)}/messages", limit=limit, offset=offset)
    show_list("messages", page)


@sessions.command("delete")
@click.argument("agent_id")
@click.argument("session_id")
@common
def sessions_delete(agent_id, session_id):
    """Delete a session with its messages, events and files."""
    state().api().delete(session_path(agent_id, session_id))
    emit({"id": session_id, "deleted": True}, lambda: out.print(f"deleted session {session_id}"))


# --- chat and watch ---------------------------------------------------------------------------------


def printer_for(**kwargs):
    """What shows an event: a JSON line with --json, else the conversation view."""
    if state().json:
        return lambda event: click.echo(json_line(event))
    return EventPrinter(out, **kwargs)


def note(text: str) -> None:
    err.print(text, style="dim", markup=False)


def ask_approval(data: dict) -> tuple[bool, str | None] | None:
    """y approves, anything else denies; no answer (stdin closed) leaves the call waiting."""
    err.print(f"approve {call_text(data.get('name', '?'), data.get('arguments'))}? [y/N] ", end="", markup=False)
    line = sys.stdin.readline()
    if not line:
        err.print()
        return None
    return (True, None) if line.strip().lower() in ("y", "yes") else (False, DENY_REASON)


def exit_code_of(outcome: Outcome, session_id: str) -> int:
    if outcome.end == "turn.completed":
        return 0
    if outcome.end == "turn.cancelled":
        return EXIT_INTERRUPTED if outcome.cancelled_here else EXIT_TURN_FAILED
    if outcome.end == "waiting":
        note(f"(the turn waits: everruns approve|deny {session_id} {outcome.data.get('tool_call_id')})")
        return 0
    err.print(f"turn failed: {error_text(outcome.data.get('error'))}", markup=False)
    return EXIT_TURN_FAILED


@cli.command()
@click.argument("agent_id")
@click.argument("text", required=False)
@click.option("--session", "session_id", default=None, help="Talk in this session (default: a new one).")
@click.option("--title", default=None, help="The new session's title.")
@common
def chat(agent_id, text, session_id, title):
    """Send TEXT to an agent and stream the answer; without TEXT, an interactive prompt.

    Tool calls and results show as they happen; a tool that needs approval asks here (y/N).
    Ctrl-C cancels the running turn on the server."""
    api = state().api()
    if session_id is None:
        session = api.post(f"/v1/agents/{agent_id}/sessions", {"title": title} if title else {})
        session_id = session["id"]
        if not state().json:
            note(f"session {session_id} (everruns chat {agent_id} --session {session_id})")
    else:
        api.get(session_path(agent_id, session_id))  # a wrong id is a 404 here, before anything is posted
    show = printer_for()
    if text is not None:
        outcome, _ = run_turn(api, agent_id, session_id, text, show=show, ask=ask_approval, note=note)
        raise click.exceptions.Exit(exit_code_of(outcome, session_id))
    interactive(api, agent_id, session_id, show)


def interactive(api: Api, agent_id: str, session_id: str, show) -> None:
    """One turn per line; Ctrl-C during a turn cancels it and comes back to the prompt, Ctrl-D quits."""
    tty = sys.stdin.isatty()
    after = None
    while True:
        try:
            line = input("you> " if tty else "")
        except EOFError:  # Ctrl-D, or the end of piped input
            if tty:
                out.print()
            return
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        if not line.strip():
            continue
        try:
            outcome, after = run_turn(
                api, agent_id, session_id, line, show=show, ask=ask_approval, note=note, after=after
            )
        except KeyboardInterrupt:
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        # A failed or cancelled turn was shown with its events and the prompt comes back; an approval that
        # could not be answered (input ended) leaves the turn waiting and ends the chat with the hint.
        if outcome.end == "waiting":
            exit_code_of(outcome, session_id)
            return


@cli.command()
@click.argument("agent_id")
@click.argument("session_id")
@click.option("--after", type=click.IntRange(min=0), default=0, help="Start after this event sequence (0: all).")
@common
def watch(agent_id, session_id, after):
    """Follow a session's events live (its history first), resuming after a dropped connection. Ctrl-C stops."""
    follower = EventFollower(state().api(), agent_id, session_id, after=after, on_reconnect=lambda w: note(f"({w})"))
    show = printer_for(show_user=True, show_status=True)
    try:
        for event in follower.events():
            show(event)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        follower.close()


# --- turn control -----------------------------------------------------------------------------------

AGENT_OPTION = click.option("--agent", "agent_id", default=None, help="The session's agent (saves looking it up).")


@cli.command()
@click.argument("session_id")
@click.option("--reason", default=None)
@AGENT_OPTION
@common
def cancel(session_id, reason, agent_id):
    """Cancel the session's running, queued or waiting turn."""
    api = state().api()
    agent_id = agent_id or find_agent_of_session(api, session_id)
    session = api.post(f"{session_path(agent_id, session_id)}/cancel", {"reason": reason} if reason else {})
    emit(session, lambda: out.print(f"cancelled the turn of session {session_id}"))


def decide(session_id: str, tool_call_id: str, approved: bool, reason: str | None, agent_id: str | None) -> None:
    api = state().api()
    agent_id = agent_id or find_agent_of_session(api, session_id)
    path = f"{session_path(agent_id, session_id)}/tool-calls/{tool_call_id}/approval"
    answer = api.post(path, {"approved": approved, "reason": reason})
    verb = "approved" if approved else "denied"
    emit(answer, lambda: out.print(f"{verb} tool call {tool_call_id}"))


@cli.command()
@click.argument("session_id")
@click.argument("tool_call_id")
@click.option("--reason", default=None)
@AGENT_OPTION
@common
def approve(session_id, tool_call_id, reason, agent_id):
    """Approve a tool call that waits for approval."""
    decide(session_id, tool_call_id, True, reason, agent_id)


@cli.command()
@click.argument("session_id")
@click.argument("tool_call_id")
@click.option("--reason", default=None, help="Told to the model: `denied: <reason>`.")
@AGENT_OPTION
@common
def deny(session_id, tool_call_id, reason, agent_id):
    """Deny a tool call that waits for approval."""
    decide(session_id, tool_call_id, False, reason, agent_id)


# --- providers, models, health, config ----------------------------------------------------------------


@cli.group()
@common
def providers():
    """LLM providers."""


@providers.command("list")
@list_options
@common
def providers_list(limit, offset):
    """List LLM providers (never their keys)."""
    show_list("providers", state().api().get("/v1/llm-providers", limit=limit, offset=offset))


@cli.group()
@common
def models():
    """LLM models."""


@models.command("list")
@list_options
@common
def models_list(limit, offset):
    """List LLM models (DEFAULT marks the global default)."""
    show_list("models", state().api().get("/v1/llm-models", limit=limit, offset=offset))


@cli.command()
@common
def health():
    """The server's health (exit 1 when degraded)."""
    status, body = state().api().health()
    emit(body, lambda: out.print(details(body, list(body))))
    if status != 200:
        raise click.exceptions.Exit(EXIT_API)


@cli.group()
@common
def config():
    """The config file (url, api_key) in the user's config directory."""


@config.command("show")
@common
def config_show():
    """Print the config file's path and values (the key masked)."""
    path = config_path()
    values = read_config(path)
    shown = {**values, "api_key": values["api_key"][:8] + "…"} if "api_key" in values else values
    emit({"path": str(path), **shown}, lambda: out.print(details({"path": str(path), **shown}, ["path", *shown])))


@config.command("set")
@click.argument("key", type=click.Choice(["url", "api_key"]))
@click.argument("value")
@common
def config_set(key, value):
    """Set url or api_key in the config file (an empty VALUE removes it)."""
    path = config_path()
    values = read_config(path)
    values[key] = value
    write_config(path, values)
    emit({"path": str(path), "set": key}, lambda: err.print(f"wrote {key} to {path}"))


def main() -> None:
    try:
        code = cli.main(prog_name="everruns", standalone_mode=False)
    except click.UsageError as exc:
        exc.show()
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ConfigError as exc:
        err.print(f"error: {exc}", markup=False)
        code = EXIT_USAGE
    except ApiError as exc:
        err.print(f"error: {exc.message}", markup=False)
        code = EXIT_API
    except click.Abort:  # Ctrl-C outside a turn
        code = EXIT_INTERRUPTED
    sys.exit(code if isinstance(code, int) else 0)
