// Drives Everruns' AG-UI endpoint with AG-UI's own client (@ag-ui/client HttpAgent), the way a front-end does.
// Usage: node agui.mjs '<plan JSON>'; prints {runs: [...], messages: [...]} as JSON.
// Plan: {url, headers, threadId, cancelBase (.../v1/agents/{id}), steps: [{say, runId, dropAfter, cancelAfter, resume}]}
//   say: a user message added before the run (the agent sends the whole history, as HttpAgent always does)
//   dropAfter: the connection drops after this many events; the run is then resumed with Last-Event-ID, the cursor
//     of the last event the client applied (each event carries it in metadata.everruns.cursor)
//   cancelAfter: an event type after which the app calls Everruns' cancel route
//   approve: true|false answers every interrupt (tool approval) of the previous run, as the run's `resume`
import { HttpAgent } from "@ag-ui/client";

const plan = JSON.parse(process.argv[2]);

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
    },
    onRunErrorEvent: ({ event }) => {
      record.runError = { message: event.message, code: event.code };
    },
  };
  try {
    await agent.runAgent({ runId, ...(resume ? { resume } : {}) }, subscriber);
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
}
process.stdout.write(JSON.stringify({ runs, messages: agent.messages, threadId: agent.threadId }));
