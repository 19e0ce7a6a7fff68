from runner.tools.base import Capability

CAPABILITY = Capability(
    id="noop",
    name="No-op",
    description="Adds nothing: no prompt text, no tools. Useful to test capability plumbing.",
    category="testing",
)
