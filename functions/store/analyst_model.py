"""The analyst model behind post-call analysis: an OpenAI-compatible chat model over HTTPS."""

from __future__ import annotations

from typing import Any

from voice.chat_json import chat_json
from voice.config.analysis import AnalysisSettings


class OpenAIAnalyst:
    def __init__(self, api_key: str | None) -> None:
        self._api_key = api_key

    def complete(
        self,
        settings: AnalysisSettings,
        messages: list[dict[str, str]],
        schema_name: str,
        schema: dict[str, Any],
    ) -> str:
        return chat_json(settings, messages, schema_name, schema, api_key=self._api_key)
