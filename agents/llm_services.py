"""LLM providers and models: create, change, delete; keys are encrypted before they are stored."""

from django.db import transaction

from agents import secrets
from agents.models import LlmModel, LlmProvider
from everruns.core.errors import Conflict, ValidationError
from everruns.services import full_clean, instance_update

PROVIDER_FIELDS = ["name", "provider_type", "base_url", "api_key_encrypted", "settings", "status", "is_default"]
MODEL_FIELDS = ["model_id", "display_name", "is_default", "status", "capabilities", "settings"]


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


def provider_create(
    *,
    name,
    provider_type,
    base_url=None,
    api_key=None,
    settings=None,
    status=LlmProvider.Status.ACTIVE,
    is_default=False,
):
    provider = LlmProvider(
        name=name,
        provider_type=provider_type,
        base_url=base_url,
        settings=settings or {},
        status=status,
        is_default=is_default,
    )
    full_clean(provider)
    provider.api_key_encrypted = _encrypted(api_key)
    with transaction.atomic():
        _save_provider(provider, provider.save, is_default=provider.is_default)
    return provider


def _save_provider(provider: LlmProvider, save, *, is_default: bool) -> None:
    """Save a provider with `save()` (inside a transaction). There is one default provider: the one saved as
    the default takes it from the old one, and the global default model moves to its oldest active model unless
    one of its models has it already."""
    if is_default:
        LlmProvider.objects.filter(is_default=True).exclude(pk=provider.pk).update(is_default=False)
    save()
    if is_default and not provider.models.filter(is_default=True).exists():
        model = provider.models.filter(status=LlmModel.Status.ACTIVE).order_by("id").first()
        if model is not None:
            LlmModel.objects.filter(is_default=True).update(is_default=False)
            model.is_default = True
            model.save(update_fields=["is_default", "updated_at"])


def _endpoint(provider_type: str, base_url: str | None) -> tuple[str, str | None]:
    """What a provider's key is given for. When it changes (a new base_url or type), the stored key must not
    follow it there: it is removed, unless a new key comes in the same change."""
    return provider_type, base_url or None


def provider_update(*, provider: LlmProvider, data: dict) -> LlmProvider:
    data = dict(data)
    if "settings" in data and data["settings"] is None:
        data["settings"] = {}
    if "api_key" in data:
        data["api_key_encrypted"] = _encrypted(data.pop("api_key"))
    elif _endpoint(provider.provider_type, provider.base_url) != _endpoint(
        data.get("provider_type", provider.provider_type), data.get("base_url", provider.base_url)
    ):
        data["api_key_encrypted"] = ""
    with transaction.atomic():
        _save_provider(
            provider,
            lambda: instance_update(provider, fields=PROVIDER_FIELDS, data=data),
            is_default=data.get("is_default", provider.is_default),
        )
    return provider


def provider_save(*, provider: LlmProvider, api_key: str = "", clear_key: bool = False) -> LlmProvider:
    """Save a provider as edited (the admin's form, which has run the model's rules). A new key is encrypted;
    without one, clearing it, or a new base_url or type (as in provider_update), removes the stored key."""
    stored = LlmProvider.objects.filter(pk=provider.pk).values_list("provider_type", "base_url").first()
    if api_key:
        provider.api_key_encrypted = _encrypted(api_key)
    elif clear_key or (stored and _endpoint(*stored) != _endpoint(provider.provider_type, provider.base_url)):
        provider.api_key_encrypted = ""
    with transaction.atomic():
        _save_provider(provider, provider.save, is_default=provider.is_default)
    return provider


def provider_delete(*, provider: LlmProvider) -> None:
    if provider.models.filter(is_default=True).exists():
        raise Conflict("This provider has the global default model; make another model the default first")
    provider.delete()


def _take_default(model: LlmModel) -> None:
    """There is one global default: the model about to be saved as the default takes it from the old one. A
    default provider other than the model's hands the provider default on to the model's provider, so that the
    global default stays one of the default provider's models."""
    LlmModel.objects.filter(is_default=True).exclude(pk=model.pk).update(is_default=False)
    if LlmProvider.objects.filter(is_default=True).exclude(pk=model.provider_id).update(is_default=False):
        LlmProvider.objects.filter(pk=model.provider_id).update(is_default=True)


def model_save(*, model: LlmModel) -> LlmModel:
    """Save a model as it is (the admin's forms); ticking `is_default` moves the default to it."""
    with transaction.atomic():
        if model.is_default:
            _take_default(model)
        model.save()
    return model


def model_create(
    *,
    provider: LlmProvider,
    model_id,
    display_name="",
    is_default=None,
    status=LlmModel.Status.ACTIVE,
    capabilities=(),
    settings=None,
):
    """`is_default` not given: the first model of the default provider takes the global default (the default
    provider's models hold it whenever it has any)."""
    with transaction.atomic():
        if LlmModel.objects.filter(provider=provider, model_id=model_id).exists():
            raise Conflict(f"Provider already has a model {model_id}")
        if is_default is None:
            is_default = provider.is_default and not provider.models.filter(is_default=True).exists()
        model = LlmModel(
            provider=provider,
            model_id=model_id,
            display_name=display_name or "",
            is_default=is_default,
            status=status,
            capabilities=list(capabilities),
            settings=settings or {},
        )
        full_clean(model)
        return model_save(model=model)


def model_update(*, model: LlmModel, data: dict) -> LlmModel:
    with transaction.atomic():
        if data.get("is_default") is False and model.is_default:
            raise Conflict(LlmModel.DEFAULT_REQUIRED)
        model_id = data.get("model_id", model.model_id)
        if LlmModel.objects.filter(provider=model.provider, model_id=model_id).exclude(pk=model.pk).exists():
            raise Conflict(f"Provider already has a model {model_id}")
        if data.get("is_default"):
            _take_default(model)
        if data.get("display_name", "") is None:
            data = {**data, "display_name": ""}
        if "settings" in data and data["settings"] is None:
            data = {**data, "settings": {}}
        instance_update(model, fields=MODEL_FIELDS, data=data)
        return model


def model_delete(*, model: LlmModel) -> None:
    if model.is_default:
        raise Conflict("This is the global default model; make another model the default first")
    model.delete()
