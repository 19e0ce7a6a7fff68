"""Agents as Markdown files: YAML front matter with the agent's settings, its system prompt as the body.

```
---
name: Math tutor
description: Explains arithmetic
tags: [demo]
capabilities: [test_math]
tool_policy: {add: ask}
limits: {}
model: llmsim-1
---
You are a patient math tutor.
```

An import goes through the same validation as `POST /v1/agents` (AgentInputSerializer) and the same service
(`agent_create`). Plain text without front matter is a system prompt, and its first line names the agent.
`model` is a model's `model_id` (the provider's name for it), so a file moves between installations.
"""

import yaml

from agents import services
from agents.models import Agent, LlmModel
from agents.serializers import AgentInputSerializer
from everruns.core.errors import ValidationError

# The front matter's vocabulary, in the order an export writes it. `max_iterations` only when it is set.
FRONT_MATTER_FIELDS = [
    "name",
    "description",
    "tags",
    "capabilities",
    "tool_policy",
    "limits",
    "model",
    "max_iterations",
]
MAX_FRONT_MATTER_BYTES = 64 * 1024
MAX_FRONT_MATTER_DEPTH = 16  # levels of nested lists and mappings
MAX_FRONT_MATTER_NODES = 5000  # values (scalars, lists and mappings) in all
MAX_NAME_LENGTH = 255
DELIMITER = "---"


def agent_fields(agent: Agent) -> dict:
    """What a file carries of an agent (everything but the system prompt), as the front matter names it."""
    model = agent.default_model
    fields = {
        "name": agent.name,
        "description": agent.description,
        "tags": list(agent.tags or []),
        "capabilities": list(agent.capabilities or []),
        "tool_policy": dict(agent.tool_policy or {}),
        "limits": dict(agent.limits or {}),
        "model": model.model_id if model is not None else None,
    }
    if agent.max_iterations is not None:
        fields["max_iterations"] = agent.max_iterations
    return fields


def agent_export(*, agent: Agent) -> str:
    front = yaml.safe_dump(
        agent_fields(agent), sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000
    )
    return f"{DELIMITER}\n{front}{DELIMITER}\n{agent.system_prompt}"


def agent_import(*, text: str) -> Agent:
    """The agent a Markdown file describes, created (ValidationError when the file or a setting is invalid)."""
    if "\x00" in text:  # PostgreSQL text cannot hold NUL: refuse it rather than fail
        raise ValidationError("Invalid agent file", details={"body": ["Must not contain NUL characters."]})
    front, body = split_front_matter(text)
    return agent_create_from(front, system_prompt=body)


def agent_duplicate(*, agent: Agent) -> Agent:
    """A copy of the agent, named "<name> (copy)", through the same validation and service as an import."""
    fields = agent_fields(agent)
    fields["name"] = f"{agent.name[: MAX_NAME_LENGTH - 7]} (copy)"
    fields.pop("model")
    return _create({**fields, "default_model_id": agent.default_model_id}, system_prompt=agent.system_prompt)


def split_front_matter(text: str) -> tuple[dict, str]:
    """(front matter as a dict, body). Without an opening `---` line the whole text is the body."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").rstrip() != DELIMITER:
        return {}, text
    for index, line in enumerate(lines[1:], start=1):
        if line.rstrip("\r\n").rstrip() in (DELIMITER, "..."):
            raw, body = "".join(lines[1:index]), "".join(lines[index + 1 :])
            return _parse_yaml(raw), body
    raise ValidationError(
        "Invalid agent file", details={"front_matter": ["The front matter has no closing '---' line."]}
    )


# PyYAML's pure-Python scanner is super-linear on nested flow collections (40 KB of `[` took minutes), so the
# event check and the load use libyaml (linear) when PyYAML was built with it, as its wheels are.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_COLLECTION_START = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_COLLECTION_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
_JSON_SCALARS = (str, int, float, bool, type(None))


def _invalid_front_matter(problem: str) -> ValidationError:
    return ValidationError("Invalid agent file", details={"front_matter": [problem]})


def _check_shape(raw: str) -> None:
    """Refuse aliases, and more than MAX_FRONT_MATTER_DEPTH levels or MAX_FRONT_MATTER_NODES values, from the
    parser's event stream: it stops at the first excess, before any value is built."""
    depth = nodes = 0
    for event in yaml.parse(raw, Loader=_LOADER):
        if isinstance(event, yaml.AliasEvent):  # a small file could expand into a huge value: a file needs none
            raise _invalid_front_matter("YAML aliases are not allowed.")
        if isinstance(event, _COLLECTION_END):
            depth -= 1
            continue
        if isinstance(event, (yaml.ScalarEvent, *_COLLECTION_START)):
            nodes += 1
            if nodes > MAX_FRONT_MATTER_NODES:
                raise _invalid_front_matter(f"At most {MAX_FRONT_MATTER_NODES} values.")
        if isinstance(event, _COLLECTION_START):
            depth += 1
            if depth > MAX_FRONT_MATTER_DEPTH:
                raise _invalid_front_matter(f"Nested at most {MAX_FRONT_MATTER_DEPTH} levels deep.")


def _json_like(value) -> bool:
    """Only what JSON holds (a YAML date, set or binary has no place in an agent's settings)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, _JSON_SCALARS):
            return False
    return True


def _parse_yaml(raw: str) -> dict:
    if len(raw.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise _invalid_front_matter("Must be at most 64 KiB.")
    try:
        _check_shape(raw)
        front = yaml.load(raw, Loader=_LOADER)  # a safe loader: CSafeLoader or SafeLoader
    except ValidationError:
        raise
    # Every failure of the parser or of a constructor is the file's fault: a YAMLError, and also the ValueError,
    # TypeError, AttributeError or OverflowError a bad `!!int`, `!!timestamp` or date raises, or a RecursionError.
    except Exception as exc:
        detail = str(exc) if isinstance(exc, yaml.YAMLError) else f"{type(exc).__name__}: {exc}"
        raise _invalid_front_matter(f"Not valid YAML: {detail}"[:500]) from None
    if front is None:
        return {}
    if not isinstance(front, dict):
        raise _invalid_front_matter("Must be a mapping of settings.")
    if not _json_like(front):
        raise _invalid_front_matter("Only strings, numbers, booleans, null, lists and mappings with string keys.")
    return front


def agent_create_from(front: dict, *, system_prompt: str) -> Agent:
    """Create the agent a file's front matter and body describe."""
    unknown = sorted(str(key) for key in front if key not in FRONT_MATTER_FIELDS)
    if unknown:
        raise ValidationError("Invalid agent file", details={key: ["Unknown field."] for key in unknown})
    data = dict(front)
    if data.get("name") in (None, ""):
        data["name"] = name_from(system_prompt)
    data["default_model_id"] = _model_id(data.pop("model", None))
    return _create(data, system_prompt=system_prompt)


def name_from(text: str) -> str:
    """The first non-blank line, without Markdown heading marks, cut to the longest name allowed."""
    for line in text.splitlines():
        name = line.strip().lstrip("#").strip()
        if name:
            return name[:MAX_NAME_LENGTH]
    raise ValidationError("Invalid agent file", details={"body": ["The system prompt is empty."]})


def _model_id(name):
    """A model's `model_id` -> its id. Several providers may serve one name: the default model wins, then
    an active one, then the oldest."""
    if name in (None, ""):
        return None
    if not isinstance(name, str):
        raise ValidationError("Invalid agent file", details={"model": ["Must be a model name."]})
    candidates = sorted(
        LlmModel.objects.filter(model_id=name).select_related("provider"),
        key=lambda m: (not m.is_default, m.status != LlmModel.Status.ACTIVE, m.id),
    )
    if not candidates:
        message = f"No model named {name!r}; add it, or remove the line to use the default model."
        raise ValidationError("Invalid agent file", details={"model": [message]})
    return candidates[0].id


def _create(data: dict, *, system_prompt: str) -> Agent:
    data = {**data, "system_prompt": system_prompt}
    for key in ("tool_policy", "limits"):
        if key in data and data[key] is None:  # `tool_policy:` with nothing after it: the default, {}
            data.pop(key)
    serializer = AgentInputSerializer(data=data)
    serializer.is_valid(raise_exception=True)  # a 400 naming each field, as POST /v1/agents gives
    return services.agent_create(**serializer.validated_data)
