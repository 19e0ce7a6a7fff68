"""The benchmark's own logic (bench/): the parts whose mistakes would quietly give wrong figures."""

import asyncio
import os

from django.test import Client
from rest_framework.test import APIRequestFactory

from bench import procs
from bench.client import RawHttp, SseClient, turn_ended, turn_started_by
from bench.profile import summarize
from bench.report import Target, percentile, summary, table
from bench.scenarios import _exactly_once
from bench.stack import procfile
from everruns.bench_views import PingView


def test_percentile_interpolates_between_ranks():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([5], 99) == 5
    assert percentile([3, 1, 2], 0) == 1 and percentile([3, 1, 2], 100) == 3
    assert percentile([], 50) is None and summary([]) == {"n": 0}


def test_parse_stat_reads_cpu_past_a_command_name_with_spaces_and_parentheses():
    fields = ["S", "41"] + ["0"] * 9 + ["250", "50", "30", "20"] + ["0"] * 30
    stat = procs.parse_stat(f"1234 (celeryd: a (b) c) {' '.join(fields)}")
    ticks = procs.CLOCK_TICKS
    assert stat.ppid == 41 and stat.cpu == 300 / ticks and stat.children_cpu == 50 / ticks


def test_parse_status_reads_rss_and_threads():
    text = "Name:\tpython\nVmRSS:\t  102400 kB\nThreads:\t7\n"
    assert procs.parse_status(text) == {"rss_mb": 100.0, "threads": 7}


def test_tree_cpu_includes_the_process_itself():
    sum(i * i for i in range(300_000))  # a little CPU of our own
    assert procs.tree_cpu(os.getpid()) >= procs.cpu(os.getpid()) > 0


def test_procfile_processes_listen_on_loopback_only():
    commands = procfile()
    assert set(commands) >= {"web", "worker"}
    assert "--host 127.0.0.1" in commands["web"] and "0.0.0.0" not in commands["web"]


def _client_with(events: list[tuple[int, str]]) -> SseClient:
    client = SseClient("http://127.0.0.1:9", "/s/events")
    client.events = [(0.0, "x", seq, {"id": eid, "sequence": seq}) for seq, eid in events]
    return client


def test_exactly_once_accepts_the_log_in_order_and_names_what_went_wrong():
    log = [{"sequence": 1, "id": "a"}, {"sequence": 2, "id": "b"}, {"sequence": 3, "id": "c"}]
    assert _exactly_once(_client_with([(1, "a"), (2, "b"), (3, "c")]), log) is None
    assert "missing [2]" in _exactly_once(_client_with([(1, "a"), (3, "c")]), log)
    assert "1 duplicates" in _exactly_once(_client_with([(1, "a"), (2, "b"), (2, "b"), (3, "c")]), log)
    assert "out of order" in _exactly_once(_client_with([(1, "a"), (3, "c"), (2, "b")]), log)


def test_a_turn_is_paired_with_its_message_and_its_end():
    started = (0.0, "turn.started", 4, {"turn_id": "t1", "data": {"input_message_ids": ["m1"]}})
    status = (0.0, "session.status", 9, {"turn_id": "t1", "data": {"status": "pending"}})
    other = (0.0, "session.status", 9, {"turn_id": "t2", "data": {"status": "pending"}})
    assert turn_started_by("m1")(started) and not turn_started_by("m2")(started)
    assert turn_ended("t1")(status) and not turn_ended("t1")(other)


def test_target_verdicts_and_the_table_show_bounds():
    assert Target("k", "rate", ">=", 50, "turns/s", 60).met is True
    assert Target("k", "rss", "<=", 120, "MB", 121).met is False
    assert Target("k", "rss", "<=", 120, "MB", None).met is None
    bound = Target("w", "waiting", ">=", 90, "%", 33.3, "did not finish in 180 s", "<")
    text = table({"scenarios": {"waiting": {"status": "ok", "targets": [bound.to_dict()]}}})
    assert "<33.3 %" in text and "NO" in text and "did not finish in 180 s" in text


async def _serve(handler) -> tuple[asyncio.AbstractServer, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def test_raw_http_reads_content_length_and_chunked_bodies_on_one_connection():
    async def handler(reader, writer):
        for body in (b'{"a":1}', None):
            await reader.readuntil(b"\r\n\r\n")
            if body is not None:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n" + body)
            else:
                writer.write(
                    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                )
            await writer.drain()
        writer.close()

    async def scenario():
        server, url = await _serve(handler)
        conn = RawHttp(url)
        try:
            first = await conn.request("GET", "/x")
            second = await conn.request("POST", "/y", b"{}")
        finally:
            await conn.close()
            server.close()
        return first, second

    assert asyncio.run(scenario()) == ((200, b'{"a":1}'), (201, b"abcde"))


def test_sse_client_keeps_events_with_their_sequence_and_skips_comments():
    body = (
        b": stream open\n\n"
        b'event: turn.started\nid: 1\ndata: {"sequence": 1, "type": "turn.started"}\n\n'
        b'event: message.delta\ndata: {"delta": "hi"}\n\n'
        b": keep-alive\n\n"
        b'event: session.status\nid: 2\ndata: {"sequence": 2, "type": "session.status"}\n\n'
    )

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        await reader.read()  # open until the client goes away: no "stream ended" error
        writer.close()

    async def scenario():
        server, url = await _serve(handler)
        client = SseClient(url, "/events", reconnect=False).start()
        found = await client.wait_for(lambda e: e[2] == 2, timeout=5)
        await client.stop()
        server.close()
        return client, found

    client, found = asyncio.run(scenario())
    assert found == 2 and client.error is None
    assert [(e[1], e[2]) for e in client.events] == [
        ("turn.started", 1),
        ("message.delta", None),
        ("session.status", 2),
    ]
    assert [e[2] for e in client.stored()] == [1, 2]


def test_sse_client_reads_a_chunked_body_with_events_split_across_chunks():
    chunks = [
        b": stream open\n\n",
        b'event: a\nid: 1\ndata: {"sequence"',
        b': 1}\n\nevent: b\nid: 2\ndata: {"sequence": 2}\n\n',
    ]

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in chunks:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def scenario():
        server, url = await _serve(handler)
        client = SseClient(url, "/events", reconnect=False).start()
        await client.wait_for(lambda e: e[2] == 2, timeout=5)
        for _ in range(500):  # then the end of the body ends the stream
            if client.closed:
                break
            await asyncio.sleep(0.01)
        await client.stop()
        server.close()
        return client

    client = asyncio.run(scenario())
    assert [(e[1], e[2]) for e in client.events] == [("a", 1), ("b", 2)]
    assert client.errors == ["stream ended by the server"]


def test_sse_client_resumes_a_broken_stream_from_its_last_event():
    seen_cursors = []

    async def handler(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
        cursor = next((line.split(":", 1)[1].strip() for line in head.split("\r\n") if "last-event-id" in line), None)
        seen_cursors.append(cursor)
        sequence = 1 if cursor is None else int(cursor) + 1
        event = f'event: x\nid: {sequence}\ndata: {{"sequence": {sequence}}}\n\n'.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + event)
        await writer.drain()
        writer.close()  # the stream breaks after every event

    async def scenario():
        server, url = await _serve(handler)
        client = SseClient(url, "/events", retry_seconds=0.01).start()
        await client.wait_for(lambda e: e[2] == 3, timeout=5)
        await client.stop()
        server.close()
        return client

    client = asyncio.run(scenario())
    assert [e[2] for e in client.stored()] == [1, 2, 3]
    assert seen_cursors[:3] == [None, "1", "2"] and len(client.errors) >= 2


def test_the_bench_route_is_off_unless_enabled():
    assert Client().get("/bench/ping").status_code == 404


def test_the_trivial_view_returns_an_empty_object():
    response = PingView.as_view()(APIRequestFactory().get("/bench/ping"))
    assert response.status_code == 200 and response.data == {}


def test_sse_client_gives_up_on_a_refused_stream_like_eventsource():
    attempts = []

    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        attempts.append(1)
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    async def scenario():
        server, url = await _serve(handler)
        client = SseClient(url, "/events", retry_seconds=0.01).start()
        await asyncio.wait_for(client.opened.wait(), 5)
        await asyncio.sleep(0.1)
        await client.stop()
        server.close()
        return client

    client = asyncio.run(scenario())
    assert client.closed and client.opened_at is None and client.errors == ["HTTP 500"] and len(attempts) == 1


def test_a_target_whose_run_refused_requests_is_not_met_whatever_its_figure():
    target = Target("w", "waiting", ">=", 90, "%", 95.0, "3 POSTs refused")
    target.broken = True
    assert target.met is False and target.to_dict()["met"] is False


def test_a_profile_summary_gives_each_functions_share_of_the_samples():
    collapsed = (
        "main (app.py:1);handle (views.py:10);query (db.py:5) 6\n"
        "main (app.py:1);handle (views.py:10) 2\n"
        "main (app.py:1);render (views.py:20) 2\n"
    )
    text = summarize(collapsed, "api-get: web")
    assert text.startswith("api-get: web: 10 samples")
    inclusive, own = text.split("self:")
    assert "100.0%  main (app.py)" in inclusive and " 80.0%  handle (views.py)" in inclusive
    assert " 60.0%  query (db.py)" in own and " 20.0%  render (views.py)" in own
