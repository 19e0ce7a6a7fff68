"""Which model a turn uses: message controls -> session -> agent -> the global default."""

import os
from dataclasses import dataclass, field

from django.conf import settings

from agents import provider_types, secrets
from agents.models import LlmModel, LlmProvider
from runner.errors import TurnError, TurnErrorCode


class ModelUnavailable(TurnError):
    """The turn has no model it can call."""


@dataclass
class ResolvedModel:
    litellm_model: str  # e.g. "llmsim/llmsim-1", "openai/gpt-4o-mini"
    display: str
    provider_type: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    settings: dict = field(default_factory=dict)


def _api_key(provider: LlmProvider) -> str | None:
    if provider.api_key_encrypted:
        try:
            return secrets.decrypt(provider.api_key_encrypted)
        except (secrets.SecretUnreadable, secrets.SecretsNotConfigured) as exc:
            raise ModelUnavailable(TurnErrorCode.PROVIDER_KEY_UNREADABLE, f"Provider {provider.name}: {exc}") from None
    if provider.provider_type == "openai_compatible":
        return "not-needed"  # local servers usually take no key, but the client insists on one
    env = provider_types.KEY_ENV.get(provider.provider_type)
    if env and not os.environ.get(env):
        raise ModelUnavailable(
            TurnErrorCode.PROVIDER_KEY_MISSING, f"Provider {provider.name} has no API key (store one, or set {env})"
        )
    return None  # litellm finds it in the environment


def to_litellm(model: LlmModel) -> ResolvedModel:
    provider: LlmProvider = model.provider
    if model.status != LlmModel.Status.ACTIVE:
        raise ModelUnavailable(TurnErrorCode.MODEL_DISABLED, f"Model {model.model_id} is disabled")
    if provider.status != LlmProvider.Status.ACTIVE:
        raise ModelUnavailable(TurnErrorCode.PROVIDER_DISABLED, f"Provider {provider.name} is disabled")
    prefix = "openai" if provider.provider_type == "openai_compatible" else provider.provider_type
    return ResolvedModel(
        litellm_model=f"{prefix}/{model.model_id}",
        display=model.model_id,
        provider_type=provider.provider_type,
        api_base=provider.base_url or None,
        api_key=_api_key(provider),
        settings=dict(provider.settings or {}),
    )


def resolve(*, controls_model_id=None, session_model_id=None, agent_model_id=None) -> ResolvedModel:
    for model_id in (controls_model_id, session_model_id, agent_model_id):
        if model_id:
            model = LlmModel.objects.select_related("provider").filter(pk=model_id).first()
            if model is None:
                raise ModelUnavailable(TurnErrorCode.MODEL_NOT_FOUND, f"Model {model_id} does not exist")
            return to_litellm(model)
    if settings.EVERRUNS_DEFAULT_MODEL:
        name = settings.EVERRUNS_DEFAULT_MODEL
        return ResolvedModel(litellm_model=name, display=name, provider_type=name.split("/", 1)[0])
    model = LlmModel.objects.select_related("provider").filter(is_default=True).first()
    if model is None:
        raise ModelUnavailable(TurnErrorCode.NO_DEFAULT_MODEL, "No model chosen and no default model configured")
    return to_litellm(model)
