"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every request (headers and the
exact body bytes) and answers from a script.

Script entries, consumed in order, one per request: {"status": 500} answers that status; {"hang": True} reads the
request and never answers (until the server stops); when the script is empty it answers 200."""

import threading
import time
from http.server import BaseHTTPRequestHandler

from tests.fake_llm_server import QuietServer


class Receiver:
    def __init__(self):
        self.script: list[dict] = []
        # {"headers": {lower-case name: value}, "body": bytes, "answer": status or None, "at": time.monotonic()}
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.server = QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def reply(self, *entries: dict) -> None:
        with self.lock:
            self.script.extend(entries)

    def answered(self, status: int = 200) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if r["answer"] == status]

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    entry = receiver.script.pop(0) if receiver.script else {}
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    record = {"headers": headers, "body": body, "at": time.monotonic()}
                    record["answer"] = None if entry.get("hang") else entry.get("status", 200)
                    receiver.requests.append(record)
                if entry.get("hang"):
                    receiver.stopping.wait()
                    return
                payload = b'{"ok": true}'
                self.send_response(record["answer"])
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
