"""Request bodies of the API routes, and how their sampling fields become `SamplingParams`.

OpenAI's fields keep OpenAI's names and defaults (temperature 1, top_p 1); the studio's other
samplers (top_k, min_p, typical_p, tfs_z, penalties, XTC, DRY, top-n-sigma, Mirostat) are extra
body fields with the studio's names and defaults. Fields a tool sends that change nothing here
(user, store, metadata, …) are accepted and ignored; features the studio does not have (tools,
images) are refused by name rather than silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from app.api.errors import ApiError, field_named
from app.core.errors import SettingsError
from app.core.sampling import SAMPLING_SPECS, SEED_RANDOM, SamplingParams

OPENAI_SAMPLING = ("max_tokens", "temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
STUDIO_SAMPLING = tuple(name for name in SAMPLING_SPECS if name not in OPENAI_SAMPLING)
REFUSED_FEATURES = {
    "tools": "tool calls are not supported by the studio's API",
    "functions": "function calls are not supported by the studio's API",
    "logit_bias": "logit_bias is not supported yet",
    "audio": "audio output is not supported",
    "prediction": "predicted outputs are not supported",
}
MAX_N = 16


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[dict[str, Any]], None] = None

    def text(self, index: int) -> str:
        """The message's text; parts that are not text are refused, naming the message."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise ApiError(400, f"messages[{index}]: only text content is supported "
                                    f"(got a {part.get('type')!r} part)", f"messages[{index}].content")
            texts.append(part["text"])
        return "".join(texts)


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = "answer"
    schema_: dict[str, Any] = Field(alias="schema")


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None

    def schema_text(self) -> str:
        """The JSON schema the answer must be valid for, as JSON text ("" for plain text)."""
        import json

        if self.type == "json_object":
            return json.dumps({"type": "object"})
        if self.type == "json_schema":
            if self.json_schema is None:
                raise ApiError(400, "response_format json_schema needs a json_schema object with a schema",
                               "response_format.json_schema")
            return json.dumps(self.json_schema.schema_)
        return ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class SamplingFields(BaseModel):
    """What every generating route accepts: OpenAI's sampling fields and the studio's."""

    model_config = ConfigDict(extra="allow")

    model: Any = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: Union[str, list[str], None] = None
    n: int = Field(1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None

    def refuse_unsupported(self) -> None:
        extra = self.model_extra or {}
        for name, why in REFUSED_FEATURES.items():
            if extra.get(name):
                raise ApiError(400, why, name, "unsupported_parameter")

    def sampling(self, seed_offset: int = 0) -> SamplingParams:
        """The studio's settings for one choice (choice i of n uses seed + i when a seed is given)."""
        extra = self.model_extra or {}
        values: dict[str, Any] = {name: extra[name] for name in STUDIO_SAMPLING if name in extra}
        if "mirostat_mode" in extra and "mirostat" not in values:  # llama.cpp server's name for it
            values["mirostat"] = extra["mirostat_mode"]
        limit = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        if limit is not None:
            values["max_tokens"] = limit
        seed = SEED_RANDOM if self.seed is None else self.seed + seed_offset
        stop = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        try:
            return SamplingParams(temperature=self.temperature, top_p=self.top_p, seed=seed, stop=tuple(stop),
                                  presence_penalty=self.presence_penalty,
                                  frequency_penalty=self.frequency_penalty, **values)
        except SettingsError as exc:
            raise ApiError(400, str(exc), field_named(str(exc))) from exc
        except TypeError as exc:  # a studio field given as something that is not a value
            raise ApiError(400, f"a sampling field has the wrong type: {exc}") from exc


class ChatRequest(SamplingFields):
    messages: list[Message] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None


class CompletionRequest(SamplingFields):
    prompt: Union[str, list[str]]
    logprobs: int | None = Field(None, ge=0, le=20)
    echo: bool = False
    suffix: str | None = None


class TokenizeRequest(BaseModel):
    model: Any = None
    text: str
    add_special: bool = True


class DetokenizeRequest(BaseModel):
    model: Any = None
    tokens: list[int]
