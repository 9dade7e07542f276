"""What the Learning tab shows, from learning mode's per-token `TokenChoice`s (the live run's, or the
journal's for a reopened run, so both look exactly alike). No gradio here."""

from __future__ import annotations

import html
from typing import Any, Sequence

from app.core.learning import TokenChoice
from app.engines.logprobs import REMOTE_NOTE

BEFORE = "before sampling"
CONSTRAINT_STAGE = "constraint"  # the first stage of a constrained token (app/models/grammar_mask.py)
# Short column names for the sampler stages, with what each does for the header's tooltip.
STAGE_COLUMNS = {
    "constraint": ("constr.", "after the constraint (choices, regex, JSON schema or grammar): the tokens it rules "
                              "out drop to 0, the rest share their probability"),
    "penalties": ("pen.", "after the repeat, frequency and presence penalties"),
    "dry": ("DRY", "after DRY (penalises repeating sequences)"),
    "top_k": ("top-k", "after top_k (keeps the k most likely)"),
    "tfs_z": ("TFS", "after tail-free sampling (tfs_z)"),
    "typical_p": ("typ.", "after typical sampling (typical_p)"),
    "top_p": ("top-p", "after top_p (nucleus: the most likely until their sum reaches p)"),
    "min_p": ("min-p", "after min_p (drops tokens below min_p × the top probability)"),
    "xtc": ("XTC", "after XTC (sometimes removes the most likely tokens)"),
    "top_n_sigma": ("nσ", "after top-n-sigma (keeps logits within n standard deviations of the top)"),
    "temperature": ("temp.", "after temperature (the distribution the pick is drawn from)"),
    "mirostat": ("miro.", "after Mirostat (replaces top_k … top_n_sigma by its own truncation)"),
}
STAGES_NOTE = ("Only the stages this answer went through are shown, in the order applied (hover a "
               "column for what it does). Mirostat replaces top_k … top_n_sigma by one truncation.")
PLOT_CANDIDATES = 25  # the bar plot shows at most this many candidates
PLOT_LABEL_CHARS = 12


def visible(piece: str) -> str:
    """A token's text with spaces, tabs and line breaks made visible."""
    return piece.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥") or "∅"


def candidates_table(choice: TokenChoice | None) -> str:
    """The candidates of one token as an HTML table: rank, id, token, logit, probability before
    sampling and after each stage that was applied, and the stage that removed it."""
    if choice is None:
        return '<p class="learning-empty"><em>No token yet.</em></p>'
    heads = [("rank", "rank by raw logit"), ("id", "token id"), ("token", "the token (✔: the pick)"),
             ("logit", "raw logit"), ("p", "probability before sampling (softmax of the logits)")]
    if choice.remote:
        heads[0], heads[3], heads[4] = (("rank", "rank by the engine's probability"),
                                        ("logprob", "the engine's log-probability"),
                                        ("p", "the engine's probability (after its own sampling stages)"))
    heads += [STAGE_COLUMNS.get(stage, (stage, stage)) for stage in choice.stages]
    heads.append(("removed by", "the stage that removed the candidate"))
    header = "".join(f'<th title="{html.escape(tip, quote=True)}">{html.escape(name)}</th>' for name, tip in heads)
    rows = []
    for rank, c in enumerate(choice.candidates, start=1):
        mark = " ✔" if c.token_id == choice.chosen else ""
        cells = [str(rank), shown_id(c.token_id), html.escape(visible(c.piece)) + mark, f"{c.logit:.3f}",
                 f"{c.prob:.4f}"]
        cells += [f"{p:.4f}" for p in c.stage_probs]
        cells.append(html.escape(c.removed_by or ""))
        chosen = ' class="chosen"' if mark else ""
        rows.append(f"<tr{chosen}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    remote = f'<p class="learning-remote"><em>{html.escape(REMOTE_NOTE)}</em></p>' if choice.remote else ""
    return (f'{remote}<div class="learning-table-box"><table class="learning-table"><thead><tr>{header}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def shown_id(token_id: int) -> str:
    """A token id as the table shows it: none for a remote engine's pieces (their ids are the studio's)."""
    return str(token_id) if token_id >= 0 else "—"


def stage_choices(choice: TokenChoice | None) -> list[str]:
    """What the plot can show for this token: before sampling, then each applied stage."""
    return [BEFORE, *(choice.stages if choice is not None else ())]


def probability_rows(choice: TokenChoice, stage: str) -> list[dict[str, Any]]:
    """Bar-plot data: each candidate's probability before sampling or after `stage` (labels cut
    short so they stay legible; the id keeps them apart)."""
    rows = []
    for c in choice.candidates[:PLOT_CANDIDATES]:
        by_stage = dict(zip(choice.stages, c.stage_probs, strict=False))
        value = c.prob if stage == BEFORE else by_stage.get(stage, 0.0)
        piece = visible(c.piece)
        if len(piece) > PLOT_LABEL_CHARS:
            piece = piece[: PLOT_LABEL_CHARS - 1] + "…"
        rows.append({"token": f"{piece} ({shown_id(c.token_id)})" if not choice.remote else piece, "probability": value,
                     "pick": "chosen" if c.token_id == choice.chosen else "other"})
    return rows


def unlikely_picks(choices: Sequence[TokenChoice]) -> str:
    """Markdown list of the tokens picked at rank 2 or lower."""
    picks = [f"- position {c.position}: **{html.escape(visible(c.chosen_candidate.piece))}** (rank {c.chosen_rank})"
             for c in choices if c.chosen_rank > 1]
    return "\n".join(picks) if picks else "*Every token so far was the most likely one.*"


def last_tokens(choices: Sequence[TokenChoice], count: int = 10) -> str:
    """The last tokens with their probability before sampling."""
    shown = [f"`{visible(c.chosen_candidate.piece)}` {c.chosen_candidate.prob:.0%}" for c in choices[-count:]]
    return " · ".join(shown) if shown else "*No tokens yet.*"


def rank_rows(choices: Sequence[TokenChoice]) -> list[dict[str, Any]]:
    """Plot data: the rank of every pick over the answer."""
    return [{"position": c.position, "rank": c.chosen_rank} for c in choices]


def token_view(choices: Sequence[TokenChoice]) -> str:
    """The answer as tokens coloured by the chosen token's probability; hovering shows the id and
    the alternatives."""
    if not choices:
        return "<p><em>Turn on learning mode and start: the answer's tokens appear here.</em></p>"
    spans = []
    for c in choices:
        chosen = c.chosen_candidate
        if c.stages[:1] == (CONSTRAINT_STAGE,):
            tip = constrained_tip(c)
            shade = chosen.stage_probs[0]  # how sure the pick was among what the constraint allowed
        else:
            alternatives = ", ".join(f"{visible(o.piece)} {o.prob:.1%}" for o in c.candidates
                                     if o.token_id != c.chosen)[:400]
            tip = (f"{'' if c.remote else f'id {c.chosen} · '}p {chosen.prob:.1%} · rank {c.chosen_rank} · "
                   f"alternatives: {alternatives}")
            shade = chosen.prob
        # Green for confident picks, red for unlikely ones.
        hue = int(120 * max(0.0, min(1.0, shade)))
        spans.append(
            f'<span class="token" title="{html.escape(tip, quote=True)}" data-position="{c.position}" '
            f'style="background:hsla({hue},70%,40%,0.55);border-radius:3px;padding:0 1px;margin:0 1px;'
            f'white-space:pre-wrap">{html.escape(chosen.piece)}</span>'
        )
    return f'<div id="token-spans" style="line-height:1.9;font-family:monospace">{"".join(spans)}</div>'


def constrained_tip(choice: TokenChoice) -> str:
    """A constrained token's tooltip: its probability before and after the constraint, the valid
    alternatives first (after the constraint), then what the constraint ruled out (before it)."""
    chosen = choice.chosen_candidate
    valid = ", ".join(f"{visible(o.piece)} {o.stage_probs[0]:.1%}" for o in choice.candidates
                      if o.removed_by != CONSTRAINT_STAGE and o.token_id != choice.chosen)[:300]
    ruled_out = ", ".join(f"{visible(o.piece)} {o.prob:.1%}" for o in choice.candidates
                          if o.removed_by == CONSTRAINT_STAGE)[:200]
    return (f"id {choice.chosen} · p {chosen.prob:.1%} before the constraint, {chosen.stage_probs[0]:.1%} after · "
            f"rank {choice.chosen_rank} · valid alternatives: {valid or 'none'}"
            + (f" · ruled out by the constraint: {ruled_out}" if ruled_out else ""))


def candidate_choices(choice: TokenChoice) -> list[tuple[str, int]]:
    """The other candidates at one position, as (label, token id) for the branch dropdown."""
    return [(f"{visible(c.piece)} ({'' if choice.remote else f'id {c.token_id}, '}{c.prob:.1%})", c.token_id)
            for c in choice.candidates if c.token_id != choice.chosen]
