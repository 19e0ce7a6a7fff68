"""What a turn's next step reads: one typed snapshot of its session, agent, turn and messages, read in one go on
a database thread (`read_state`), from which the loop (runner/loop.py) decides the step."""

from dataclasses import dataclass, field

from django.conf import settings

from everruns.core import rows
from runner import history
from runner.errors import TurnError, TurnErrorCode
from runner.resolution import ResolvedModel, resolve
from runner.tools import registry
from sessions import sql, turns
from sessions.log import SessionGone
from sessions.models import Event, Message, Session, Turn

TURN_STATE_FIELDS = (
    "input_message_ids",
    "iterations",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "cancel_requested_at",
    "approvals",
    "answered_sequence",
    "client_tools",
)


@dataclass
class Budget:
    scope: str  # "agent" (per turn) or "session"
    name: str
    limit: float | None
    used: float


@dataclass
class TurnState:
    tools: dict  # the agent's tools by name (run by the worker)
    client_tools: set[str]  # front-end tools: their calls are answered by the client
    offered: list[dict]  # the tools' schemas, as the model is offered them
    policy: dict  # the agent's tool_policy
    approvals: dict  # tool_call_id -> {name, status, reason}
    unanswered: list[dict]  # tool calls of the last response with no result, that the worker runs now
    client_calls: list[dict]  # calls of front-end tools the client is to answer
    last_seen: int  # the sequence of the newest message
    final: bool  # the answer is stored: the turn ends without calling the model again
    compact_requested: bool  # a turn started by POST .../compact that has not compacted yet
    used_call_ids: set[str]  # the tool call ids the session has: a new call's must differ
    started: set[str] = field(default_factory=set)  # calls of this turn a worker started (with `unanswered`)
    # What the next LLM call needs; read only when there is no unanswered call to run first.
    iterations: int = 0
    limit: int = 0
    budgets: list[Budget] = field(default_factory=list)
    model: ResolvedModel | None = None
    context: history.Context | None = None
    compaction_through: int = 0
    reasoning_effort: str | None = None
    unstored_calls: int | None = None  # LLM calls a dead worker made for this step and never stored (if asked)

    def check_budgets(self) -> None:
        """Before an LLM call: a budget used up ends the turn."""
        for budget in self.budgets:
            if budget.limit is not None and budget.used >= budget.limit:
                whose = "turn" if budget.scope == "agent" else "session"
                raise TurnError(
                    TurnErrorCode.BUDGET_EXCEEDED,
                    f"The {whose} used {budget.used:g} of its {budget.scope} limit {budget.name} ({budget.limit:g})",
                    details={"limit": budget.name, "scope": budget.scope, "value": budget.limit, "used": budget.used},
                )


def read_state(*, session_id, turn_id, count_unstored: bool) -> TurnState:
    """Everything the next step needs. `count_unstored`: also count the LLM calls a dead worker made for this
    step and never stored (once per runner)."""
    # Written out (everruns/core/rows.py): every step of every turn reads these; compiling them was a fifth
    # of the worker's CPU (py-spy).
    session = rows.by_pk(Session, session_id, related="agent")
    if session is None:
        raise SessionGone(str(session_id))
    agent = session.agent
    system_prompt, tools = registry.system_prompt_and_tools(agent)
    messages = sql.messages_of(session_id=session_id)
    turn = rows.by_pk(Turn, turn_id, fields=TURN_STATE_FIELDS)
    if turn is None:
        raise turns.LeaseLost(str(turn_id))
    if turn.cancel_requested_at is not None:
        raise turns.CancelRequested(str(turn_id))
    last = messages[-1] if messages else None
    server_tools = {t.name: t for t in tools}
    client_tools = [t for t in turn.client_tools or [] if t.get("name") not in server_tools]
    unanswered = history.unanswered_tool_calls(messages)
    unseen_message = any(m.role == Message.Role.USER and m.sequence > turn.answered_sequence for m in messages)
    # A turn started by POST .../compact has no message of its own: it compacts, and ends unless one came
    # meanwhile (the front-end tool calls a client still owes stay for that client).
    nothing_to_answer = not turn.input_message_ids and not unseen_message
    if nothing_to_answer:
        unanswered = []
    # Calls of front-end tools wait for the client's next run, unless a message came first.
    client_names = {t["name"] for t in client_tools}
    client_calls = [] if unseen_message else [p for p in unanswered if p["name"] in client_names]
    if any(p["name"] not in server_tools and p["name"] not in client_names for p in unanswered):
        client_names |= _client_tools_of_the_call(messages)  # an earlier turn's front-end tools
    compact_requested = not turn.input_message_ids and (session.compaction or {}).get("turn_id") != str(turn_id)
    # A resumed turn whose answer is stored already ends without calling the model again, unless a user message
    # came that the answer's call was not given.
    final = not unseen_message and (
        nothing_to_answer
        or bool(client_calls and not any(p not in client_calls for p in unanswered))
        or bool(
            last
            and last.role == Message.Role.ASSISTANT
            and last.turn_id == turn_id
            and not any(p.get("type") == "tool_call" for p in last.content)
            and not (last.metadata or {}).get("interrupted")
        )
    )
    state = TurnState(
        tools=server_tools,
        client_tools=client_names,
        offered=[t.openai_schema() for t in tools] + [{"type": "function", "function": t} for t in client_tools],
        policy=agent.tool_policy or {},
        approvals=turn.approvals or {},
        unanswered=[p for p in unanswered if p not in client_calls],
        client_calls=client_calls,
        last_seen=last.sequence if last else 0,
        final=final and not compact_requested,
        compact_requested=compact_requested,
        used_call_ids=history.tool_call_ids(messages),
    )
    if state.unanswered:
        state.started = _started_tool_calls(session_id, turn_id)
        return state
    if count_unstored:
        state.unstored_calls = Event.objects.filter(
            session_id=session_id, turn_id=turn_id, type="llm.started", data__iteration=turn.iterations + 1
        ).count()
    controls = history.latest_controls(messages)
    state.iterations = turn.iterations
    state.limit = controls.get("max_iterations") or agent.max_iterations or settings.TURN_MAX_ITERATIONS
    state.budgets = _budgets(agent, session, turn)
    state.model = resolve(
        controls_model_id=controls.get("model_id"),
        session_model_id=session.model_id,
        agent_model_id=agent.default_model_id,
    )
    state.context = history.context(system_prompt, messages, session.compaction)
    state.compaction_through = (session.compaction or {}).get("through_sequence", 0)
    state.reasoning_effort = (controls.get("reasoning") or {}).get("effort")
    return state


def _client_tools_of_the_call(messages: list[Message]) -> set[str]:
    """The front-end tool names of the turn that made the last response (its calls are the unanswered ones)."""
    last = next((m for m in reversed(messages) if m.role == Message.Role.ASSISTANT), None)
    if last is None or last.turn_id is None:
        return set()
    tools = Turn.objects.filter(pk=last.turn_id).values_list("client_tools", flat=True).first() or []
    return {t.get("name") for t in tools}


def _started_tool_calls(session_id, turn_id) -> set:
    """The tool calls of this turn that a worker started (a `tool.started` is stored before a tool runs)."""
    started = Event.objects.filter(session_id=session_id, turn_id=turn_id, type="tool.started").values_list(
        "data", flat=True
    )
    return {data.get("tool_call_id") for data in started}


def _budgets(agent, session, turn) -> list[Budget]:
    """Each budget of the agent (per turn) and the session, with what it has used."""
    agent_limits, session_limits = agent.limits or {}, session.limits or {}
    return [
        Budget(
            "agent",
            "max_tokens_per_turn",
            agent_limits.get("max_tokens_per_turn"),
            turn.input_tokens + turn.output_tokens,
        ),
        Budget("agent", "max_cost_usd_per_turn", agent_limits.get("max_cost_usd_per_turn"), turn.cost_usd or 0.0),
        Budget("session", "max_tokens", session_limits.get("max_tokens"), session.input_tokens + session.output_tokens),
        Budget("session", "max_cost_usd", session_limits.get("max_cost_usd"), session.cost_usd or 0.0),
    ]
