// Drives Everruns' AG-UI endpoint with AG-UI's own client (@ag-ui/client HttpAgent), the way a front-end does.
// Usage: node agui.mjs '<plan JSON>'; prints {runs: [...], messages: [...]} as JSON.
// Plan: {url, headers, threadId, cancelBase (.../v1/agents/{id}),
//        steps: [{say, runId, dropAfter, cancelAfter, approve, frontendTools}]}
//   say: a user message added before the run (the agent sends the whole history, as HttpAgent always does)
//   dropAfter: the connection drops after this many events; the run is then resumed with Last-Event-ID, the cursor
//     of the last event the client applied (each event carries it in metadata.everruns.cursor)
//   cancelAfter: an event type after which the app calls Everruns' cancel route
//   approve: true|false answers every interrupt (tool approval) of the previous run, as the run's `resume`
//   frontendTools: true declares the app's own tools (FRONTEND_TOOLS) in the run's `tools`; when a run ends with
//     calls of them pending (RUN_FINISHED outcome.pendingToolCallIds), the app runs them and starts the next run
//     with their results as `tool` messages, as an AG-UI front-end does (each such run is recorded with `answered`)
import { HttpAgent } from "@ag-ui/client";

const plan = JSON.parse(process.argv[2]);

// The app's tools: declared to the agent, run here when the model calls them.
const FRONTEND_TOOLS = {
  show_chart: {
    tool: {
      name: "show_chart",
      description: "Show a chart of the given kind to the user.",
      parameters: { type: "object", properties: { kind: { type: "string", enum: ["bar", "pie"] } } },
    },
    run: (args) => ({ shown: true, kind: args.kind }),
  },
};

async function run(agent, state, step, runId, resume) {
  const record = { runId, events: [], error: null, outcome: null, cursor: null, interrupts: [] };
  let seen = 0;
  let cancelled = false;
  const subscriber = {
    onEvent: async ({ event }) => {
      seen += 1;
      if (record.dropped || (step.dropAfter && seen > step.dropAfter)) {
        // The connection is gone: this event and any the client had read after it are not applied, so the app's
        // cursor is the one of the last event it applied.
        if (!record.dropped) agent.abortRun();
        record.dropped = true;
        return { stopPropagation: true };
      }
      record.events.push(event.type === "CUSTOM" ? `CUSTOM:${event.name}` : event.type);
      state.cursor = event.metadata?.everruns?.cursor ?? state.cursor;
      if (step.cancelAfter && event.type === step.cancelAfter && !cancelled) {
        cancelled = true;
        const url = `${plan.cancelBase}/sessions/${record.sessionId}/cancel`;
        const response = await fetch(url, { method: "POST", headers: plan.headers });
        record.cancelStatus = response.status;
      }
    },
    onRunStartedEvent: ({ event }) => {
      record.sessionId = event.metadata?.everruns?.session_id;
    },
    onRunFinishedEvent: (params) => {
      record.outcome = params.outcome;
      if (params.outcome === "interrupt") record.interrupts = params.interrupts;
      if (params.outcome === "success") record.pendingToolCallIds = params.pendingToolCallIds;
    },
    onRunErrorEvent: ({ event }) => {
      record.runError = { message: event.message, code: event.code };
    },
  };
  try {
    const tools = step.frontendTools ? Object.values(FRONTEND_TOOLS).map((t) => t.tool) : undefined;
    await agent.runAgent({ runId, ...(resume ? { resume } : {}), ...(tools ? { tools } : {}) }, subscriber);
  } catch (error) {
    record.error = String(error?.message || error);
  }
  record.cursor = state.cursor;
  return record;
}

const state = { cursor: null };
const agent = new HttpAgent({ url: plan.url, headers: plan.headers || {}, threadId: plan.threadId });
const runs = [];
for (const [index, step] of plan.steps.entries()) {
  if (step.say) agent.addMessage({ id: `user-${index}-${Date.now()}`, role: "user", content: step.say });
  const runId = step.runId || `run-${index}`;
  if (step.approve !== undefined) {
    const previous = runs[runs.length - 1];
    step.resume = previous.interrupts.map((i) => ({
      interruptId: i.id,
      status: "resolved",
      payload: { approved: step.approve, reason: step.approve ? undefined : "not now" },
    }));
  }
  state.cursor = null;
  const first = await run(agent, state, step, runId, step.resume);
  runs.push(first);
  if (first.dropped) {
    // The connection dropped: the app runs the same run again from where its stream got to.
    agent.headers = { ...(plan.headers || {}), "Last-Event-ID": first.cursor };
    const again = await run(agent, state, { ...step, dropAfter: 0, cancelAfter: null }, runId, step.resume);
    again.resumedFrom = first.cursor;
    runs.push(again);
    agent.headers = { ...(plan.headers || {}) };
  }
  // The app answers the calls of its tools that the run left pending, and runs again, until none is left.
  for (let round = 1; step.frontendTools && round <= 3; round += 1) {
    const pending = runs[runs.length - 1].pendingToolCallIds || [];
    const calls = agent.messages.flatMap((m) => m.toolCalls || []).filter((c) => pending.includes(c.id));
    if (calls.length === 0) break;
    for (const call of calls) {
      const output = FRONTEND_TOOLS[call.function.name].run(JSON.parse(call.function.arguments || "{}"));
      agent.addMessage({ id: `tool-${call.id}`, role: "tool", toolCallId: call.id, content: JSON.stringify(output) });
    }
    state.cursor = null;
    const answered = await run(agent, state, { frontendTools: true }, `${runId}-tools-${round}`);
    answered.answered = calls.map((c) => c.id);
    runs.push(answered);
  }
}
process.stdout.write(JSON.stringify({ runs, messages: agent.messages, threadId: agent.threadId }));
