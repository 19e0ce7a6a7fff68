"""The guarded transport hookup: every connection litellm opens goes through everruns/core/netguard.py."""

from django.conf import settings

from everruns.core import netguard


def _guarded_transport(ssl_context=None, ssl_verify=None, shared_session=None, http2=False, cert=None, limits=None):
    """The transport of every async HTTP client litellm builds: each connection goes to a checked address of
    the provider's host (no second DNS lookup to rebind), and a redirect is an error, never followed
    (everruns/core/netguard.py). Same signature as the factory it replaces; `shared_session` is aiohttp's."""
    return netguard.AsyncGuardedTransport(
        lambda: settings.LLM_ALLOWED_HOSTS,
        refuse_redirects=True,
        verify=ssl_context if ssl_context is not None else ssl_verify is not False,
        cert=cert,
        http2=http2,
        limits=limits or netguard.DEFAULT_LIMITS,
    )


def guard_connections(litellm) -> None:
    """litellm 1.110.2 builds its async clients in one place: AsyncHTTPHandler.create_async_transport makes
    the transport both of the OpenAI SDK's clients (openai/, openai_compatible) and of its own handlers
    (anthropic and the others), which otherwise follow redirects and resolve names themselves. Replace that
    factory, drop the environment-proxy mounts (a proxy resolves names itself, out of the guard's sight) and
    turn off the aiohttp transport (it bypasses httpx's transports). Re-check these names on an upgrade."""
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler  # noqa: PLC0415 - workers only

    litellm.disable_aiohttp_transport = True
    AsyncHTTPHandler.create_async_transport = staticmethod(_guarded_transport)
    AsyncHTTPHandler._create_async_transport = staticmethod(_guarded_transport)
    AsyncHTTPHandler.create_httpx_proxy_mounts = staticmethod(lambda *args, **kwargs: None)
