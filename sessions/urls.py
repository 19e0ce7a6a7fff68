from django.urls import path

from everruns.api.routes import detail_route, list_route
from sessions.chat.views import AguiViewSet, ChatViewSet
from sessions.fs.views import SessionFileViewSet
from sessions.views import EventViewSet, MessageViewSet, SessionViewSet, StreamTokenViewSet, ToolCallViewSet

session = "agents/<uuid:agent_id>/sessions/<uuid:session_id>"
# A file's path is its id, so its collection-style POST (create) is on the item's own URL.
file_actions = {"get": "retrieve", "post": "create", "put": "update", "delete": "destroy"}
urlpatterns = [
    list_route("agents/<uuid:agent_id>/sessions", SessionViewSet),
    detail_route(session, SessionViewSet),
    path(f"{session}/cancel", SessionViewSet.as_view({"post": "cancel"})),
    path(f"{session}/compact", SessionViewSet.as_view({"post": "compact"})),
    path(f"{session}/tool-calls/<str:tool_call_id>/approval", ToolCallViewSet.as_view({"post": "approval"})),
    list_route(f"{session}/messages", MessageViewSet),
    list_route(f"{session}/events", EventViewSet),
    # The stream under upstream Everruns' name; sessions/streams/sse.py serves it before Django (this documents it).
    path(f"{session}/sse", EventViewSet.as_view({"get": "sse"})),
    list_route(f"{session}/stream-token", StreamTokenViewSet),
    # The chat front-ends' routes; sessions/chat/sse.py serves them in front of Django (these document them).
    path("agents/<uuid:agent_id>/ag-ui", AguiViewSet.as_view({"post": "create"})),
    path(f"{session}/chat", ChatViewSet.as_view({"post": "create"})),
    path(f"{session}/chat/stream", ChatViewSet.as_view({"get": "stream"})),
    path(f"{session}/chat/<str:chat_id>/stream", ChatViewSet.as_view({"get": "stream"}, schema=None)),
    # The file actions (upstream Everruns' routes) come before the paths they would otherwise be.
    *[
        path(f"{session}/fs/_/{action}", SessionFileViewSet.as_view({"post": action}))
        for action in ("stat", "copy", "move", "grep")
    ],
    path(f"{session}/fs/<path:path>", SessionFileViewSet.as_view(file_actions)),
    # The root directory, documented once as `.../fs/{path}` (schema=None leaves these out of the document).
    path(f"{session}/fs", SessionFileViewSet.as_view(file_actions, schema=None)),
    path(f"{session}/fs/", SessionFileViewSet.as_view(file_actions, schema=None)),
]
