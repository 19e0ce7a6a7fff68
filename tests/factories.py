from agents import services as agent_services
from agents.models import LlmModel, LlmProvider
from sessions import services as session_services


def make_agent(**overrides):
    data = {"name": "Test agent", "system_prompt": "You are a test agent."}
    data.update(overrides)
    return agent_services.agent_create(**data)


def make_session(agent=None, **overrides):
    return session_services.session_create(agent=agent or make_agent(), **overrides)


def make_model(
    provider_type="llmsim", model_id="llmsim-extra", settings=None, base_url=None, model_settings=None, **extra
):
    """`settings`: the provider's; `model_settings`: the model's own (e.g. {"context_window": 2000})."""
    provider = LlmProvider.objects.create(
        name=f"{provider_type} test", provider_type=provider_type, settings=settings or {}, base_url=base_url
    )
    return LlmModel.objects.create(
        provider=provider, model_id=model_id, display_name=model_id, settings=model_settings or {}, **extra
    )


def text(value: str) -> dict:
    return {"message": {"role": "user", "content": [{"type": "text", "text": value}]}}
