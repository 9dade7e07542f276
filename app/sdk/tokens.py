"""The SDK's values: a `Token` (prompted or sampled, with its probability and alternatives) and a
`SampleResult`, each drawn as the token view in a notebook (`_repr_html_`, no widget needed)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class Token:
    """One vocabulary entry in a context: prompted (`prob` None) or sampled by the model.

    `token_str` is the token's text, `token_id` its index in the vocabulary, `prob` the probability
    it was drawn with (after the sampling stages), `top_k` the alternatives left after top-P, most
    likely first (Tokens themselves, without alternatives of their own), and `attention` its
    attention over the context before it (averaged over heads and layers) when it was asked for
    and the model exposes it."""

    token_str: str
    token_id: int
    prob: float | None = None
    top_k: tuple["Token", ...] = ()
    attention: tuple[float, ...] | None = None

    @property
    def sampled(self) -> bool:
        """Whether the model chose this token (else it was prompted)."""
        return self.prob is not None

    @classmethod
    def from_line(cls, line: dict[str, Any]) -> "Token":
        """A sampled token from one `token` line of /api/sample."""
        attention = line.get("attention")
        return cls(
            token_str=str(line.get("text") or line.get("piece") or ""),
            token_id=int(line["id"]),
            prob=float(line["prob"]),
            top_k=tuple(cls(str(alt["piece"]), int(alt["id"]), float(alt["prob"])) for alt in line.get("top_k", ())),
            attention=tuple(float(a) for a in attention) if attention is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The token as plain data (for JSON lines and the journal)."""
        data: dict[str, Any] = {"token_str": self.token_str, "token_id": self.token_id, "prob": self.prob}
        if self.top_k:
            data["top_k"] = [{"token_str": t.token_str, "token_id": t.token_id, "prob": t.prob} for t in self.top_k]
        if self.attention is not None:
            data["attention"] = list(self.attention)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Token":
        attention = data.get("attention")
        return cls(str(data["token_str"]), int(data["token_id"]),
                   None if data.get("prob") is None else float(data["prob"]),
                   tuple(cls.from_dict(alt) for alt in data.get("top_k") or ()),
                   tuple(attention) if attention is not None else None)


@dataclass(frozen=True)
class SampleResult:
    """What `sample()` gave: the text, the sampled tokens, why it stopped and the seed it used."""

    text: str
    tokens: tuple[Token, ...]
    stop_reason: str = ""
    seed: int | None = None
    attention_note: str = ""  # why no attention came back, when it was asked for
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return token_view_html(self.tokens)


def _shade(prob: float | None) -> str:
    """A background for a token: prompted tokens grey, sampled ones from red (unlikely) to green."""
    if prob is None:
        return "background:#e8e8e8"
    hue = round(120 * max(0.0, min(1.0, prob)))
    return f"background:hsl({hue},70%,82%)"


def _tooltip(token: Token) -> str:
    lines = [f"id {token.token_id}"]
    if token.prob is not None:
        lines[0] += f" · p={token.prob:.3f}"
        lines += [f"{alt.token_str!r}: {alt.prob:.3f}" for alt in token.top_k[:10] if alt.prob is not None]
    else:
        lines[0] += " · prompted"
    return "\n".join(lines)


def token_view_html(tokens: Sequence[Token]) -> str:
    """The tokens as inline HTML: each a span shaded by its probability (prompted ones grey), with
    its id, probability and top alternatives on hover. Self-contained (inline styles only)."""
    spans = []
    for token in tokens:
        text = html.escape(token.token_str).replace("\n", "↵<br>")
        spans.append(f'<span class="cs-token" style="{_shade(token.prob)};border-radius:2px;padding:0 1px;'
                     f'white-space:pre-wrap" title="{html.escape(_tooltip(token), quote=True)}" '
                     f'data-id="{token.token_id}">{text}</span>')
    return ('<div class="cs-token-view" style="font-family:monospace;line-height:1.8">'
            + "".join(spans) + "</div>")
