from agents.models import Agent
from everruns.core.errors import NotFound
from everruns.services import instance_update

AGENT_FIELDS = [
    "name",
    "system_prompt",
    "description",
    "tags",
    "capabilities",
    "default_model_id",
    "max_iterations",
    "tool_policy",
    "limits",
    "status",
]


def agent_create(
    *,
    name: str,
    system_prompt: str,
    description: str | None = None,
    tags: list | None = None,
    capabilities: list | None = None,
    default_model_id=None,
    max_iterations: int | None = None,
    tool_policy: dict | None = None,
    limits: dict | None = None,
    status: str = Agent.Status.ACTIVE,
) -> Agent:
    return Agent.objects.create(
        name=name,
        system_prompt=system_prompt,
        description=description,
        tags=tags or [],
        capabilities=capabilities or [],
        default_model_id=default_model_id,
        max_iterations=max_iterations,
        tool_policy=tool_policy or {},
        limits=limits or {},
        status=status,
    )


def agent_update(*, agent: Agent, data: dict) -> Agent:
    instance_update(agent, fields=AGENT_FIELDS, data=data)
    return agent


def agent_archive(*, agent: Agent) -> None:
    updated = Agent.objects.filter(pk=agent.pk, status=Agent.Status.ACTIVE).update(status=Agent.Status.ARCHIVED)
    if not updated:
        raise NotFound("Agent not found")
