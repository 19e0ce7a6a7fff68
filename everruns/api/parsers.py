"""Request body parsers every view shares, and the JSON depth bound every JSON body meets (the chat routes
served before Django, sessions/chat/sse.py, check theirs with the same function)."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class NestedTooDeeply(ValueError):
    def __init__(self):
        super().__init__(f"nested too deeply: at most {settings.JSON_MAX_DEPTH} levels of arrays and objects")


def check_depth(value):
    """The parsed JSON `value`, or NestedTooDeeply past JSON_MAX_DEPTH levels of arrays and objects. Values that
    deep passed Python's parser (up to ~940 levels) and then failed deeper code (a RecursionError encoding the
    row: a 500); no body has a use for them. Iterative, so any depth is checked in linear time."""
    limit = settings.JSON_MAX_DEPTH
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth > limit:
            raise NestedTooDeeply
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, where JSON nested more than JSON_MAX_DEPTH levels (or more than Python's parser can
    nest) is a malformed body, a 400."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return check_depth(super().parse(stream, media_type, parser_context))
        except (RecursionError, NestedTooDeeply):
            raise ParseError(f"JSON parse error - {NestedTooDeeply()}") from None
