// Drives Everruns' AI SDK chat endpoint with the AI SDK itself (`ai`: useChat's DefaultChatTransport and
// readUIMessageStream, no React), the way a front-end does.
// Usage: node aisdk.mjs '<plan JSON>'; prints {runs: [...], messages: [...]} as JSON.
// Plan: {api (.../sessions/{id}/chat), chatId (the session id), headers, cancelUrl, steps: [{say, dropAfter, cancelAfter}]}
//   say: a user message; the transport sends the whole history, as useChat does
//   dropAfter: the connection drops after this many chunks; the app then resumes (transport.reconnectToStream,
//     GET {api}/{chatId}/stream), and the resumed stream replaces the partial message, as useChat's resume does
//   cancelAfter: a chunk type after which the app stops the turn (Everruns' cancel route)
import { DefaultChatTransport, readUIMessageStream } from "ai";

const plan = JSON.parse(process.argv[2]);
const transport = new DefaultChatTransport({ api: plan.api, headers: plan.headers || {} });
const messages = [];
const runs = [];

async function read(stream, record, step, abort) {
  let seen = 0;
  let cancelled = false;
  const recorded = stream.pipeThrough(
    new TransformStream({
      async transform(chunk, controller) {
        seen += 1;
        record.chunks.push(chunk.type);
        if (step.dropAfter && seen >= step.dropAfter && !record.dropped) {
          record.dropped = true;
          controller.enqueue(chunk);
          abort.abort(); // the connection is gone
          return;
        }
        if (step.cancelAfter && chunk.type === step.cancelAfter && !cancelled) {
          cancelled = true;
          record.cancelStatus = (await fetch(plan.cancelUrl, { method: "POST", headers: plan.headers })).status;
        }
        controller.enqueue(chunk);
      },
    }),
  );
  let last;
  try {
    for await (const message of readUIMessageStream({
      stream: recorded,
      onError: (error) => record.errors.push(String(error?.message || error)),
    })) {
      last = message;
    }
  } catch (error) {
    record.failure = String(error?.name || error);
  }
  return last;
}

for (const [index, step] of plan.steps.entries()) {
  messages.push({ id: `user-${index}-${Date.now()}`, role: "user", parts: [{ type: "text", text: step.say }] });
  const record = { chunks: [], errors: [], dropped: false };
  runs.push(record);
  const abort = new AbortController();
  const stream = await transport.sendMessages({
    chatId: plan.chatId,
    messages,
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: abort.signal,
  });
  let answer = await read(stream, record, step, abort);
  if (record.dropped) {
    record.partial = answer;
    const again = { chunks: [], errors: [], dropped: false, resumed: true };
    runs.push(again);
    const resumed = await transport.reconnectToStream({ chatId: plan.chatId });
    answer = resumed ? await read(resumed, again, {}, new AbortController()) : answer;
  }
  if (answer) messages.push(answer);
}
process.stdout.write(JSON.stringify({ runs, messages }));
