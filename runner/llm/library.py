"""litellm itself: imported once, on first use and in workers only (~5 s and ~200 MB), and configured; and the
one llmsim instance."""

import asyncio
import logging
import os
import threading

from everruns.startup import freeze_loaded_objects
from runner.llm.transport import guard_connections

logger = logging.getLogger(__name__)
_litellm = None
_llmsim = None
_import_lock = threading.Lock()


async def lib_async():
    """litellm from the event loop: the first import (seconds) waits on a thread, so the loop, its heartbeat
    and every other turn go on meanwhile (a worker's warm-up thread may hold the import lock)."""
    if _litellm is not None:
        return _litellm
    return await asyncio.get_running_loop().run_in_executor(None, lib)


def lib():
    """litellm, imported once (a worker warms it up at start; threads wait for one import)."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _import_lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            # litellm costs ~5 s and ~200 MB: imported on first use, in workers only.
            import litellm  # noqa: PLC0415

            from runner.llm.sim import LlmSim  # noqa: PLC0415 - subclasses litellm.CustomLLM

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            # We log and account for every call ourselves: skip litellm's per-chunk success logging
            # (a thread-pool task per streamed chunk, for callbacks we do not use).
            litellm.disable_streaming_logging = True
            litellm.custom_provider_map = [{"provider": "llmsim", "custom_handler": LlmSim()}]
            guard_connections(litellm)
            _litellm = litellm
            freeze_loaded_objects()  # litellm's ~300,000 objects live as long as the process
    return _litellm


def warm_up() -> None:
    """Import and configure litellm ahead of the first call (workers do this when they start)."""
    try:
        lib()
    except Exception:
        logger.warning("litellm warm-up failed", exc_info=True)


def simulator():
    """The llmsim instance the adapter calls directly (usage counts, scripted replies)."""
    global _llmsim
    if _llmsim is None:
        from runner.llm.sim import LlmSim  # noqa: PLC0415 - imports litellm: workers only

        _llmsim = LlmSim()
    return _llmsim
