"""A small OpenAI-compatible server that replays scripted responses, so tests drive litellm's real
`openai/` HTTP path offline.

Script entries (consumed in order, one per /v1/chat/completions request):
  {"text": "...", "tool_calls": [{"id", "name", "arguments": dict|str}], "usage": {...}}
  {"status": 429|500|401|403|404|400, "error": "message"}  an error response (429 says Retry-After: 0)
  {"status": ..., "retry_after": seconds}                  an error response with that Retry-After
  {"delay": seconds}                                       sleeps before answering (any entry)
  {"status": 307|303|..., "redirect": url}                 a redirect to url
  {"status": ..., "html": "..."}                           an error answered as an HTML page
`FakeLLM(fixed=entry)` answers every request, GET or POST, with that one entry (a server a provider
might redirect to, holding something that must not come back).
`max_context_chars`: a request whose messages (as JSON) are longer gets OpenAI's context-length error (400,
code `context_length_exceeded`), consuming no entry. `respond(body)`: a function answering a request with an
entry, or None to go on to the script. When the script is empty the server echoes a short text. Every request
body is recorded, with its headers and the time it arrived (`time.monotonic()`, in `received_at`).

Run standalone: python tests/fake_llm_server.py [port]
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (OSError, ValueError)):  # a client that hung up, or shutdown
            super().handle_error(request, client_address)


def context_length_error(limit: int, tokens: int) -> dict:
    """OpenAI's answer to an input over the model's window (its message, type and code, as it sends them)."""
    return {
        "status": 400,
        "code": "context_length_exceeded",
        "error": f"This model's maximum context length is {limit} tokens. However, your messages resulted in "
        f"{tokens} tokens. Please reduce the length of the messages.",
    }


class FakeLLM:
    def __init__(self, port: int = 0, fixed: dict | None = None):
        self.fixed = fixed
        self.script: list[dict] = []
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.received_at: list[float] = []
        self.max_context_chars: int | None = None
        self.respond = None
        self.lock = threading.Lock()
        self.server = QuietServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "FakeLLM":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reply(self, *entries: dict) -> None:
        with self.lock:
            self.script.extend(entries)

    def _next(self, body: dict, headers: dict) -> dict:
        with self.lock:
            self.requests.append(body)
            self.headers.append(headers)
            self.received_at.append(time.monotonic())
            if self.fixed is not None:
                return self.fixed
            size = len(json.dumps(body.get("messages") or []))
            if self.max_context_chars is not None and size > self.max_context_chars:
                return context_length_error(self.max_context_chars // 4, size // 4)
            if self.respond is not None and (entry := self.respond(body)) is not None:
                return entry
            if self.script:
                return self.script.pop(0)
        last = body.get("messages", [{}])[-1].get("content")
        return {"text": f"echo: {last}"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload: dict, retry_after=None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is None and status == 429:
                    retry_after = 0
                if retry_after is not None:
                    self.send_header("Retry-After", str(retry_after))
                self.end_headers()
                self.wfile.write(data)

            def _raw(self, status: int, content_type: str, data: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if fake.fixed is not None:
                    self._answer({}, fake._next({"method": "GET", "path": self.path}, dict(self.headers)))
                    return
                self._json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._answer(body, fake._next(body, {k.lower(): v for k, v in self.headers.items()}))

            def _answer(self, body: dict, entry: dict) -> None:
                if entry.get("delay"):
                    time.sleep(entry["delay"])
                if entry.get("redirect"):
                    self._raw(entry.get("status", 307), "text/plain", b"moved", {"Location": entry["redirect"]})
                    return
                if entry.get("html"):
                    self._raw(entry.get("status", 500), "text/html", entry["html"].encode())
                    return
                if entry.get("status"):
                    kind = {
                        400: "invalid_request_error",
                        401: "authentication_error",
                        403: "permission_error",
                        404: "not_found_error",
                        429: "rate_limit_error",
                    }
                    message = entry.get("error", "scripted error")
                    if entry.get("echo_key"):  # a provider that quotes the key back, as some do
                        message += " key=" + self.headers.get("Authorization", "").removeprefix("Bearer ")
                    self._json(
                        entry["status"],
                        {
                            "error": {
                                "message": message,
                                "type": kind.get(entry["status"], "server_error"),
                                "code": entry.get("code"),
                            }
                        },
                        entry.get("retry_after"),
                    )
                    return
                if body.get("stream"):
                    self._stream(body, entry)
                else:
                    self._whole(body, entry)

            def _usage(self, entry):
                usage = entry.get("usage") or {"prompt_tokens": 20, "completion_tokens": 10}
                usage = {**usage, "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"]}
                return usage

            def _calls(self, entry):
                return [
                    {
                        "id": c.get("id", f"call_{i}"),
                        "type": "function",
                        "function": {
                            "name": c["name"],
                            "arguments": c["arguments"]
                            if isinstance(c["arguments"], str)
                            else json.dumps(c["arguments"]),
                        },
                    }
                    for i, c in enumerate(entry.get("tool_calls") or [])
                ]

            def _whole(self, body, entry):
                message = {"role": "assistant", "content": entry.get("text") or None}
                calls = self._calls(entry)
                if calls:
                    message["tool_calls"] = calls
                self._json(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [
                            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
                        ],
                        "usage": self._usage(entry),
                    },
                )

            def _stream(self, body, entry):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                base = {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model"),
                }

                def send(choices, **extra):
                    chunk = {**base, "choices": choices, **extra}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
                text = entry.get("text") or ""
                words = [w + " " for w in text.split(" ")] if text else []
                if words:
                    words[-1] = words[-1][:-1]
                for word in words:
                    send([{"index": 0, "delta": {"content": word}, "finish_reason": None}])
                    if entry.get("token_delay"):
                        time.sleep(entry["token_delay"])
                for i, call in enumerate(self._calls(entry)):
                    args = call["function"]["arguments"]
                    half = len(args) // 2
                    send(
                        [
                            {
                                "index": 0,
                                "delta": {
                                    "tool_calls": [
                                        {
                                            "index": i,
                                            "id": call["id"],
                                            "type": "function",
                                            "function": {"name": call["function"]["name"], "arguments": args[:half]},
                                        }
                                    ]
                                },
                                "finish_reason": None,
                            }
                        ]
                    )
                    send(
                        [
                            {
                                "index": 0,
                                "delta": {"tool_calls": [{"index": i, "function": {"arguments": args[half:]}}]},
                                "finish_reason": None,
                            }
                        ]
                    )
                send([{"index": 0, "delta": {}, "finish_reason": "tool_calls" if entry.get("tool_calls") else "stop"}])
                if (body.get("stream_options") or {}).get("include_usage"):
                    send([], usage=self._usage(entry))
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

        return Handler


if __name__ == "__main__":
    server = FakeLLM(int(sys.argv[1]) if len(sys.argv) > 1 else 8089).start()
    print(f"fake OpenAI-compatible server on {server.base_url}", flush=True)
    server.thread.join()
