"""Which model a turn uses: message controls -> session -> agent -> the global default."""

import os
from dataclasses import dataclass, field

from django.conf import settings

from agents import provider_types, secrets, sql
from agents.models import LlmModel, LlmProvider, endpoint_refusal
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
    settings: dict = field(default_factory=dict)  # the provider's
    context_window: int | None = None  # the model's own setting, which wins over litellm's model map


# The key sent when a provider with its own base_url has none stored: local servers usually take no key, but
# the client insists on one, and given one, litellm never looks for a key in the environment.
NO_KEY = "not-needed"


def _api_key(provider: LlmProvider) -> str | None:
    """The stored key; else a key from the environment, but only for the provider type's official endpoint
    (a key the operator set for OpenAI never goes to a base_url that a user of the API chose)."""
    if provider.api_key_encrypted:
        try:
            return secrets.decrypt(provider.api_key_encrypted)
        except (secrets.SecretUnreadable, secrets.SecretsNotConfigured) as exc:
            raise ModelUnavailable(TurnErrorCode.PROVIDER_KEY_UNREADABLE, f"Provider {provider.name}: {exc}") from None
    official = provider_types.is_official_endpoint(provider.provider_type, provider.base_url)
    env = provider_types.KEY_ENV.get(provider.provider_type)
    if env and not official:
        raise ModelUnavailable(
            TurnErrorCode.PROVIDER_KEY_MISSING,
            f"Provider {provider.name} has no API key stored; {env} is used only with its official endpoint, "
            f"not {provider.base_url}",
        )
    if env:
        key = os.environ.get(env)
        if not key:
            raise ModelUnavailable(
                TurnErrorCode.PROVIDER_KEY_MISSING, f"Provider {provider.name} has no API key (store one, or set {env})"
            )
        secrets.remember(key)
        return key
    if not official:
        return NO_KEY
    return None  # a type without a base_url: litellm's own defaults (e.g. a local Ollama, cloud credentials)


def _check_base_url(provider: LlmProvider) -> None:
    """The save-time address rule once more, right before the call, for a clear refusal before anything is sent.
    The connection itself is guarded too (runner/llm/transport.py: litellm's transports connect only to checked
    addresses), so a name re-pointed after this check reaches nothing either."""
    if refusal := endpoint_refusal(provider.provider_type, provider.base_url):
        raise ModelUnavailable(TurnErrorCode.LLM_CONNECTION_ERROR, f"Provider {provider.name}: {refusal}")


def to_litellm(model: LlmModel) -> ResolvedModel:
    provider: LlmProvider = model.provider
    if model.status != LlmModel.Status.ACTIVE:
        raise ModelUnavailable(TurnErrorCode.MODEL_DISABLED, f"Model {model.model_id} is disabled")
    if provider.status != LlmProvider.Status.ACTIVE:
        raise ModelUnavailable(TurnErrorCode.PROVIDER_DISABLED, f"Provider {provider.name} is disabled")
    _check_base_url(provider)
    api_key = _api_key(provider)
    prefix = "openai" if provider.provider_type == "openai_compatible" else provider.provider_type
    return ResolvedModel(
        litellm_model=f"{prefix}/{model.model_id}",
        display=model.model_id,
        provider_type=provider.provider_type,
        api_base=provider.base_url or None,
        api_key=api_key,
        # Bounded when saved; clamped here too, for rows saved before the bounds.
        settings=provider_types.clamped_settings(provider.settings),
        context_window=_context_window(model),
    )


def _context_window(model: LlmModel) -> int | None:
    value = (model.settings or {}).get("context_window")
    return value if not provider_types.model_settings_errors({"context_window": value}) and value else None


def resolve(*, controls_model_id=None, session_model_id=None, agent_model_id=None) -> ResolvedModel:
    for model_id in (controls_model_id, session_model_id, agent_model_id):
        if model_id:
            # Written out (everruns/core/rows.py): every step of a turn resolves its model.
            model = sql.model_with_provider(model_id=model_id)
            if model is None:
                raise ModelUnavailable(TurnErrorCode.MODEL_NOT_FOUND, f"Model {model_id} does not exist")
            return to_litellm(model)
    if settings.EVERRUNS_DEFAULT_MODEL:
        secrets.remember_environment_keys()  # litellm takes the key from the environment
        name = settings.EVERRUNS_DEFAULT_MODEL
        return ResolvedModel(litellm_model=name, display=name, provider_type=name.split("/", 1)[0])
    model = sql.default_model_with_provider()
    if model is None:
        raise ModelUnavailable(TurnErrorCode.NO_DEFAULT_MODEL, "No model chosen and no default model configured")
    return to_litellm(model)
