// The session page: the conversation and the timeline are drawn from the session's event stream (SSE), its
// history first and then live. The stream resumes after a dropped connection from the last sequence seen
// (EventSource sends Last-Event-ID by itself; after an error it cannot recover from, or going offline, the
// page opens a new stream with ?lastEventId=). Every stored event has a sequence: one seen twice is counted
// as a duplicate and dropped, one that skips a number is counted as a gap; the timeline shows both counts.
"use strict";

(() => {
  const root = document.getElementById("session");
  if (!root) return;
  const API = root.dataset.api;
  const $ = (id) => document.getElementById(id);
  const conversation = $("conversation");
  const timeline = $("timeline");
  const filter = $("type-filter");
  const BUSY = new Set(["running", "waiting"]);
  // Every type of the contract; EventSource hands over only the types it is told of.
  const TYPES = [
    "message.user", "message.assistant", "message.tool_result", "message.delta", "session.status",
    "turn.started", "turn.completed", "turn.failed", "turn.cancelled",
    "llm.started", "llm.completed", "llm.retrying", "context.compacted",
    "tool.started", "tool.completed", "tool.approval_requested", "tool.approval_resolved",
  ];
  const state = { last: 0, count: 0, duplicates: 0, gaps: 0, source: null, retries: 0, timer: null, starts: new Map(), types: new Set() };

  // --- small helpers ----------------------------------------------------------------------------------
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  // Short values on one line, longer ones indented.
  function json(value) {
    if (typeof value === "string") return value;
    const line = JSON.stringify(value);
    return line !== undefined && line.length <= 80 ? line : JSON.stringify(value, null, 2);
  }
  const clock = (stamp) => (stamp || "").slice(11, 23);
  const money = (usd) => (usd === null || usd === undefined ? "—" : `$${Number(usd).toFixed(6)}`);
  const ms = (value) => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`);
  function debounce(fn, wait) {
    let handle = null;
    return () => { clearTimeout(handle); handle = setTimeout(fn, wait); };
  }
  const scrollDown = () => { conversation.lastElementChild?.scrollIntoView({ block: "nearest" }); };

  // --- status, usage, connection ------------------------------------------------------------------------
  function setStatus(status) {
    const badge = $("status");
    badge.textContent = status;
    badge.className = `badge status-${status}`;
    $("cancel-form").hidden = !BUSY.has(status);
  }
  function setConnection(connection) {
    const node = $("conn");
    node.dataset.state = connection;
    node.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", offline: "offline" }[connection];
  }
  const refreshSession = debounce(async () => {
    try {
      const session = await Debug.api("GET", API);
      setStatus(session.status);
      $("usage-in").textContent = session.usage.input_tokens;
      $("usage-out").textContent = session.usage.output_tokens;
      $("usage-cost").textContent = money(session.usage.cost_usd);
    } catch (_) { /* the stream goes on; the next event tries again */ }
  }, 250);
  const refreshContext = debounce(async () => {
    try {
      const response = await fetch(root.dataset.context, { credentials: "same-origin" });
      if (response.ok) $("context").innerHTML = await response.text();  // our own server-rendered fragment
    } catch (_) { /* kept as it was */ }
  }, 400);
  $("context-refresh").addEventListener("click", refreshContext);

  // --- the conversation -----------------------------------------------------------------------------------
  function messageBox(id, role) {
    let box = document.getElementById(`msg-${id}`);
    if (!box) {
      box = el("div", `msg ${role}`);
      box.id = `msg-${id}`;
      box.append(el("div", "role", { user: "you", assistant: "assistant", tool_result: "tool" }[role] || role), el("div", "text"));
      conversation.append(box);
    }
    return box;
  }

  function toolCallBlock(call) {
    const block = el("div", "tool-call");
    block.id = `call-${call.id}`;
    const head = el("div", "head");
    head.append(el("span", "muted", "tool call"), el("b", "tool-name", call.name), el("span", "badge call-status", "called"));
    block.append(head, el("pre", "args", json(call.arguments || {})));
    if (call.argument_error) block.append(el("div", "error small", `arguments: ${call.argument_error}`));
    return block;
  }

  function findCall(id, name) {
    let block = document.getElementById(`call-${id}`);
    if (!block) {  // a result or approval whose call is not on the page (yet): show it on its own
      const box = el("div", "msg tool_result orphan");
      block = toolCallBlock({ id, name: name || "tool", arguments: {} });
      box.append(block);
      conversation.append(box);
    }
    return block;
  }

  function renderMessage(message) {
    if (message.role === "tool_result") {
      for (const part of message.content) {
        if (part.type !== "tool_result") continue;
        const block = findCall(part.tool_call_id, part.name);
        block.querySelector(".result")?.remove();
        const result = el("div", part.error ? "result error" : "result");
        result.append(el("div", "small muted", part.error ? "error" : "result"), el("pre", "", part.error ? json(part.error) : json(part.result)));
        block.append(result);
      }
      return;
    }
    const box = messageBox(message.id, message.role);
    box.classList.remove("streaming");
    box.querySelectorAll(":scope > .meta").forEach((node) => node.remove());
    const text = message.content.map((part) => {
      if (part.type === "text") return part.text;
      if (part.type === "image") return `[image: ${part.url || part.media_type || "inline"}]`;
      return "";
    }).filter(Boolean).join("\n\n");
    box.querySelector(".text").textContent = text;
    for (const part of message.content) {
      if (part.type !== "tool_call") continue;
      const shown = document.getElementById(`call-${part.id}`);
      if (!shown) { box.append(toolCallBlock(part)); continue; }
      // Already on the page (an approval or a result drawn first): move it here, with its arguments.
      const holder = shown.parentElement;
      shown.querySelector(".tool-name").textContent = part.name;
      shown.querySelector("pre.args").textContent = json(part.arguments || {});
      box.append(shown);
      if (holder !== box && holder.classList.contains("orphan")) holder.remove();
    }
    const meta = message.metadata || {};
    if (message.role === "assistant") {
      const usage = meta.usage || {};
      const flags = [meta.cancelled && "cancelled", meta.interrupted && "interrupted"].filter(Boolean);
      const line = [meta.model, usage.input_tokens !== undefined && `${usage.input_tokens} in / ${usage.output_tokens} out`, ...flags];
      box.append(el("div", "meta small muted", line.filter(Boolean).join(" · ")));
    }
    conversation.append(box);  // in the log's order, after anything posted while it streamed
  }

  function renderDelta(data) {
    const box = messageBox(data.message_id, "assistant");
    if (box.querySelector(".meta")) return;  // already final
    box.classList.add("streaming");
    box.querySelector(".text").textContent += data.delta;
  }

  // Streamed text that no stored message took over (a failed attempt, a cancel stored under another id):
  // dropped once the call is over, so the page shows what the log holds, as a reload would.
  function dropUnfinishedStreams() {
    conversation.querySelectorAll(".msg.assistant.streaming").forEach((box) => box.remove());
  }

  function notice(kind, text) {
    conversation.append(el("p", `notice ${kind}`, text));
  }

  function renderApproval(data) {
    const block = findCall(data.tool_call_id, data.name);
    if (block.querySelector(".approval")) return;
    const box = el("div", "approval");
    box.dataset.toolCallId = data.tool_call_id;
    const reason = el("input");
    reason.placeholder = "Reason (optional)";
    reason.setAttribute("aria-label", "Reason");
    const approve = el("button", "primary approve", "Approve");
    const deny = el("button", "danger deny", "Deny");
    const problem = el("span", "error small");
    const decide = async (approved) => {
      approve.disabled = deny.disabled = true;
      problem.textContent = "";
      try {
        const url = `${API}/tool-calls/${encodeURIComponent(data.tool_call_id)}/approval`;
        await Debug.api("POST", url, reason.value ? { approved, reason: reason.value } : { approved });
      } catch (error) {
        problem.textContent = error.message;
        approve.disabled = deny.disabled = false;
      }
    };
    approve.addEventListener("click", () => decide(true));
    deny.addEventListener("click", () => decide(false));
    box.append(el("b", "", "Needs approval"), reason, approve, deny, problem);
    block.append(box);
    block.querySelector(".call-status").textContent = "waiting for approval";
  }

  function resolveApproval(data) {
    const block = findCall(data.tool_call_id);
    const box = block.querySelector(".approval") || el("div", "approval");
    box.classList.add("resolved");
    box.replaceChildren(el("b", data.approved ? "" : "error", data.approved ? "Approved" : "Denied"));
    if (data.reason) box.append(el("span", "muted", data.reason));
    block.append(box);
    block.querySelector(".call-status").textContent = data.approved ? "approved" : "denied";
  }

  function setCallStatus(id, text, kind) {
    const badge = document.getElementById(`call-${id}`)?.querySelector(".call-status");
    if (!badge) return;
    badge.textContent = text;
    badge.className = `badge call-status${kind ? ` status-${kind}` : ""}`;
  }

  function apply(event) {
    const data = event.data || {};
    switch (event.type) {
      case "message.user": case "message.tool_result":
        renderMessage(data.message); break;
      case "message.assistant":
        renderMessage(data.message); dropUnfinishedStreams(); break;
      case "session.status":
        setStatus(data.status); break;
      case "tool.started":
        setCallStatus(data.tool_call_id, "running…", "running"); break;
      case "tool.completed":
        setCallStatus(data.tool_call_id, `${data.status} · ${ms(data.duration_ms || 0)}`, data.status); break;
      case "tool.approval_requested":
        renderApproval(data); break;
      case "tool.approval_resolved":
        resolveApproval(data); break;
      case "llm.retrying":
        dropUnfinishedStreams();
        notice("warn", `LLM call failed (${(data.error || {}).code}); retry ${data.attempt} in ${ms(data.delay_ms || 0)}`); break;
      case "context.compacted":
        conversation.append(el("p", "turn-end compaction",
          `context compacted (${data.reason || "threshold"}): ≈ ${data.tokens_before} → ${data.tokens_after} tokens; ` +
          `a summary now stands for the messages through #${data.through_sequence}`)); break;
      case "turn.completed":
        dropUnfinishedStreams();
        conversation.append(el("p", "turn-end", `turn completed · ${data.iterations} LLM call(s)`)); break;
      case "turn.failed":
        dropUnfinishedStreams();
        notice("error", `Turn failed: ${(data.error || {}).code}: ${(data.error || {}).message}`); break;
      case "turn.cancelled":
        dropUnfinishedStreams();
        notice("warn", `Turn cancelled${data.reason ? `: ${data.reason}` : ""}`); break;
      default:
    }
    if (["llm.completed", "context.compacted", "session.status", "turn.completed", "turn.failed", "turn.cancelled"].includes(event.type)) refreshSession();
    if (["message.user", "message.tool_result", "context.compacted", "turn.completed", "turn.failed", "turn.cancelled", "tool.approval_requested", "tool.approval_resolved"].includes(event.type)) refreshContext();
  }

  // --- the timeline -------------------------------------------------------------------------------------------
  function duration(event) {
    const data = event.data || {};
    const at = Date.parse(event.created_at);
    const pairs = {
      "llm.started": [`llm:${event.turn_id}:${data.iteration}`, true], "llm.completed": [`llm:${event.turn_id}:${data.iteration}`, false],
      "tool.started": [`tool:${data.tool_call_id}`, true], "tool.completed": [`tool:${data.tool_call_id}`, false],
      "turn.started": [`turn:${event.turn_id}`, true], "turn.completed": [`turn:${event.turn_id}`, false],
      "turn.failed": [`turn:${event.turn_id}`, false], "turn.cancelled": [`turn:${event.turn_id}`, false],
    };
    const pair = pairs[event.type];
    if (!pair) return "";
    const [key, starts] = pair;
    if (starts) { state.starts.set(key, at); return ""; }
    if (state.starts.has(key)) return ms(at - state.starts.get(key));
    return data.duration_ms !== undefined ? ms(data.duration_ms) : "";
  }

  const matches = (type) => !filter.value || (filter.value.endsWith(".*") ? type.startsWith(filter.value.slice(0, -1)) : type === filter.value);

  function addFilterOption(type) {
    if (state.types.has(type)) return;
    state.types.add(type);
    const family = `${type.split(".")[0]}.*`;
    const values = [...filter.options].map((o) => o.value);
    if (!values.includes(family)) filter.append(new Option(family, family));
    filter.append(new Option(type, type));
  }

  function addToTimeline(event) {
    const row = el("details", `ev t-${event.type.split(".")[0]}${event.type === "turn.failed" ? " failed" : ""}`);
    row.dataset.seq = event.sequence;
    row.dataset.type = event.type;
    const summary = el("summary");
    const time = el("time", "", clock(event.created_at));
    time.dateTime = event.created_at;
    summary.append(el("span", "seq", event.sequence), time, el("span", "type", event.type), el("span", "dur", duration(event)));
    const body = el("pre", "json");
    row.append(summary, body);
    row.addEventListener("toggle", () => { if (row.open && !body.textContent) body.textContent = JSON.stringify(event, null, 2); });
    row.hidden = !matches(event.type);
    addFilterOption(event.type);
    timeline.append(row);
    $("event-count").textContent = `${++state.count} events`;
  }
  filter.addEventListener("change", () => {
    timeline.querySelectorAll(".ev").forEach((row) => { row.hidden = !matches(row.dataset.type); });
  });

  function countProblems() {
    timeline.dataset.duplicates = state.duplicates;
    timeline.dataset.gaps = state.gaps;
    const problems = $("stream-problems");
    problems.hidden = !(state.duplicates || state.gaps);
    problems.textContent = `${state.duplicates} duplicate(s), ${state.gaps} gap(s) in the stream`;
  }

  // --- the stream ---------------------------------------------------------------------------------------------
  function onEvent(message) {
    let event;
    try { event = JSON.parse(message.data); } catch (_) { return; }
    if (event.type === "message.delta") { renderDelta(event.data); scrollDown(); return; }
    if (typeof event.sequence === "number") {
      if (event.sequence <= state.last) { state.duplicates += 1; countProblems(); return; }
      if (event.sequence !== state.last + 1) { state.gaps += 1; countProblems(); }
      state.last = event.sequence;
      timeline.dataset.last = state.last;
    }
    addToTimeline(event);
    apply(event);
    scrollDown();
  }

  function close() {
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.timer);
  }

  function connect() {
    close();
    setConnection(state.retries ? "reconnecting" : "connecting");
    const cursor = state.last ? `&lastEventId=${state.last}` : "";
    const source = new EventSource(`${API}/events?format=event-stream${cursor}`);
    state.source = source;
    source.addEventListener("open", () => { state.retries = 0; setConnection("live"); refreshSession(); });
    source.addEventListener("error", () => {
      if (source !== state.source) return;
      setConnection("reconnecting");
      if (source.readyState === EventSource.CLOSED) {  // refused (401, 429, ...): try again, more slowly each time
        state.retries += 1;
        state.timer = setTimeout(connect, Math.min(10000, 500 * 2 ** state.retries));
      }  // otherwise the browser reconnects by itself, with Last-Event-ID
    });
    for (const type of TYPES) source.addEventListener(type, onEvent);
  }

  window.addEventListener("offline", () => { close(); setConnection("offline"); });
  window.addEventListener("online", () => { state.retries = 1; connect(); });

  // --- sending: a message, a cancel ---------------------------------------------------------------------------
  const messageForm = $("message-form");
  Debug.onSubmit(messageForm, async (form) => {
    const text = form.elements.text.value;
    if (!text.trim()) return;
    await Debug.api("POST", form.action, { message: { role: "user", content: [{ type: "text", text }] } });
    form.elements.text.value = "";
  });
  messageForm.elements.text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      messageForm.requestSubmit();
    }
  });
  Debug.onSubmit($("cancel-form"), async (form) => {
    await Debug.api("POST", form.action, { reason: "Cancelled from the debug page" });
  });

  connect();
})();
