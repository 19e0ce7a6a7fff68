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


def _parse_yaml(raw: str) -> dict:
    if len(raw.encode("utf-8")) > MAX_FRONT_MATTER_BYTES:
        raise ValidationError("Invalid agent file", details={"front_matter": ["Must be at most 64 KiB."]})
    try:
        # Aliases could make a small file expand into a huge value: a file has no use for them.
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(raw, Loader=yaml.SafeLoader)):
            raise ValidationError("Invalid agent file", details={"front_matter": ["YAML aliases are not allowed."]})
        front = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValidationError("Invalid agent file", details={"front_matter": [f"Not valid YAML: {exc}"]}) from None
    if front is None:
        return {}
    if not isinstance(front, dict):
        raise ValidationError("Invalid agent file", details={"front_matter": ["Must be a mapping of settings."]})
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
