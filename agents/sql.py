"""The agents app's written-out SQL, behind functions with keyword filters (see sessions/sql.py for why): the
reads every turn step makes. The ORM models stay the schema and the source of the column lists
(everruns/core/rows.py)."""

from agents.models import LlmModel
from everruns.core import rows


def model_with_provider(*, model_id) -> LlmModel | None:
    return rows.by_pk(LlmModel, model_id, related="provider")


def default_model_with_provider() -> LlmModel | None:
    """The global default model (the newest one marked default, as LlmModel.Meta.ordering has it)."""
    table = LlmModel._meta.db_table
    found = rows.fetch(
        LlmModel, f'"{table}"."is_default"', [], related="provider", tail=f'ORDER BY "{table}"."id" DESC LIMIT 1'
    )
    return found[0] if found else None
