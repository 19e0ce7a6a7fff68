"""Request body parsers every view shares, and the JSON depth bound every JSON body meets (the chat routes
served before Django, sessions/chat/sse.py, check theirs with the same function)."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class UnstorableJson(ValueError):
    """A JSON body PostgreSQL could not store or we refuse to walk: the reason is the message."""


def nested_too_deeply() -> UnstorableJson:
    return UnstorableJson(f"nested too deeply: at most {settings.JSON_MAX_DEPTH} levels of arrays and objects")


NUL_IN_STRING = "a string holds NUL (\\u0000), which PostgreSQL cannot store"


def check_json(value):
    """The parsed JSON `value`, or UnstorableJson:
    - past JSON_MAX_DEPTH levels of arrays and objects. Values that deep passed Python's parser (up to ~940 levels)
      and then failed deeper code (a RecursionError encoding the row: a 500); no body has a use for them.
    - with NUL in a string or an object's key: PostgreSQL's text and jsonb cannot hold it, so the write failed with
      a 500 (DRF's string fields refuse it, but not the keys and values of a free-form object).
    Iterative, so any depth is checked in linear time."""
    limit = settings.JSON_MAX_DEPTH
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise UnstorableJson(NUL_IN_STRING)
            continue
        if isinstance(item, dict):
            if any("\x00" in key for key in item):
                raise UnstorableJson(NUL_IN_STRING)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if children and depth > limit:
            raise nested_too_deeply()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, str)))
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, where JSON nested more than JSON_MAX_DEPTH levels (or more than Python's parser can
    nest), or with NUL in a string, is a malformed body, a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return check_json(super().parse(stream, media_type, parser_context))
        except RecursionError:
            raise ParseError(f"JSON parse error - {nested_too_deeply()}") from None
        except UnstorableJson as refused:
            raise ParseError(f"JSON parse error - {refused}") from None
