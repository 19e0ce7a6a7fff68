from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents import policies
from everruns.api.fields import CheckedObjectField, StrictBooleanField, StrictSerializer, TagsField, limits_schema
from everruns.core.dates import rfc3339
from sessions.log import event_to_dict, message_to_dict
from sessions.models import Event, Message, Session

MAX_TEXT_CHARS = 1024 * 1024
MAX_PARTS = 100


@extend_schema_field(
    limits_schema(policies.SESSION_LIMITS, "Budgets of the whole session; a missing or null key: no limit.")
)
class SessionLimitsField(CheckedObjectField):
    def errors(self, value):
        return policies.limits_errors(value, policies.SESSION_LIMITS)


class SessionInputSerializer(StrictSerializer):
    title = serializers.CharField(max_length=255, allow_blank=True, allow_null=True, required=False)
    tags = TagsField(required=False, allow_null=True)
    model_id = serializers.UUIDField(allow_null=True, required=False)
    limits = SessionLimitsField(required=False)


class UsageSerializer(serializers.Serializer):
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = serializers.FloatField(allow_null=True)


class SessionSerializer(serializers.ModelSerializer):
    agent_id = serializers.UUIDField()
    model_id = serializers.UUIDField(allow_null=True)
    usage = serializers.SerializerMethodField()
    error = serializers.JSONField(allow_null=True)
    limits = SessionLimitsField()

    class Meta:
        model = Session
        fields = [
            "id",
            "agent_id",
            "title",
            "tags",
            "model_id",
            "limits",
            "status",
            "error",
            "usage",
            "created_at",
            "updated_at",
        ]

    def get_usage(self, session) -> UsageSerializer:
        return {
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "cost_usd": session.cost_usd,
        }

    def to_representation(self, session):
        # The fields above document the shape (OpenAPI); the payload is built here directly: DRF builds
        # every field of a ModelSerializer again for each instance, ~10 % of a GET session (py-spy, README).
        return {
            "id": str(session.id),
            "agent_id": str(session.agent_id),
            "title": session.title,
            "tags": session.tags,
            "model_id": str(session.model_id) if session.model_id else None,
            "limits": session.limits or {},
            "status": session.status,
            "error": session.error,
            "usage": self.get_usage(session),
            "created_at": rfc3339(session.created_at),
            "updated_at": rfc3339(session.updated_at),
        }


class ContentPartSerializer(StrictSerializer):
    type = serializers.ChoiceField(choices=["text", "image"])
    text = serializers.CharField(max_length=MAX_TEXT_CHARS, required=False, trim_whitespace=False)
    url = serializers.URLField(max_length=8192, required=False)
    base64 = serializers.CharField(required=False)
    media_type = serializers.RegexField(r"^image/[a-z0-9.+-]+$", required=False)

    def validate(self, part):
        if part["type"] == "text":
            if not part.get("text", "").strip():
                raise serializers.ValidationError({"text": ["A text part needs non-empty text."]})
            extra = set(part) - {"type", "text"}
        else:
            if bool(part.get("url")) == bool(part.get("base64")):
                raise serializers.ValidationError({"url": ["An image part needs exactly one of url or base64."]})
            if part.get("base64") and not part.get("media_type"):
                raise serializers.ValidationError({"media_type": ["Required with base64."]})
            extra = set(part) - {"type", "url", "base64", "media_type"}
        if extra:
            raise serializers.ValidationError({name: [f"Not allowed on a {part['type']} part."] for name in extra})
        return part


class MessageBodySerializer(StrictSerializer):
    role = serializers.ChoiceField(choices=["user"], required=False, default="user")
    content = ContentPartSerializer(many=True, allow_empty=False, max_length=MAX_PARTS)


class ReasoningSerializer(StrictSerializer):
    effort = serializers.ChoiceField(choices=["minimal", "low", "medium", "high"], allow_null=True, required=False)


class ControlsSerializer(StrictSerializer):
    model_id = serializers.UUIDField(allow_null=True, required=False)
    reasoning = ReasoningSerializer(required=False, allow_null=True)
    max_iterations = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True)
    # Posted while a turn runs: abandon its in-flight LLM call and call the model again with this message.
    interrupt = StrictBooleanField(required=False, allow_null=True)


class MessageInputSerializer(StrictSerializer):
    message = MessageBodySerializer()
    controls = ControlsSerializer(required=False, allow_null=True)
    metadata = serializers.DictField(required=False, allow_null=True)


# The fields document the shape (OpenAPI); the values come from sessions.log, the one encoding of a message
# and of an event, which the SSE stream sends too. tests/test_vocabulary.py keeps the fields and the keys equal.
class MessageSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField()

    class Meta:
        model = Message
        fields = ["id", "session_id", "sequence", "role", "content", "controls", "metadata", "created_at"]

    def to_representation(self, instance):
        return message_to_dict(instance)


class EventSerializer(serializers.ModelSerializer):
    session_id = serializers.UUIDField()
    turn_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = Event
        fields = ["id", "sequence", "type", "session_id", "turn_id", "data", "created_at"]

    def to_representation(self, instance):
        return event_to_dict(instance)
