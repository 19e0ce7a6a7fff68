"""Provider types an LlmProvider may have: every provider litellm 1.110.2 supports, plus our own.

A static copy, because the web process must not import litellm (~5 s, ~200 MB);
tests/agents/test_providers_api.py checks it against litellm's own list.
"""

import os
from urllib.parse import urlsplit

EVERRUNS_TYPES = {"llmsim", "openai_compatible"}

LITELLM_TYPES = {
    "a2a",
    "a2a_agent",
    "abliteration",
    "ai21",
    "ai21_chat",
    "aiand",
    "aiml",
    "aiohttp_openai",
    "amazon_nova",
    "anthropic",
    "anthropic_text",
    "apertis",
    "assemblyai",
    "auto_router",
    "aws_polly",
    "aws_textract",
    "azure",
    "azure_ai",
    "azure_speech",
    "azure_text",
    "baseten",
    "bedrock",
    "bedrock_mantle",
    "bespoke",
    "bigmodel",
    "black_forest_labs",
    "bytez",
    "cerebras",
    "charity_engine",
    "chatgpt",
    "chutes",
    "clarifai",
    "clf_ai_gateway",
    "cloudflare",
    "codestral",
    "cognition",
    "cohere",
    "cohere_chat",
    "cometapi",
    "compactifai",
    "coralbricks",
    "cortecs",
    "cursor",
    "custom",
    "custom_openai",
    "darkbloom",
    "dashscope",
    "databricks",
    "databricks_agent",
    "datarobot",
    "deepgram",
    "deepinfra",
    "deepseek",
    "docker_model_runner",
    "dotprompt",
    "edenai",
    "elevenlabs",
    "empiriolabs",
    "empower",
    "eu_jev",
    "fal_ai",
    "featherless_ai",
    "fireworks_ai",
    "friendliai",
    "galadriel",
    "gdc",
    "gemini",
    "gigachat",
    "github",
    "github_copilot",
    "gradient_ai",
    "groq",
    "helicone",
    "heroku",
    "hosted_vllm",
    "hostinger_router",
    "huggingface",
    "humanloop",
    "hyperbolic",
    "inception",
    "inferenceapis",
    "infinity",
    "jina_ai",
    "kyma",
    "lambda_ai",
    "langflow",
    "langfuse",
    "langgraph",
    "laya",
    "lemonade",
    "libertai",
    "litellm_agent",
    "litellm_proxy",
    "llamafile",
    "lm_studio",
    "manus",
    "maritalk",
    "meta",
    "meta_llama",
    "microsoft_365_copilot",
    "milvus",
    "minimax",
    "mistral",
    "modelscope",
    "mongodb",
    "moonshot",
    "morph",
    "nace",
    "nadir",
    "nano-gpt",
    "nebius",
    "neosantara",
    "nlp_cloud",
    "novita",
    "nscale",
    "nvidia_nim",
    "nvidia_riva",
    "oci",
    "ollama",
    "ollama_chat",
    "oobabooga",
    "openai",
    "openai_like",
    "opencode_go",
    "openinfer",
    "openrouter",
    "opensearch",
    "ovhcloud",
    "parallel_ai",
    "parasail",
    "perplexity",
    "petals",
    "pg_vector",
    "pinstripes",
    "poe",
    "predibase",
    "prism",
    "publicai",
    "qwen_ai_platform",
    "qwencloud",
    "ragflow",
    "recraft",
    "reducto",
    "refuseless",
    "reka",
    "replicate",
    "runwayml",
    "s3_vectors",
    "sagemaker",
    "sagemaker_chat",
    "sagemaker_nova",
    "sail",
    "sambanova",
    "sap",
    "scaledown",
    "scaleway",
    "scx-ai",
    "snowflake",
    "soniox",
    "stability",
    "strands_decider",
    "streamlake",
    "synthetic",
    "tencent",
    "tensormesh",
    "text-completion-codestral",
    "text-completion-inception",
    "text-completion-openai",
    "together_ai",
    "topaz",
    "transcribe",
    "triton",
    "typesafe",
    "v0",
    "valkey",
    "vercel_ai_gateway",
    "vertex_ai",
    "vertex_ai_beta",
    "vllm",
    "volcengine",
    "voyage",
    "wally",
    "wandb",
    "watsonx",
    "watsonx_text",
    "xai",
    "xiaomi_mimo",
    "xinference",
    "zai",
    "zerogpu",
}

ALL = EVERRUNS_TYPES | LITELLM_TYPES

# Where litellm looks for a provider's key when none is stored; a provider listed here with neither
# fails the turn with `provider_key_missing` before any call is made.
KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "cohere": "COHERE_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "azure": "AZURE_API_KEY",
}

# The endpoint each KEY_ENV provider type calls when it has no base_url (litellm's defaults). A key from the
# environment goes to this origin only: a provider with another base_url must store its own key.
OFFICIAL_ENDPOINTS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "mistral": "https://api.mistral.ai/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com",
    "xai": "https://api.x.ai/v1",
    "together_ai": "https://api.together.ai/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "cohere": "https://api.cohere.ai",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "perplexity": "https://api.perplexity.ai",
    # azure: none; each deployment has its own endpoint, which comes with the environment's AZURE_API_BASE.
}


# Types whose endpoint without a base_url is on the worker's own host (litellm's default), unless the operator
# sets the variable litellm reads first. The address rule applies to that endpoint as to a base_url.
LOCAL_DEFAULT_ENDPOINTS = {
    "ollama": ("OLLAMA_API_BASE", "http://localhost:11434"),
    "ollama_chat": ("OLLAMA_API_BASE", "http://localhost:11434"),
    "llamafile": ("LLAMAFILE_API_BASE", "http://127.0.0.1:8080/v1"),
    "lemonade": ("LEMONADE_API_BASE", "http://localhost:8000/api/v1"),
    "docker_model_runner": ("DOCKER_MODEL_RUNNER_API_BASE", "http://localhost:22088/engines/llama.cpp"),
    "langgraph": ("LANGGRAPH_API_BASE", "http://localhost:2024"),
    "langflow": ("LANGFLOW_API_BASE", "http://localhost:7860"),
}


def called_url(provider_type: str, base_url: str | None) -> str | None:
    """The endpoint a provider calls, when a user chose it: its base_url, or its type's local default (unless
    the operator's environment names another); None for litellm's own public defaults."""
    if base_url:
        return base_url
    variable, default = LOCAL_DEFAULT_ENDPOINTS.get(provider_type, (None, None))
    return default if variable and not os.environ.get(variable) else None


def _origin(url: str) -> tuple[str, str, int | None] | None:
    parts = urlsplit(url.strip())
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def is_official_endpoint(provider_type: str, base_url: str | None) -> bool:
    """No base_url (litellm's default endpoint), or one on the same origin (scheme, host, port) as the
    type's official endpoint."""
    if not base_url:
        return True
    official = OFFICIAL_ENDPOINTS.get(provider_type)
    return official is not None and _origin(base_url) == _origin(official)


# Provider `settings` the runner reads, and their bounds (agents.models.LlmProvider.clean refuses a value
# outside them; runner.resolution clamps rows saved before these bounds existed). 0 means "not set" for each:
# the global LLM timeout, no latency, no delay between chunks.
SETTINGS_BOUNDS = {
    "timeout": (1, 600),  # seconds one LLM call may take
    "latency_ms": (0, 600_000),  # llmsim: the wait before the first token
    "tokens_per_second": (1, 1_000_000),  # llmsim: the pace of the reply
    "usd_per_million_tokens": (0.000001, 1_000_000),  # llmsim: its price (input and output alike), for budgets
}


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value  # not NaN


def settings_errors(settings) -> list[str]:
    """What is wrong with a provider's `settings`; empty when nothing is."""
    if not isinstance(settings, dict):
        return ["Must be an object."]
    errors = []
    for key, (low, high) in SETTINGS_BOUNDS.items():
        value = settings.get(key)
        if value is None or (_number(value) and (value == 0 or low <= value <= high)):
            continue
        errors.append(f"{key}: must be a number from {low:g} to {high:g} (or 0: not set).")
    return errors


def clamped_settings(settings) -> dict:
    """A provider's `settings` with each bounded value inside its bounds; a value that is not a number is
    dropped (not set)."""
    settings = dict(settings) if isinstance(settings, dict) else {}
    for key, (low, high) in SETTINGS_BOUNDS.items():
        if key not in settings:
            continue
        value = settings[key]
        if not _number(value) or value <= 0:
            del settings[key]
        else:
            settings[key] = min(max(value, low), high)
    return settings


# A model's own `settings` (agents.models.LlmModel): the context window it has, in tokens, when litellm's model map
# does not know it or knows it wrong (a local model, a proxy, llmsim).
MODEL_SETTINGS_BOUNDS = {"context_window": (100, 100_000_000)}


def model_settings_errors(settings) -> list[str]:
    """What is wrong with a model's `settings`; empty when nothing is."""
    if not isinstance(settings, dict):
        return ["Must be an object."]
    errors = []
    for key, (low, high) in MODEL_SETTINGS_BOUNDS.items():
        value = settings.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            errors.append(f"{key}: must be a whole number from {low:,} to {high:,}.")
    return errors
