from agents.models import Agent
from everruns.errors import NotFound

AGENT_FIELDS = {"name", "system_prompt", "description", "tags", "capabilities", "max_iterations", "status"}


def agent_create(
    *,
    name: str,
    system_prompt: str,
    description: str | None = None,
    tags: list | None = None,
    capabilities: list | None = None,
    default_model_id=None,
    max_iterations: int | None = None,
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
        status=status,
    )


def agent_update(*, agent: Agent, data: dict) -> Agent:
    fields = []
    for key, value in data.items():
        if key in AGENT_FIELDS:
            if value is None and key in {"tags", "capabilities"}:
                value = []  # null clears a list
            setattr(agent, key, value)
            fields.append(key)
        elif key == "default_model_id":
            agent.default_model_id = value
            fields.append("default_model")
    if fields:
        agent.save(update_fields=fields + ["updated_at"])
    return agent


def agent_archive(*, agent: Agent) -> None:
    updated = Agent.objects.filter(pk=agent.pk, status=Agent.Status.ACTIVE).update(status=Agent.Status.ARCHIVED)
    if not updated:
        raise NotFound("Agent not found")
