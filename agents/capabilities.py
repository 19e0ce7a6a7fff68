"""The catalogue of capability ids that agents may name.

The runner owns the capabilities and fills this catalogue when it loads (runner.apps), so that
`agents` can validate ids without importing `runner`.
"""

_catalogue: dict[str, dict] = {}


def register(capability_id: str, info: dict) -> None:
    _catalogue[capability_id] = info


def known_ids() -> set[str]:
    return set(_catalogue)


def all_info() -> list[dict]:
    return list(_catalogue.values())


def get_info(capability_id: str) -> dict | None:
    return _catalogue.get(capability_id)
