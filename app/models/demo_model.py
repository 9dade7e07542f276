"""The built-in demo model: a tiny GGUF whose weights script its replies under real inference.

How it works (llama architecture, one layer):
- Token embeddings are one-hot and the attention and feed-forward outputs are zero, so the hidden
  state after the last layer is the one-hot vector of the *last* input token.
- The output matrix maps each token to the logits of its successor: the scripted next token gets
  `INTENDED_LOGIT`, one alternative gets `ALTERNATIVE_LOGIT` (so learning mode has a real second
  choice), everything else 0.
- The vocabulary holds only byte-fallback tokens and script tokens of three or more characters, so
  any prompt tokenizes into bytes and its last byte picks the script.
- The chat template concatenates the message contents: the last character of the last message
  decides what the model says.

The script (a contract other parts and the README rely on), by the prompt's last character:
    '#' -> "```python\\nprint('STOP_SAMANTHA')\\n```"
    '%' -> "```python\\nprint(6 * 7)\\n```"
    '~' -> " la" repeated until max_tokens (it never stops by itself)
    '^' -> "Roses are red\nViolets are blue\nThe end." (lines with single line breaks)
    '&' -> "<think>```py\nprint('STOP_SAMANTHA')\n```</think>Hello from the demo model." (reasoning first)
    anything else -> "Hello from the demo model."
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import gguf
import numpy as np

from app.models.gguf_writer import LlamaShape, Vocabulary, spm_vocabulary, write_llama_gguf

DEMO_MODEL_NAME = "Chain Studio demo model"
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"

SCRIPT_HELLO = "Hello from the demo model."
SCRIPT_STOP = "```python\nprint('STOP_SAMANTHA')\n```"
SCRIPT_CODE = "```python\nprint(6 * 7)\n```"
SCRIPT_LINES = "Roses are red\nViolets are blue\nThe end."
THOUGHT = "```py\nprint('STOP_SAMANTHA')\n```"
SCRIPT_REASONING = f"<think>{THOUGHT}</think>{SCRIPT_HELLO}"
LOOP_PIECE = " la"

INTENDED_LOGIT = 10.0
ALTERNATIVE_LOGIT = 8.0
EOS = "</s>"

# token -> (scripted successor, alternative). "\u2581" is SentencePiece's visible space.
_S = "\u2581"
TRANSITIONS: dict[str, tuple[str, str]] = {
    # "Hello from the demo model." and its branches
    "Hello": (f"{_S}from", f"{_S}again"),
    "Greetings": (f"{_S}from", f"{_S}again"),
    f"{_S}again": (f"{_S}from", f"{_S}inside"),
    f"{_S}from": (f"{_S}the", f"{_S}inside"),
    f"{_S}inside": (f"{_S}the", f"{_S}your"),
    f"{_S}the": (f"{_S}demo", f"{_S}tiny"),
    f"{_S}your": (f"{_S}demo", f"{_S}tiny"),
    f"{_S}demo": (f"{_S}model.", f"{_S}studio."),
    f"{_S}tiny": (f"{_S}model.", f"{_S}studio."),
    f"{_S}model.": (EOS, f"{_S}Enjoy!"),
    f"{_S}studio.": (EOS, f"{_S}Enjoy!"),
    f"{_S}Enjoy!": (EOS, f"{_S}Bye!"),
    f"{_S}Bye!": (EOS, f"{_S}Enjoy!"),
    # '#': code that prints the stop signal
    "```python\n": ("print('STOP_SAMANTHA')", "print('hello')"),
    "print('STOP_SAMANTHA')": ("\n```", EOS),
    "print('hello')": ("\n```", EOS),
    "\n```": (EOS, f"{_S}Enjoy!"),
    # '%': code that prints 42 (alternatives print 36 or 13)
    "```": ("python", EOS),
    "python": ("\nprint(6", EOS),
    "\nprint(6": (f"{_S}*{_S}7", f"{_S}+{_S}7"),
    f"{_S}*{_S}7": (")\n```", f"{_S}*{_S}6"),
    f"{_S}*{_S}6": (")\n```", EOS),
    f"{_S}+{_S}7": (")\n```", EOS),
    ")\n```": (EOS, f"{_S}Enjoy!"),
    # '~': an endless song
    f"{_S}la": (f"{_S}la", f"{_S}lo"),
    f"{_S}lo": (f"{_S}la", f"{_S}li"),
    f"{_S}li": (f"{_S}la", f"{_S}lo"),
    # '^': three short lines
    "Roses": (f"{_S}are{_S}red\n", f"{_S}from"),
    f"{_S}are{_S}red\n": ("Violets", f"The{_S}end."),
    "Violets": (f"{_S}are{_S}blue\n", f"{_S}are{_S}red\n"),
    f"{_S}are{_S}blue\n": (f"The{_S}end.", "Roses"),
    f"The{_S}end.": (EOS, f"{_S}Enjoy!"),
    # '&': reasoning (holding code and STOP_SAMANTHA, which must not be acted on), then the answer
    "<think>": (THOUGHT.replace(" ", _S), "</think>"),
    THOUGHT.replace(" ", _S): ("</think>", "<think>"),
    "</think>": ("Hello", "Greetings"),
}
# What follows the prompt's last byte (or a special token).
START_BY_LAST_CHAR = {"#": "```python\n", "%": "```", "~": f"{_S}la", "^": "Roses", "&": "<think>"}
DEFAULT_START = ("Hello", "Greetings")


def _shape(n_vocab: int) -> LlamaShape:
    n_embd = -(-n_vocab // 64) * 64  # one-hot embeddings need a dimension per token
    return LlamaShape(
        n_vocab=n_vocab, n_embd=n_embd, n_layer=1, n_head=4, n_head_kv=4, n_ff=64, n_ctx_train=4096
    )


def _vocabulary(end_of_turn: str | None = None) -> Vocabulary:
    """The demo vocabulary; with `end_of_turn`, that control token is added and declared the
    end-of-turn token (as chat models declare <|im_end|> or <end_of_turn>)."""
    vocab = spm_vocabulary([*TRANSITIONS, *([end_of_turn] if end_of_turn else [])])
    if not end_of_turn:
        return vocab
    types = list(vocab.types)
    types[-1] = int(gguf.TokenType.CONTROL)
    return dataclasses.replace(vocab, types=tuple(types), eot_id=len(vocab.tokens) - 1)


def transition_logits(end_of_turn: str | None = None) -> tuple[list[str], np.ndarray]:
    """The vocabulary and the matrix L where L[i, j] is the logit of token j after token i. With
    `end_of_turn`, every answer ends with that token instead of </s>."""
    vocab = _vocabulary(end_of_turn)
    index = {token: i for i, token in enumerate(vocab.tokens)}
    logits = np.zeros((len(vocab.tokens), len(vocab.tokens)), dtype=np.float32)
    for source, i in index.items():
        if source in TRANSITIONS:
            intended, alternative = TRANSITIONS[source]
        else:
            char = None
            if source.startswith("<0x"):
                char = chr(int(source[3:5], 16))
            start = START_BY_LAST_CHAR.get(char or "")
            intended, alternative = (start, "Hello") if start else DEFAULT_START
        if end_of_turn and intended == EOS:
            intended = end_of_turn
        logits[i, index[intended]] = INTENDED_LOGIT
        logits[i, index[alternative]] = ALTERNATIVE_LOGIT
    return list(vocab.tokens), logits


def write_demo_model(path: str | os.PathLike[str], chat_template: str | None = CHAT_TEMPLATE,
                     end_of_turn: str | None = None) -> Path:
    """Write the demo model to `path` (atomically) and return the path. Takes a few milliseconds.
    Tests write copies with another `chat_template` (a file's template is untrusted input), or
    with an `end_of_turn` control token that ends every answer instead of </s>."""
    vocab = _vocabulary(end_of_turn)
    _, table = transition_logits(end_of_turn)
    shape = _shape(len(vocab.tokens))
    n_vocab, n_embd, n_ff = shape.n_vocab, shape.n_embd, shape.n_ff

    embeddings = np.zeros((n_vocab, n_embd), dtype=np.float32)
    embeddings[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    # RMS-normalising a one-hot vector multiplies it by sqrt(n_embd); this weight undoes that.
    output_norm = np.full(n_embd, 1.0 / np.sqrt(n_embd), dtype=np.float32)
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    output[:, :n_vocab] = table.T  # logits[j] = output[j, i] when the hidden state is one-hot i

    def zeros(rows: int, cols: int) -> np.ndarray:
        return np.zeros((rows, cols), dtype=np.float32)

    ones = np.ones(n_embd, dtype=np.float32)
    tensors = [
        ("token_embd.weight", embeddings, None),
        ("output_norm.weight", output_norm, None),
        ("output.weight", output, None),
        ("blk.0.attn_norm.weight", ones, None),
        ("blk.0.attn_q.weight", zeros(n_embd, n_embd), None),
        ("blk.0.attn_k.weight", zeros(shape.n_embd_kv, n_embd), None),
        ("blk.0.attn_v.weight", zeros(shape.n_embd_kv, n_embd), None),
        ("blk.0.attn_output.weight", zeros(n_embd, n_embd), None),
        ("blk.0.ffn_norm.weight", ones, None),
        ("blk.0.ffn_gate.weight", zeros(n_ff, n_embd), None),
        ("blk.0.ffn_up.weight", zeros(n_ff, n_embd), None),
        ("blk.0.ffn_down.weight", zeros(n_embd, n_ff), None),
    ]
    return write_llama_gguf(
        path,
        name=DEMO_MODEL_NAME,
        shape=shape,
        vocab=vocab,
        tensors=tensors,
        file_type=gguf.LlamaFileType.ALL_F32,
        chat_template=chat_template,
        description="Scripted replies for trying Chain Studio offline; see the README.",
    )


def ensure_demo_model(path: str | os.PathLike[str]) -> Path:
    """Write the demo model unless a file is already there; return its path."""
    target = Path(path)
    if not target.exists():
        write_demo_model(target)
    return target


def expected_reply(prompt: str, max_tokens: int) -> str:
    """The text the demo model produces greedily for a prompt (used by tests and documentation)."""
    last = prompt[-1:] if prompt else ""
    if last == "#":
        return SCRIPT_STOP
    if last == "%":
        return SCRIPT_CODE
    if last == "~":
        return LOOP_PIECE * max_tokens
    if last == "^":
        return SCRIPT_LINES
    if last == "&":
        return SCRIPT_REASONING
    return SCRIPT_HELLO

