import base64

import pytest

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
    assert response.json()["path"] == "/notes/day1/todo.md" and response.json()["size"] == 10
    assert api.get(f"{base}/notes/day1/todo.md").json()["content"] == "# Todo\n- a"
    assert api.get(f"{base}/notes").json()["is_directory"] is True
    listing = api.get(f"{base}/").json()
    assert [e["path"] for e in listing["entries"]] == ["/notes"]
    assert api.get(base).json()["entries"][0]["name"] == "notes"
    updated = api.put(f"{base}/notes/day1/todo.md", {"content": "done"}, format="json")
    assert updated.status_code == 200 and updated.json()["content"] == "done"
    assert api.delete(f"{base}/notes/day1/todo.md").status_code == 204
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
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert api.delete(f"{base}/dir?recursive=true").status_code == 204
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
