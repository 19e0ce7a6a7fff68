"""A model's profile (context window, output limit, tool and vision support, prices) from litellm's model map.

The web process must not import litellm (about 5 s and 200 MB, and it may fetch a price list at import): only
workers do (runner/llm/). litellm ships the same map as a JSON file inside its package,
`model_prices_and_context_window_backup.json`; this module finds the package with `importlib.util.find_spec`,
which locates a top-level package without importing it, reads that file once per process and keeps only the
fields a profile shows (a few hundred kB instead of the whole map).
"""

import functools
import importlib.util
import json
import logging
import re
from pathlib import Path

MAP_FILE = "model_prices_and_context_window_backup.json"
# A dated or "latest" suffix names a release of a model, not another model: gpt-4o-2024-08-06 is of gpt-4o.
RELEASE_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-latest)$")

logger = logging.getLogger(__name__)


def _map_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / MAP_FILE


def _entry(name: str, raw: dict) -> dict:
    return {
        "name": name,
        "family": RELEASE_SUFFIX.sub("", name.rsplit("/", 1)[-1]),
        "context_window": raw.get("max_input_tokens") or raw.get("max_tokens"),
        "max_output_tokens": raw.get("max_output_tokens"),
        "tool_call": bool(raw.get("supports_function_calling")),
        "vision": bool(raw.get("supports_vision")),
        "input_cost_per_token": raw.get("input_cost_per_token"),
        "output_cost_per_token": raw.get("output_cost_per_token"),
    }


@functools.cache
def model_map() -> dict[str, dict]:
    """litellm's model map as profiles, by litellm's model name; {} when litellm (or its file) is missing."""
    path = _map_path()
    try:
        raw = json.loads(path.read_bytes()) if path else {}
    except (OSError, ValueError) as exc:
        logger.warning("litellm's model map could not be read (%s): models have no profile", exc)
        raw = {}
    return {
        name: _entry(name, entry)
        for name, entry in raw.items()
        if isinstance(entry, dict) and name != "sample_spec" and entry.get("mode", "chat") == "chat"
    }


def profile(model_id: str, *, provider_type: str) -> dict | None:
    """The profile of `model_id` as `provider_type` serves it: litellm's `<provider>/<model>` entry, else its
    bare `<model>` entry; None for a model the map does not know."""
    known = model_map()
    return known.get(f"{provider_type}/{model_id}") or known.get(model_id)
