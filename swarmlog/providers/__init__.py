"""HTTP clients for model servers: Ollama, OpenAI-compatible, Anthropic, and retries."""

from __future__ import annotations

from swarmlog.providers.anthropic import AnthropicProvider, anthropic_api_key
from swarmlog.providers.base import ChatRequest, ChatResult, Message, Provider, ProviderTimeout
from swarmlog.providers.factory import APIS, make_provider
from swarmlog.providers.ollama import OllamaProvider
from swarmlog.providers.openai import OpenAIProvider
from swarmlog.providers.retry import AttemptRecord, RetryPolicy, backoff_delay, call_with_retries

__all__ = [
    "APIS",
    "AnthropicProvider",
    "AttemptRecord",
    "ChatRequest",
    "ChatResult",
    "Message",
    "OllamaProvider",
    "OpenAIProvider",
    "Provider",
    "ProviderTimeout",
    "RetryPolicy",
    "anthropic_api_key",
    "backoff_delay",
    "call_with_retries",
    "make_provider",
]
