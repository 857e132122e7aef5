"""Config for post-call analysis (`voice.realtime.analysis`) and the LLM name redactor
(`voice.realtime.privacy.name_redactor`): models called after (or at the end of) a call."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voice.config.patterns import KeyPathError

# What the analysis function (Timeout 300 s in template.yaml) may spend waiting on the model.
ANALYSIS_BUDGET_SECONDS = 280


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelCall(_Section):
    """An OpenAI-compatible chat model, called with a timeout and a few attempts."""

    model: Annotated[str, Field(min_length=1)] = "gpt-4o-mini"
    # None: the provider's default (OPENAI_BASE_URL, else OpenAI).
    base_url: str | None = None
    timeout_seconds: Annotated[float, Field(gt=0.0, le=120.0)] = 30.0
    # Attempts per request when the model does not answer (timeouts, 5xx, refused connections).
    max_attempts: Annotated[int, Field(ge=1, le=5)] = 3


class NameRedactor(ModelCall):
    """Replaces people's names in stored transcripts with [name]; used when `redact` has `name`."""

    enabled: bool = False
    timeout_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 10.0
    max_attempts: Annotated[int, Field(ge=1, le=5)] = 2


class AnalysisSettings(ModelCall):
    """What is extracted from each finished call: a summary, a success verdict, typed fields."""

    enabled: bool = False
    summary: bool = True
    # When set, the model judges whether the call met these and says why (`success`).
    success_criteria: str | None = None
    # A JSON Schema (type object) of the fields to extract, e.g. a reason for calling, an order id.
    fields_schema: dict[str, Any] | None = None
    # Extra guidance for the analyst model (what the business cares about).
    instructions: str | None = None

    @model_validator(mode="after")
    def _schema_is_valid(self) -> AnalysisSettings:
        if self.fields_schema is not None:
            check_fields_schema(self.fields_schema)
        # An answer off the schema is asked for once more: two requests of max_attempts each.
        worst = self.timeout_seconds * self.max_attempts * 2
        if worst > ANALYSIS_BUDGET_SECONDS:
            raise KeyPathError(
                "timeout_seconds",
                f"timeout_seconds x max_attempts x 2 must be <= {ANALYSIS_BUDGET_SECONDS} s, the "
                f"analysis function's time (got {worst:g} s); lower one of them",
            )
        return self


def check_fields_schema(schema: dict[str, Any]) -> None:
    """Raises `KeyPathError` naming the part of `fields_schema` that is not valid JSON Schema."""
    from jsonschema import SchemaError, validators  # deferred: only configs with a schema pay

    if schema.get("type") != "object":
        raise KeyPathError(
            "fields_schema.type",
            f"must be 'object' (the fields are one JSON object; got {schema.get('type')!r})",
        )
    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        path = "fields_schema" + (f".{where}" if where else "")
        raise KeyPathError(path, f"is not valid JSON Schema: {exc.message}") from None
