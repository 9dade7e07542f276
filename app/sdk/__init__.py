"""The Chain Studio SDK: prompts as programs on the studio's local models, through its local API.

PromptIDE-style (an implicit context of tokens):
    await prompt(text); result = await sample(max_len=…, …); @prompt_fn; clear_prompt();
    get_context(); set_title(); await user_input(label); read_file(name); select_model(name)

Sampler-SDK-style:
    client = Client(initial_rng_seed=…)
    async for token in client.sampler.sample(prompt="", inputs=("…",), max_len=…): …
    await client.sampler.tokenize("…")

Usable from programs the studio runs (Programs tab, `python -m app program`), and from any script
or notebook on this computer while the studio runs (standard library only)."""

from app.sdk.connection import Connection, SdkError
from app.sdk.context import (
    Context,
    clear_prompt,
    get_context,
    prompt,
    prompt_fn,
    read_file,
    sample,
    select_model,
    set_title,
    user_input,
)
from app.sdk.host import NoUserInput
from app.sdk.sampler import AsyncSampler, Client
from app.sdk.tokens import SampleResult, Token, token_view_html

__all__ = [
    "AsyncSampler", "Client", "Connection", "Context", "NoUserInput", "SampleResult", "SdkError", "Token",
    "clear_prompt", "get_context", "prompt", "prompt_fn", "read_file", "sample", "select_model", "set_title",
    "token_view_html", "user_input",
]
