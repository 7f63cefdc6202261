"""Turns an app's ``provider:model`` into a ready ``ChatModel``; owns the clients it opens."""

from __future__ import annotations

import os
from typing import Any

import openai

from parlour.errors import ProviderNotInitialize
from parlour.providers.base import ChatModel
from parlour.providers.fake import FakeChatModel
from parlour.providers.openai_compat import OpenAIChatModel, make_client
from parlour.providers.openai_http import OpenAIHttpClient, OpenAIHttpModel

PROVIDERS = ("openai", "local", "fake")


class ModelRegistry:
    """Built once in the lifespan. ``register`` lets tests put a scripted model under a name."""

    def __init__(
        self,
        openai_base_url: str = "",
        openai_api_key: str = "",
        timeout: float = 1200.0,
        local_options: dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        client: str = "http",
    ):
        self.openai_base_url = openai_base_url or os.environ.get("OPENAI_BASE_URL", "")
        self.openai_api_key = openai_api_key or os.environ.get("OPENAI_API_KEY", "")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.client_kind = client
        self._http: dict[tuple[str, str], OpenAIHttpClient] = {}
        self.local_options = local_options or {}
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._models: dict[str, ChatModel] = {}

    def register(self, name: str, model: ChatModel) -> None:
        self._models[name] = model

    def get(self, spec: str, *, base_url: str = "", api_key: str = "") -> ChatModel:
        key = f"{spec}|{base_url}|{api_key}"
        model = self._models.get(key) or self._models.get(spec)
        if model is None:
            model = self._build(spec, base_url, api_key)
            self._models[key] = model
        return model

    def _build(self, spec: str, base_url: str, api_key: str) -> ChatModel:
        provider, _, name = spec.partition(":")
        if provider == "openai" and name:
            if self.client_kind == "sdk":
                return OpenAIChatModel(self._client(base_url, api_key), name)
            return OpenAIHttpModel(self._http_client(base_url, api_key), name)
        if provider == "local":
            from parlour.providers.llama_cpp import LlamaCppModel

            return LlamaCppModel(name=spec, **self.local_options)
        if provider == "fake":
            return FakeChatModel(name=spec)
        raise ProviderNotInitialize(
            f"Unknown model provider in '{spec}'; use one of: "
            + ", ".join(f"{p}:MODEL" for p in PROVIDERS)
        )

    def _endpoint(self, base_url: str, api_key: str) -> tuple[str, str]:
        url = base_url or self.openai_base_url or "https://api.openai.com/v1"
        return url, api_key or self.openai_api_key

    def _http_client(self, base_url: str, api_key: str) -> OpenAIHttpClient:
        key = self._endpoint(base_url, api_key)
        client = self._http.get(key)
        if client is None:
            client = OpenAIHttpClient(*key, self.timeout, self.connect_timeout)
            self._http[key] = client
        return client

    def _client(self, base_url: str, api_key: str) -> openai.AsyncOpenAI:
        url, token = self._endpoint(base_url, api_key)
        client = self._clients.get((url, token))
        if client is None:
            client = make_client(url, token, self.timeout, self.connect_timeout)
            self._clients[(url, token)] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
        for http in self._http.values():
            await http.close()
        self._http.clear()
        for model in self._models.values():
            close = getattr(model, "close", None)
            if close is not None:
                close()
        self._models.clear()
