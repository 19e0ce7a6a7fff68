"""Where the deployment is and how to sign in: `--url`/`--api-key`, else `EVERRUNS_URL`/`EVERRUNS_API_KEY`,
else the config file in the user's config directory (`config.toml`: `url = "..."`, `api_key = "..."`)."""

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs

DEFAULT_URL = "http://localhost:9000"
KEYS = ("url", "api_key")


class ConfigError(Exception):
    pass


def config_path() -> Path:
    return Path(platformdirs.user_config_dir("everruns")) / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
    return {k: str(v) for k, v in values.items() if k in KEYS and v not in (None, "")}


def write_config(path: Path, values: dict[str, str]) -> None:
    """A flat TOML file of strings (a JSON string is a valid TOML basic string), readable by its owner only:
    it may hold an API key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{k} = {json.dumps(values[k])}\n" for k in KEYS if values.get(k))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str | None


def resolve(*, url: str | None, api_key: str | None, environ=os.environ, path: Path | None = None) -> Target:
    file = read_config(path or config_path())
    return Target(
        url=url or environ.get("EVERRUNS_URL") or file.get("url") or DEFAULT_URL,
        api_key=api_key or environ.get("EVERRUNS_API_KEY") or file.get("api_key") or None,
    )
