"""Service helpers every app shares."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from everruns.core.errors import ValidationError


def full_clean(instance: models.Model) -> None:
    """The model's own rules (field limits, `clean()`), which the admin's forms apply too, as our 400."""
    try:
        instance.full_clean()
    except DjangoValidationError as exc:
        raise ValidationError("Invalid request", details=exc.message_dict) from None


def instance_update(instance: models.Model, *, fields: Iterable[str], data: dict) -> bool:
    """A partial update (after HackSoft's `model_update`): set each of `fields` that `data` holds and that
    differs from the instance, check the model's rules, save only those fields (and `auto_now` ones such as
    `updated_at`), and return whether anything changed. Data that changes nothing writes nothing."""
    changed = [name for name in fields if name in data and getattr(instance, name) != data[name]]
    if not changed:
        return False
    for name in changed:
        setattr(instance, name, data[name])
    full_clean(instance)
    auto_now = [f.name for f in instance._meta.concrete_fields if getattr(f, "auto_now", False)]
    instance.save(update_fields=[*changed, *auto_now])
    return True
