# In-process turns (test_context.py) run on the runner's runtime: the same clean-up of its connections.
from tests.runner.conftest import _runtime_connections  # noqa: F401
