"""The docs tell the truth about configuration: every environment variable the settings read, and every
provider key variable, is in docs/configuration.md, and the Procfile lines the README quotes are the Procfile's."""

import re
from pathlib import Path

from agents.provider_types import KEY_ENV

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()


def _configuration_section() -> str:
    return CONFIGURATION


def test_every_setting_read_from_the_environment_is_documented():
    source = (ROOT / "everruns" / "settings.py").read_text()
    names = set(re.findall(r'(?:env_\w+|os\.environ\.get|os\.environ\.setdefault)\(\s*"([A-Z][A-Z0-9_]+)"', source))
    assert len(names) > 30
    section = _configuration_section()
    missing = sorted(name for name in names if f"`{name}`" not in section)
    assert not missing, f"docs/configuration.md does not list {missing}"


def test_every_provider_key_variable_is_documented():
    section = _configuration_section()
    missing = sorted(name for name in KEY_ENV.values() if f"`{name}`" not in section)
    assert not missing, f"docs/configuration.md does not list {missing}"


def test_the_procfile_lines_quoted_are_the_procfile():
    procfile = [line for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
    for line in procfile:
        assert line in README, f"README does not quote the Procfile line: {line}"
