"""The Sampler-SDK shape: `Client(initial_rng_seed=…).sampler.sample(prompt="", inputs=(…), …)`
as an async iterator of `Token`s, and `tokenize()`, on the studio's local models.

A script written for the seed document's SDK runs after changing only its import line
(`from app import sdk as xai_sdk`)."""

from __future__ import annotations

import random
from typing import Any, AsyncIterator, Optional, Sequence, Union

from app.sdk.connection import Connection, SdkError, sample_fields
from app.sdk.tokens import Token

MAX_SEED = 2**32 - 1
Input = Union[str, Sequence[int], bytes]


class AsyncSampler:
    """Samples from the raw model. Without an explicit `rng_seed`, each call's seed is derived
    from the initial seed and the call's position, so a given call order repeats exactly."""

    def __init__(self, connection: Connection, initial_rng_seed: int | None = None) -> None:
        self._connection = connection
        self.initial_rng_seed = (initial_rng_seed if initial_rng_seed is not None
                                 else random.SystemRandom().randrange(MAX_SEED))
        self._calls = 0

    async def _model(self, model_name: str) -> str:
        if model_name:
            return model_name
        import asyncio

        return await asyncio.to_thread(self._connection.default_model)

    async def sample(
        self,
        *,
        prompt: Union[str, Sequence[int], Sequence[Token]] = "",
        inputs: Sequence[Input] = (),
        model_name: str = "",
        max_len: int = 256,
        temperature: float = 0.7,
        nucleus_p: float = 0.95,
        stop_tokens: Optional[list[str]] = None,
        stop_strings: Optional[list[str]] = None,
        rng_seed: Optional[int] = None,
        return_attention: bool = False,
        allowed_tokens: Optional[Sequence[Union[int, str]]] = None,
        disallowed_tokens: Optional[Sequence[Union[int, str]]] = None,
        augment_tokens: bool = True,
        choices: Optional[Sequence[str]] = None,
        regex: Optional[str] = None,
        json_schema: Optional[Union[dict[str, Any], str]] = None,
        grammar: Optional[str] = None,
    ) -> AsyncIterator[Token]:
        """Continue `prompt` then `inputs` (texts or token ids); yields each sampled token as it
        comes. Image inputs need a model with vision: the studio's local models have none.
        `choices`, `regex`, `json_schema` or `grammar` (one of them) constrain what may be said."""
        model = await self._model(model_name)
        pieces: list[Any] = []
        for number, item in enumerate(([prompt] if prompt else []) + list(inputs)):
            if isinstance(item, (bytes, bytearray)):
                raise SdkError(f"inputs[{number}] is an image, and {model} cannot see images: the studio runs "
                               "text models (give text or token ids)", "inputs")
            if isinstance(item, str):
                pieces.append(item)
            else:
                pieces.append([t.token_id if isinstance(t, Token) else int(t) for t in item])
        call = self._calls
        self._calls += 1
        body: dict[str, Any] = {
            "model": model, "inputs": pieces,
            **sample_fields(max_len, temperature, nucleus_p, stop_tokens, stop_strings, return_attention,
                            allowed_tokens, disallowed_tokens, augment_tokens,
                            {"choices": list(choices) if choices is not None else None, "regex": regex,
                             "json_schema": json_schema, "grammar": grammar}),
        }
        if rng_seed is not None:
            body["rng_seed"] = rng_seed
        else:
            body.update(initial_rng_seed=self.initial_rng_seed, call=call)
        async for line in self._connection.stream("/api/sample", body):
            if line["type"] == "token":
                yield Token.from_line(line)

    async def tokenize(self, prompt: str, model_name: str = "") -> list[Token]:
        """`prompt` as the model's tokens (with its BOS, as sample() would read it)."""
        model = await self._model(model_name)
        answer = await self._connection.apost("/api/tokenize", {"model": model, "text": prompt, "add_special": True})
        return [Token(piece, token) for token, piece in zip(answer["tokens"], answer["pieces"], strict=True)]


class Client:
    """The entry point of the Sampler-SDK shape: `Client().sampler`."""

    def __init__(self, initial_rng_seed: int | None = None, base_url: str | None = None,
                 api_key: str | None = None) -> None:
        self.connection = Connection(base_url, api_key)
        self.sampler = AsyncSampler(self.connection, initial_rng_seed)
