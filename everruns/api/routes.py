"""URL patterns for ViewSets: DRF SimpleRouter's method-to-action maps on explicit `path()`s, so that path
converters (`<uuid:agent_id>`) type every id in the OpenAPI document and a malformed id is a 404 before any
view runs.

Our ViewSets have a comment, not a docstring: drf-spectacular would copy a docstring into the description of
every operation of the ViewSet."""

from django.urls import URLPattern, path
from rest_framework.viewsets import ViewSetMixin

LIST_ACTIONS = {"get": "list", "post": "create"}
DETAIL_ACTIONS = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}


def _actions(viewset: type[ViewSetMixin], actions: dict[str, str]) -> dict[str, str]:
    return {method: action for method, action in actions.items() if hasattr(viewset, action)}


def list_route(route: str, viewset: type[ViewSetMixin]) -> URLPattern:
    """`route` is the collection: GET `list`, POST `create` (those that `viewset` has)."""

    return path(route, viewset.as_view(_actions(viewset, LIST_ACTIONS), suffix="List"))


def detail_route(route: str, viewset: type[ViewSetMixin]) -> URLPattern:
    """`route` is one item: GET `retrieve`, PUT `update`, PATCH `partial_update`, DELETE `destroy` (those that
    `viewset` has)."""

    return path(route, viewset.as_view(_actions(viewset, DETAIL_ACTIONS), suffix="Detail"))
