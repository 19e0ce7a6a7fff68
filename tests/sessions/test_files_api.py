import base64
import tracemalloc

import pytest

from sessions.fs import files
from sessions.models import SessionFile
from tests.factories import make_session


@pytest.fixture
def fs(api):
    session = make_session()
    return f"/v1/agents/{session.agent_id}/sessions/{session.pk}/fs", session


def test_create_read_update_delete_a_file_with_parents(api, fs):
    base, session = fs
    response = api.post(f"{base}/notes/day1/todo.md", {"content": "# Todo\n- a"}, format="json")
    assert response.status_code == 201
    assert response.json()["path"] == "/notes/day1/todo.md" and response.json()["size_bytes"] == 10
    assert api.get(f"{base}/notes/day1/todo.md").json()["content"] == "# Todo\n- a"
    listing = api.get(f"{base}/").json()
    assert [e["path"] for e in listing["items"]] == ["/notes"] and listing["items"][0]["is_directory"] is True
    assert api.get(base).json()["items"][0]["name"] == "notes"
    updated = api.put(f"{base}/notes/day1/todo.md", {"content": "done"}, format="json")
    assert updated.status_code == 200 and updated.json()["content"] == "done"
    assert api.delete(f"{base}/notes/day1/todo.md").json() == {"deleted": True}
    assert api.get(f"{base}/notes/day1/todo.md").status_code == 404


def test_binary_content_round_trips_as_base64(api, fs):
    base, _ = fs
    raw = bytes(range(256))
    encoded = base64.b64encode(raw).decode()
    assert api.post(f"{base}/blob.bin", {"content": encoded, "encoding": "base64"}, format="json").status_code == 201
    body = api.get(f"{base}/blob.bin").json()
    assert body["encoding"] == "base64" and base64.b64decode(body["content"]) == raw
    assert api.post(f"{base}/bad.bin", {"content": "!!", "encoding": "base64"}, format="json").status_code == 400


def test_conflicts_and_missing(api, fs):
    base, _ = fs
    api.post(f"{base}/a.txt", {"content": "x"}, format="json")
    assert api.post(f"{base}/a.txt", {"content": "y"}, format="json").status_code == 409
    assert api.put(f"{base}/missing.txt", {"content": "y"}, format="json").status_code == 404
    assert api.post(f"{base}/a.txt/child", {"content": "y"}, format="json").status_code == 409
    assert api.delete(f"{base}/missing").status_code == 404


def test_directories_and_recursive_delete(api, fs):
    base, session = fs
    assert api.post(f"{base}/dir", {"is_directory": True}, format="json").status_code == 201
    api.post(f"{base}/dir/sub/f.txt", {"content": "x"}, format="json")
    response = api.delete(f"{base}/dir")
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert api.delete(f"{base}/dir?recursive=true").status_code == 200
    assert SessionFile.objects.filter(session=session).count() == 0


@pytest.mark.parametrize(
    "path",
    ["../etc/passwd", "a/../../b", "a/%2e%2e/b", "..", "a/%00b", "x" * 1100, "a\\b", f"{'n' * 300}/f"],
)
def test_path_attacks_are_refused_with_400(api, fs, path):
    base, session = fs
    response = api.post(f"{base}/{path}", {"content": "x"}, format="json")
    assert response.status_code == 400, (path, response.content)
    assert response.json()["error"]["code"] == "validation_error"
    assert SessionFile.objects.filter(session=session).count() == 0


def test_paths_are_normalised(api, fs):
    base, _ = fs
    assert api.post(f"{base}/./a//b/./c.txt", {"content": "x"}, format="json").json()["path"] == "/a/b/c.txt"


def test_size_limits_are_413(api, fs, settings):
    base, session = fs
    settings.SESSION_FILE_MAX_BYTES = 100
    settings.SESSION_FS_MAX_BYTES = 150
    big = api.post(f"{base}/big.txt", {"content": "x" * 101}, format="json")
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert api.post(f"{base}/one.txt", {"content": "x" * 100}, format="json").status_code == 201
    assert api.post(f"{base}/two.txt", {"content": "x" * 60}, format="json").status_code == 413
    assert SessionFile.objects.filter(session=session).count() == 1


def test_files_are_per_session_and_deleted_with_it(api, fs):
    base, session = fs
    api.post(f"{base}/mine.txt", {"content": "x"}, format="json")
    other = make_session()
    assert api.get(f"/v1/agents/{other.agent_id}/sessions/{other.pk}/fs/mine.txt").status_code == 404
    assert api.get(f"/v1/agents/{other.agent_id}/sessions/{session.pk}/fs/mine.txt").status_code == 404
    api.delete(f"/v1/agents/{session.agent_id}/sessions/{session.pk}")
    assert SessionFile.objects.count() == 0


def test_recursive_delete_touches_only_its_own_prefix(api, fs):
    base, session = fs
    for path in ("a/important.txt", "A/x.txt", "A/sub/y.txt", "Ab/z.txt", "A_/w.txt"):
        assert api.post(f"{base}/{path}", {"content": "x"}, format="json").status_code == 201
    assert api.delete(f"{base}/A?recursive=true").status_code == 200
    remaining = set(SessionFile.objects.filter(session=session).values_list("path", flat=True))
    assert remaining == {"/a", "/a/important.txt", "/Ab", "/Ab/z.txt", "/A_", "/A_/w.txt"}


def test_a_directory_listing_is_paginated(api, fs):
    base, _ = fs
    for name in ("e", "b", "d", "a", "c"):
        api.post(f"{base}/dir/{name}.txt", {"content": "x"}, format="json")
    api.post(f"{base}/dir/c/deeper.txt", {"content": "x"}, format="json")  # a directory entry, not its contents
    page = api.get(f"{base}/dir?limit=2&offset=2").json()
    assert [e["name"] for e in page["items"]] == ["c", "c.txt"]
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 2)
    first = api.get(f"{base}/dir").json()
    assert [e["name"] for e in first["items"]] == ["a.txt", "b.txt", "c", "c.txt", "d.txt", "e.txt"]
    assert (first["total"], first["limit"], first["offset"]) == (6, 50, 0)
    for query in ("limit=0", "offset=-1", "limit=x"):
        response = api.get(f"{base}/dir?{query}")
        assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"
    assert "total" not in api.get(f"{base}/dir/a.txt?limit=x").json()  # a file has no entries to page


def test_paths_deeper_than_the_limit_are_400(api, fs, settings):
    base, session = fs
    settings.SESSION_FS_MAX_DEPTH = 3
    assert api.post(f"{base}/a/b/c", {"content": "x"}, format="json").status_code == 201
    response = api.post(f"{base}/a/b/c2/d", {"content": "x"}, format="json")
    assert response.status_code == 400 and "3 levels" in response.json()["error"]["details"]["path"][0]
    assert SessionFile.objects.filter(session=session).count() == 3


def test_the_number_of_entries_is_limited_with_413(api, fs, settings):
    base, session = fs
    settings.SESSION_FS_MAX_FILES = 4
    assert api.post(f"{base}/a/b/c.txt", {"content": "x"}, format="json").status_code == 201  # 3 entries
    # Two more (the parent /d counts too): refused whole, nothing half-made.
    response = api.post(f"{base}/d/e.txt", {"content": ""}, format="json")
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert api.post(f"{base}/a/f.txt", {"content": ""}, format="json").status_code == 201
    assert api.post(f"{base}/g", {"is_directory": True}, format="json").status_code == 413
    assert api.put(f"{base}/a/f.txt", {"content": "replacing is fine"}, format="json").status_code == 200
    assert SessionFile.objects.filter(session=session).count() == 4


def test_paths_count_against_the_byte_quota(api, fs, settings):
    base, session = fs
    settings.SESSION_FS_MAX_BYTES = 100
    name = "n" * 60  # "/n...n" is 61 bytes, "/n...n/n...n" 122
    assert api.post(f"{base}/{name}", {"content": ""}, format="json").status_code == 201
    response = api.post(f"{base}/{name[:40]}", {"content": ""}, format="json")  # 61 + 41 > 100 with no content
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert api.post(f"{base}/é", {"content": "x" * 35}, format="json").status_code == 201  # 61 + 3 + 35 = 99
    assert api.put(f"{base}/é", {"content": "x" * 37}, format="json").status_code == 413
    assert SessionFile.objects.filter(session=session).count() == 2


def test_names_are_stored_in_nfc(api, fs):
    base, _ = fs
    decomposed = "cafe\u0301.txt"
    created = api.post(f"{base}/{decomposed}", {"content": "x"}, format="json")
    assert created.status_code == 201 and created.json()["path"] == "/caf\u00e9.txt"
    assert api.get(f"{base}/caf\u00e9.txt").json()["content"] == "x"
    assert api.get(f"{base}/{decomposed}").json()["path"] == "/caf\u00e9.txt"
    assert api.post(f"{base}/caf\u00e9.txt", {"content": "y"}, format="json").status_code == 409


@pytest.mark.parametrize(
    "name", ["evil\u202etxt.exe", "a\u2066b", "a\u200fb", "bell\x07", "esc\x1b[31m", "del\x7f", "line\u2028sep"]
)
def test_control_and_bidi_characters_in_names_are_400(api, fs, name):
    base, session = fs
    response = api.post(f"{base}/dir/{name}", {"content": "x"}, format="json")
    assert response.status_code == 400, (name, response.content)
    assert response.json()["error"]["code"] == "validation_error"
    assert SessionFile.objects.filter(session=session).count() == 0


@pytest.mark.parametrize(
    "name", ["zero\u200bwidth", "join\u200dme", "bom\ufeff", "soft\u00adhyphen", "word\u2060joiner", "filler\u3164"]
)
def test_invisible_characters_in_names_are_400(api, fs, name):
    """Two names that look the same are the same name: zero-width and other invisible characters are refused."""
    base, session = fs
    response = api.post(f"{base}/{name}.txt", {"content": "x"}, format="json")
    assert response.status_code == 400, (name, response.content)
    assert "not allowed" in response.json()["error"]["details"]["path"][0]
    assert SessionFile.objects.filter(session=session).count() == 0


def test_grep_holds_one_files_content_at_a_time(seeded_tx):
    """16 files of 1 MiB: the search's peak of Python memory stays near one file's worth (reading them all at
    once, as a plain queryset loop does, peaks above 16 MiB)."""
    session = make_session()
    line = "y" * 1023 + "\n"
    for i in range(16):
        files.create(session.pk, f"/big/{i:02}.txt", content=line * 1024)
    files.create(session.pk, "/big/needle.txt", content="a needle here\n")
    tracemalloc.start()
    try:
        matches = files.grep(session.pk, "needle", "/big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert matches == [{"path": "/big/needle.txt", "line_number": 1, "line": "a needle here"}]
    assert peak < 6 * 1024 * 1024, f"grep peaked at {peak / 2**20:.1f} MiB"
