"""LLM providers and models: create, change, delete; keys are encrypted before they are stored."""

from django.db import transaction

from agents import secrets
from agents.models import LlmModel, LlmProvider
from everruns.errors import Conflict, ValidationError


def _encrypted(api_key: str | None) -> str:
    if not api_key:
        return ""
    try:
        return secrets.encrypt(api_key)
    except secrets.SecretsNotConfigured:
        raise ValidationError(
            "Cannot store an API key: SECRETS_ENCRYPTION_KEY is not configured",
            details={"api_key": ["The server has no encryption key configured; nothing was stored."]},
        ) from None


def _check_base_url(provider_type: str, base_url: str | None) -> None:
    if provider_type == "openai_compatible" and not base_url:
        raise ValidationError("base_url is required", details={"base_url": ["Required for openai_compatible."]})


def provider_create(
    *, name, provider_type, base_url=None, api_key=None, settings=None, status=LlmProvider.Status.ACTIVE
):
    _check_base_url(provider_type, base_url)
    return LlmProvider.objects.create(
        name=name,
        provider_type=provider_type,
        base_url=base_url,
        api_key_encrypted=_encrypted(api_key),
        settings=settings or {},
        status=status,
    )


def provider_update(*, provider: LlmProvider, data: dict) -> LlmProvider:
    fields = []
    for key in ("name", "provider_type", "base_url", "settings", "status"):
        if key in data:
            setattr(provider, key, data[key] if data[key] is not None or key == "base_url" else {})
            fields.append(key)
    if "api_key" in data:
        provider.api_key_encrypted = _encrypted(data["api_key"])
        fields.append("api_key_encrypted")
    _check_base_url(provider.provider_type, provider.base_url)
    if fields:
        provider.save(update_fields=fields + ["updated_at"])
    return provider


def provider_delete(*, provider: LlmProvider) -> None:
    if provider.models.filter(is_default=True).exists():
        raise Conflict("This provider has the global default model; make another model the default first")
    provider.delete()


def _make_default(model: LlmModel) -> None:
    LlmModel.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)


def model_create(*, provider: LlmProvider, model_id, display_name="", is_default=False, status=LlmModel.Status.ACTIVE):
    with transaction.atomic():
        if LlmModel.objects.filter(provider=provider, model_id=model_id).exists():
            raise Conflict(f"Provider already has a model {model_id}")
        model = LlmModel(provider=provider, model_id=model_id, display_name=display_name or "", status=status)
        if is_default:
            LlmModel.objects.filter(is_default=True).update(is_default=False)
            model.is_default = True
        model.save()
        return model


def model_update(*, model: LlmModel, data: dict) -> LlmModel:
    with transaction.atomic():
        if data.get("is_default") is False and model.is_default:
            raise Conflict("There must be a default model; make another model the default instead")
        for key in ("model_id", "display_name", "status"):
            if key in data:
                setattr(model, key, data[key] if data[key] is not None else "")
        if data.get("is_default"):
            _make_default(model)
            model.is_default = True
        if LlmModel.objects.filter(provider=model.provider, model_id=model.model_id).exclude(pk=model.pk).exists():
            raise Conflict(f"Provider already has a model {model.model_id}")
        model.save()
        return model


def model_delete(*, model: LlmModel) -> None:
    if model.is_default:
        raise Conflict("This is the global default model; make another model the default first")
    model.delete()
