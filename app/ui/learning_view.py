"""What the Learning tab shows, from learning mode's per-token records (`TokenChoice.to_record()`,
the same form the journal keeps, so a reopened run shows exactly what was seen). No gradio here."""

from __future__ import annotations

import html
from typing import Any

from app.core.sampler_pipeline import ALL_STAGES

BEFORE = "before sampling"
TABLE_HEADERS = ["rank", "id", "token", "logit", BEFORE, *ALL_STAGES, "removed by"]
STAGES_NOTE = ("Every stage the pick went through is shown, in the order applied; stages that are "
               "off stay empty. Mirostat replaces top_k … top_n_sigma by one truncation, shown as "
               "its own stage.")


def visible(piece: str) -> str:
    """A token's text with spaces, tabs and line breaks made visible."""
    return piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def _chosen(record: dict[str, Any]) -> list[Any]:
    return next(c for c in record["candidates"] if c[0] == record["chosen"])


def candidate_rows(record: dict[str, Any]) -> list[list[Any]]:
    """Rows of the candidates table; stages that were not applied stay empty."""
    applied = record["stages"]
    rows = []
    for rank, (token, piece, logit, prob, stage_probs, removed) in enumerate(record["candidates"], start=1):
        by_stage = dict(zip(applied, stage_probs, strict=False))
        marker = " ✔" if token == record["chosen"] else ""
        rows.append([rank, token, visible(piece) + marker, round(logit, 3), round(prob, 4),
                     *[round(by_stage[s], 4) if s in by_stage else "" for s in ALL_STAGES], removed or ""])
    return rows


def probability_rows(record: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    """Bar-plot data: each candidate's probability before sampling or after `stage`."""
    applied = record["stages"]
    rows = []
    for token, piece, _logit, prob, stage_probs, _removed in record["candidates"]:
        value = prob if stage == BEFORE else dict(zip(applied, stage_probs, strict=False)).get(stage, 0.0)
        label = f"{visible(piece)} ({token})"
        rows.append({"token": label, "probability": value,
                     "pick": "chosen" if token == record["chosen"] else "other"})
    return rows


def unlikely_picks(records: list[dict[str, Any]]) -> str:
    """Markdown list of the tokens picked at rank 2 or lower."""
    picks = [f"- position {r['position']}: **{html.escape(visible(_chosen(r)[1]))}** (rank {r['rank']})"
             for r in records if r["rank"] > 1]
    return "\n".join(picks) if picks else "*Every token so far was the most likely one.*"


def last_tokens(records: list[dict[str, Any]], count: int = 10) -> str:
    """The last tokens with their probability before sampling."""
    shown = [f"`{visible(_chosen(r)[1])}` {_chosen(r)[3]:.0%}" for r in records[-count:]]
    return " · ".join(shown) if shown else "*No tokens yet.*"


def rank_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plot data: the rank of every pick over the answer."""
    return [{"position": r["position"], "rank": r["rank"]} for r in records]


def token_view(records: list[dict[str, Any]]) -> str:
    """The answer as tokens coloured by the chosen token's probability; hovering shows the id and
    the alternatives."""
    if not records:
        return "<p><em>Turn on learning mode and start: the answer's tokens appear here.</em></p>"
    spans = []
    for r in records:
        token, piece, _logit, prob, _stages, _removed = _chosen(r)
        alternatives = ", ".join(f"{visible(c[1])} {c[3]:.1%}" for c in r["candidates"] if c[0] != token)[:400]
        # Green for confident picks, red for unlikely ones.
        hue = int(120 * max(0.0, min(1.0, prob)))
        tip = f"id {token} · p {prob:.1%} · rank {r['rank']} · alternatives: {alternatives}"
        spans.append(
            f'<span class="token" title="{html.escape(tip, quote=True)}" data-position="{r["position"]}" '
            f'style="background:hsla({hue},70%,40%,0.55);border-radius:3px;padding:0 1px;margin:0 1px;'
            f'white-space:pre-wrap">{html.escape(piece)}</span>'
        )
    return f'<div id="token-spans" style="line-height:1.9;font-family:monospace">{"".join(spans)}</div>'
