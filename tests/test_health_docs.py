def test_health_reports_database_and_broker(api):
    response = api.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "broker": "ok"} and body["version"]


def test_health_is_503_when_the_broker_is_down(api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = api.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["checks"]["broker"].startswith("error")
    assert body["checks"]["database"] == "ok"


def test_openapi_document(api):
    response = api.get("/api-doc/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["info"]["title"] == "Everruns API" and doc["openapi"].startswith("3.")
    assert "/v1/agents/{agent_id}/sessions/{session_id}/messages" in doc["paths"]


def test_swagger_ui_is_served_with_local_assets(api):
    response = api.get("/swagger-ui/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "cdn.jsdelivr" not in page and "unpkg" not in page


def test_unknown_path_is_a_json_404(api):
    response = api.get("/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
