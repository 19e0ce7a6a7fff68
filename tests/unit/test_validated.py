"""`validated`: the request body through an input serializer, with the empty body's shortcut."""

import pytest
from django.http import QueryDict
from rest_framework import serializers

from everruns.api.views import validated
from everruns.core.errors import ValidationError


class Counted(serializers.Serializer):
    """Counts its instances: how many times `validated` built one."""

    made = 0

    def __init__(self, *args, **kwargs):
        type(self).made += 1
        super().__init__(*args, **kwargs)


class Optional(Counted):
    title = serializers.CharField(required=False)


class Required(serializers.Serializer):
    title = serializers.CharField()


class Defaulted(Counted):
    tags = serializers.ListField(default=list)


def test_an_empty_body_of_an_all_optional_serializer_is_validated_once_then_taken_as_is():
    assert validated(Optional, {}) == {} and validated(Optional, {}) == {}
    assert Optional.made == 1
    assert validated(Optional, {"title": "x"}) == {"title": "x"} and Optional.made == 2


def test_an_empty_body_still_fails_where_a_field_is_required_every_time():
    for _ in range(2):
        with pytest.raises(serializers.ValidationError):
            validated(Required, {})


def test_a_serializer_with_defaults_builds_them_for_every_empty_body():
    first, second = validated(Defaulted, {}), validated(Defaulted, {})
    assert first == second == {"tags": []} and first["tags"] is not second["tags"] and Defaulted.made == 2


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(ValidationError):
        validated(Optional, [])


def test_no_body_at_all_is_an_empty_object():
    """DRF's `request.data` is an empty QueryDict when a request has no body."""
    assert validated(Optional, QueryDict()) == {}
    with pytest.raises(serializers.ValidationError):
        validated(Required, QueryDict())
