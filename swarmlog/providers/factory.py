"""Build the provider for a configured model endpoint."""

from __future__ import annotations

import httpx

from swarmlog.errors import ConfigError
from swarmlog.providers.anthropic import AnthropicProvider
from swarmlog.providers.base import Provider
from swarmlog.providers.ollama import OllamaProvider
from swarmlog.providers.openai import OpenAIProvider

__all__ = ["APIS", "make_provider"]

APIS = ("ollama", "openai", "anthropic", "sim")


def make_provider(
    api: str, endpoint: str, client: httpx.AsyncClient, *, api_key: str | None = None
) -> Provider:
    """Return the provider for ``api`` (``sim`` speaks Ollama's protocol to a simulated server)."""
    if api == "ollama" or api == "sim":
        return OllamaProvider(endpoint, client, api=api)
    if api == "openai":
        return OpenAIProvider(endpoint, client, api_key=api_key)
    if api == "anthropic":
        return AnthropicProvider(endpoint, client, api_key=api_key)
    raise ConfigError(
        f"unknown model api {api!r} for endpoint {endpoint}; use one of {', '.join(APIS)}"
    )
