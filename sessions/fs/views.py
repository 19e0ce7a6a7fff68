"""`.../sessions/{session_id}/fs/{path}`: the session's files over HTTP."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from everruns.api.fields import StrictSerializer
from everruns.api.pagination import page_parameters, page_params
from everruns.api.views import errors, validated
from sessions import selectors
from sessions.fs import files

FILE_SCHEMA = inline_serializer(
    name="SessionFile",
    fields={
        "path": serializers.CharField(),
        "name": serializers.CharField(),
        "is_directory": serializers.BooleanField(),
        "size": serializers.IntegerField(),
        "content": serializers.CharField(required=False),
        "encoding": serializers.CharField(required=False),
        "entries": serializers.ListField(
            child=serializers.DictField(), required=False, help_text="A directory's entries: one page of them."
        ),
        "total": serializers.IntegerField(required=False, help_text="A directory's entries in all."),
        "limit": serializers.IntegerField(required=False, help_text="The page size of `entries`."),
        "offset": serializers.IntegerField(required=False, help_text="Where `entries` starts."),
        "created_at": serializers.CharField(allow_null=True),
        "updated_at": serializers.CharField(allow_null=True),
    },
)


class FileCreateSerializer(StrictSerializer):
    content = serializers.CharField(allow_blank=True, required=False, trim_whitespace=False, allow_null=True)
    encoding = serializers.ChoiceField(choices=["text", "base64"], default="text")
    is_directory = serializers.BooleanField(default=False)


class FileUpdateSerializer(StrictSerializer):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)
    encoding = serializers.ChoiceField(choices=["text", "base64"], default="text")


# One file or directory, named by its path. `.../fs` and `.../fs/` are the root directory.
class SessionFileViewSet(viewsets.ViewSet):
    def _session(self, agent_id, session_id):
        return selectors.session_get(agent_id=agent_id, session_id=session_id)

    @extend_schema(
        operation_id="session_files_get",
        parameters=page_parameters(),
        description="A file with its content, or a directory with one page of its entries (`limit`, `offset`).",
        responses={200: FILE_SCHEMA, **errors(400, 404)},
    )
    def retrieve(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        found = files.get(session.pk, path)
        if found is None or found.is_directory:
            limit, offset = page_params(request)
            entries, total = files.children(session.pk, path, limit=limit, offset=offset)
            listing = files.describe(found)
            listing.update(entries=[files.describe(f) for f in entries], total=total, limit=limit, offset=offset)
            return Response(listing)
        return Response(files.describe(found, with_content=True))

    @extend_schema(
        operation_id="session_files_create",
        request=FileCreateSerializer,
        responses={201: FILE_SCHEMA, **errors(400, 404, 409, 413, 415)},
    )
    def create(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        data = validated(FileCreateSerializer, request.data)
        created = files.create(session.pk, path, **data)
        return Response(files.describe(created, with_content=True), status=201)

    @extend_schema(
        operation_id="session_files_update",
        request=FileUpdateSerializer,
        responses={200: FILE_SCHEMA, **errors(400, 404, 409, 413, 415)},
    )
    def update(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        data = validated(FileUpdateSerializer, request.data)
        return Response(files.describe(files.update(session.pk, path, **data), with_content=True))

    @extend_schema(
        operation_id="session_files_delete",
        parameters=[OpenApiParameter("recursive", bool)],
        responses={204: None, **errors(400, 404, 409)},
    )
    def destroy(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        recursive = request.query_params.get("recursive", "").lower() in ("1", "true", "yes")
        files.delete(session.pk, path, recursive=recursive)
        return Response(status=204)
