"""A real headless Chromium (Debian's, installed by scripts/browser.sh) and real uvicorn processes in the
shapes a user starts: with the static files collected (`make run`, the Procfile after its release step)
and without (a Procfile `web` started with no release step)."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests import processes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Site:
    shape: str
    url: str
    collected: bool


# name: (collectstatic ran, DEBUG)
SHAPES = {
    "collected": (True, False),
    "not-collected": (False, False),
    "collected-debug": (True, True),
}


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    """`manage.py collectstatic` into a directory of the run's own, as `make run` and the release step do."""
    root = tmp_path_factory.mktemp("staticfiles")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=processes.ROOT,
        env=processes.process_env(STATIC_ROOT=root),
        check=True,
        timeout=120,
    )
    return root


# Module scope: Playwright's sync API leaves an event loop marked running on this thread, which makes
# Django refuse ORM calls; the browser and servers must be gone before the next module's tests.
@pytest.fixture(scope="module", params=list(SHAPES))
def site(request, django_db_setup, log_dir, tmp_path_factory):
    """One uvicorn process in one shape, on the test database."""
    collected, debug = SHAPES[request.param]
    if collected:
        static_root = request.getfixturevalue("collected_static")
    else:
        static_root = tmp_path_factory.mktemp("empty") / "never-collected"
    proc, url = processes.start_web(log_dir, STATIC_ROOT=static_root, DEBUG=str(debug).lower())
    yield Site(shape=request.param, url=url, collected=collected)
    proc.stop()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser` (scripts/browser.sh)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


# Screenshots of the pages the tests drive, for people to look at: tests/browser/screenshots/ (not in git),
# or EVERRUNS_SCREENSHOT_DIR. Each run overwrites the previous run's files of the same name.
SCREENSHOTS = Path(os.environ.get("EVERRUNS_SCREENSHOT_DIR") or Path(__file__).with_name("screenshots"))


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {SCREENSHOTS}")
    return SCREENSHOTS
