"""OpenAPI post-processing: access control, as the server's AUTH_MODE has it. With `api_key`, every `/v1`
operation needs a bearer API key and may answer 401 and 403 (and 429 for writes); with `none`, none of it."""

from django.conf import settings

from everruns.api.auth import OPEN_ROUTES

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ACCESS = {
    "401": "No valid API key: missing, wrong, revoked or expired.",
    "403": "The API key's scope does not allow this.",
}
LIMITED = {"429": "Too many writes for this key, or too many turns running for it (`Retry-After`)."}
SCHEME = {"ApiKey": {"type": "http", "scheme": "bearer", "description": "An Everruns API key (`evr_...`)."}}


def add_access_control(result, generator, request, public):
    if settings.AUTH_MODE == "none":
        return result
    result.setdefault("components", {}).setdefault("securitySchemes", {}).update(SCHEME)
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            if not path.startswith("/v1/") or (method.upper(), path) in OPEN_ROUTES:
                operation["security"] = []  # /health, the documents and the auth config stay open
                continue
            operation["security"] = [{"ApiKey": []}]
            for status, description in {**ACCESS, **(LIMITED if method != "get" else {})}.items():
                operation.setdefault("responses", {}).setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}
                )
    return result
