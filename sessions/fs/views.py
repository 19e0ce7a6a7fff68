"""`.../sessions/{session_id}/fs/{path}`: the session's files over HTTP, and the actions on them at
`.../fs/_/{stat,copy,move,grep}` (upstream Everruns' routes: a path whose first name is `_` is theirs)."""

from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from everruns.api.fields import StrictSerializer
from everruns.api.pagination import envelope, page_parameters, page_params
from everruns.api.views import errors, validated
from everruns.core.errors import ValidationError
from sessions import selectors
from sessions.fs import files

FILE_FIELDS = {
    "id": serializers.UUIDField(allow_null=True, help_text="null for the root directory"),
    "session_id": serializers.UUIDField(),
    "path": serializers.CharField(),
    "name": serializers.CharField(),
    "is_directory": serializers.BooleanField(),
    "is_readonly": serializers.BooleanField(),
    "size_bytes": serializers.IntegerField(),
    "created_at": serializers.CharField(allow_null=True),
    "updated_at": serializers.CharField(allow_null=True),
}
FILE_INFO_SCHEMA = inline_serializer(name="SessionFileInfo", fields=FILE_FIELDS)
FILE_SCHEMA = inline_serializer(
    name="SessionFile",
    fields={
        **FILE_FIELDS,
        "content": serializers.CharField(required=False, help_text="A file's content (not a directory's)."),
        "encoding": serializers.ChoiceField(choices=["text", "base64"], required=False),
    },
)
LISTING_SCHEMA = inline_serializer(
    name="SessionFileList",
    fields={
        "items": FILE_INFO_SCHEMA.__class__(many=True),
        "data": FILE_INFO_SCHEMA.__class__(many=True, help_text="The same array as `items`."),
        "total": serializers.IntegerField(),
        "limit": serializers.IntegerField(),
        "offset": serializers.IntegerField(),
    },
)
GREP_SCHEMA = inline_serializer(
    name="SessionFileGrep",
    fields={
        "data": inline_serializer(
            name="SessionFileGrepMatch",
            fields={
                "path": serializers.CharField(),
                "line_number": serializers.IntegerField(),
                "line": serializers.CharField(),
            },
            many=True,
        )
    },
)
DELETED_SCHEMA = inline_serializer(name="SessionFileDeleted", fields={"deleted": serializers.BooleanField()})
GET_RESPONSE = PolymorphicProxySerializer(
    component_name="SessionFileOrList", serializers=[FILE_SCHEMA, LISTING_SCHEMA], resource_type_field_name=None
)


class FileCreateSerializer(StrictSerializer):
    content = serializers.CharField(allow_blank=True, required=False, trim_whitespace=False, allow_null=True)
    encoding = serializers.ChoiceField(choices=["text", "base64"], default="text")
    is_directory = serializers.BooleanField(default=False)
    is_readonly = serializers.BooleanField(default=False)


class FileUpdateSerializer(StrictSerializer):
    content = serializers.CharField(allow_blank=True, trim_whitespace=False, required=False)
    encoding = serializers.ChoiceField(choices=["text", "base64"], default="text")
    is_readonly = serializers.BooleanField(required=False)


class StatSerializer(StrictSerializer):
    path = serializers.CharField(trim_whitespace=False)


class TransferSerializer(StrictSerializer):
    """`{src, dst}`; upstream Everruns names them `src_path` and `dst_path`, which are taken as well."""

    src = serializers.CharField(trim_whitespace=False, required=False)
    dst = serializers.CharField(trim_whitespace=False, required=False)
    src_path = serializers.CharField(trim_whitespace=False, required=False, help_text="The same as `src`.")
    dst_path = serializers.CharField(trim_whitespace=False, required=False, help_text="The same as `dst`.")

    def validate(self, attrs):
        missing = {
            name: ["This field is required."]
            for name in ("src", "dst")
            if not attrs.get(name, attrs.get(f"{name}_path"))
        }
        if missing:
            raise serializers.ValidationError(missing)
        return {"src": attrs.get("src", attrs.get("src_path")), "dst": attrs.get("dst", attrs.get("dst_path"))}


class GrepSerializer(StrictSerializer):
    pattern = serializers.CharField(trim_whitespace=False)
    path = serializers.CharField(trim_whitespace=False, default="/")


def _flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


def _not_reserved(path: str) -> None:
    if files.normalize(path).split("/")[1:2] == ["_"]:
        raise ValidationError(
            "Invalid path", details={"path": ["'/_' is reserved for the file actions (.../fs/_/stat)."]}
        )


# One file or directory, named by its path. `.../fs` and `.../fs/` are the root directory.
class SessionFileViewSet(viewsets.ViewSet):
    def _session(self, agent_id, session_id):
        return selectors.session_get(agent_id=agent_id, session_id=session_id)

    @extend_schema(
        operation_id="session_files_get",
        parameters=[
            *page_parameters(),
            OpenApiParameter("recursive", bool, description="A directory: everything below it, not only its entries."),
        ],
        description="A file with its content, or a directory's entries as a list (`limit`, `offset`, `recursive`).",
        responses={200: GET_RESPONSE, **errors(400, 404, 409)},
    )
    def retrieve(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        found = files.get(session.pk, path)
        if found is None or found.is_directory:
            limit, offset = page_params(request)
            entries, total = files.children(
                session.pk, path, limit=limit, offset=offset, recursive=_flag(request, "recursive")
            )
            items = [files.describe(f) for f in entries]
            return Response(envelope(items, total=total, limit=limit, offset=offset))
        return Response(files.describe(found, with_content=True))

    @extend_schema(
        operation_id="session_files_create",
        request=FileCreateSerializer,
        responses={201: FILE_SCHEMA, **errors(400, 404, 409, 413, 415)},
    )
    def create(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        data = validated(FileCreateSerializer, request.data)
        _not_reserved(path)
        created = files.create(session.pk, path, **data)
        return Response(files.describe(created, with_content=True), status=201)

    @extend_schema(
        operation_id="session_files_update",
        request=FileUpdateSerializer,
        description="New content, a new `is_readonly`, or both. A read-only file's content is refused (403).",
        responses={200: FILE_SCHEMA, **errors(400, 403, 404, 409, 413, 415)},
    )
    def update(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        data = validated(FileUpdateSerializer, request.data)
        return Response(files.describe(files.update(session.pk, path, **data), with_content=True))

    @extend_schema(
        operation_id="session_files_delete",
        parameters=[OpenApiParameter("recursive", bool, description="Needed for a non-empty directory (else 400).")],
        responses={200: DELETED_SCHEMA, **errors(400, 404, 409)},
    )
    def destroy(self, request, agent_id, session_id, path="/"):
        session = self._session(agent_id, session_id)
        files.delete(session.pk, path, recursive=_flag(request, "recursive"))
        return Response({"deleted": True})

    @extend_schema(
        operation_id="session_files_stat",
        request=StatSerializer,
        description="A file's or directory's metadata (no content).",
        responses={200: FILE_INFO_SCHEMA, **errors(400, 404, 415)},
    )
    def stat(self, request, agent_id, session_id):
        session = self._session(agent_id, session_id)
        path = validated(StatSerializer, request.data)["path"]
        return Response(files.describe(files.get(session.pk, path), session_id=session.pk))

    @extend_schema(
        operation_id="session_files_copy",
        request=TransferSerializer,
        description="Copies a file to `dst` (parents are created; a directory cannot be copied).",
        responses={201: FILE_SCHEMA, **errors(400, 404, 409, 413, 415)},
    )
    def copy(self, request, agent_id, session_id):
        session = self._session(agent_id, session_id)
        data = validated(TransferSerializer, request.data)
        _not_reserved(data["dst"])
        return Response(files.describe(files.copy(session.pk, **data), with_content=True), status=201)

    @extend_schema(
        operation_id="session_files_move",
        request=TransferSerializer,
        description="Moves (renames) a file, or a directory with everything below it, to `dst`.",
        responses={200: FILE_INFO_SCHEMA, **errors(400, 404, 409, 413, 415)},
    )
    def move(self, request, agent_id, session_id):
        session = self._session(agent_id, session_id)
        data = validated(TransferSerializer, request.data)
        _not_reserved(data["dst"])
        return Response(files.describe(files.move(session.pk, **data)))

    @extend_schema(
        operation_id="session_files_grep",
        request=GrepSerializer,
        description="Lines matching `pattern` (RE2 syntax) in the files at or below `path` (default: all).",
        responses={200: GREP_SCHEMA, **errors(400, 404, 415)},
    )
    def grep(self, request, agent_id, session_id):
        session = self._session(agent_id, session_id)
        data = validated(GrepSerializer, request.data)
        return Response({"data": files.grep(session.pk, data["pattern"], data["path"])})
