"""The OpenAPI document's outline is a contract: every operation's method, path, id, tags, parameters, request
body and responses, and the names of the schema components, match the committed snapshot.

After a deliberate API change, write the snapshot again and review its diff:
`DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python -m tests.test_openapi_contract > tests/openapi_contract.json`
"""

import json
import os
import pathlib

import django
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

SNAPSHOT = pathlib.Path(__file__).with_name("openapi_contract.json")
METHODS = ("get", "put", "post", "patch", "delete")


def _content(content: dict) -> dict:
    """Media type -> the component it refers to (or its inline type)."""

    return {media: body["schema"].get("$ref", body["schema"].get("type")) for media, body in content.items()}


def _parameter(parameter: dict) -> str:
    """`in:name` (`?` when optional) and its schema, e.g. `path:agent_id {"format": "uuid", "type": "string"}`."""

    optional = "" if parameter.get("required") else "?"
    return f"{parameter['in']}:{parameter['name']}{optional} {json.dumps(parameter['schema'], sort_keys=True)}"


def outline(document: dict) -> dict:
    operations = []
    for path, item in document["paths"].items():
        for method in METHODS:
            if method not in item:
                continue
            operation = item[method]
            body = operation.get("requestBody")
            operations.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "operationId": operation["operationId"],
                    "tags": operation.get("tags", []),
                    "parameters": sorted(_parameter(p) for p in operation.get("parameters", [])),
                    "requestBody": body and {"required": body.get("required", False), **_content(body["content"])},
                    "responses": {code: _content(r.get("content", {})) for code, r in operation["responses"].items()},
                }
            )
    operations.sort(key=lambda o: (o["path"], o["method"]))
    return {"operations": operations, "components": sorted(document["components"]["schemas"])}


def current_outline() -> dict:
    return outline(SchemaGenerator().get_schema(request=None, public=True))


def test_operations_keep_their_methods_paths_and_ids():
    expected = json.loads(SNAPSHOT.read_text())
    assert [(o["method"], o["path"], o["operationId"]) for o in current_outline()["operations"]] == [
        (o["method"], o["path"], o["operationId"]) for o in expected["operations"]
    ]


def test_operations_keep_their_parameters_bodies_and_responses():
    expected = json.loads(SNAPSHOT.read_text())
    assert current_outline()["operations"] == expected["operations"]


def test_schema_components_keep_their_names():
    assert current_outline()["components"] == json.loads(SNAPSHOT.read_text())["components"]


def test_schema_generates_without_warnings():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", os.devnull)


if __name__ == "__main__":
    django.setup()
    print(json.dumps(current_outline(), indent=1))
