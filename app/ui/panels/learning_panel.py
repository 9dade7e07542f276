"""The Learning tab: learning mode's switch and stepping, how each token was chosen (candidates per
sampler stage, plots, unlikely picks, the answer as tokens), and branches (take another candidate at
a position and let the model go on). It shows a live run, a reopened run and its branches alike."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr
import pandas as pd

from app.core.branching import BranchPoint
from app.core.errors import ChainStudioError
from app.core.events import AnswerFinished, AnswerStarted, AnswerToken, BranchFinished, ChainEvent, RunStarted
from app.core.learning import TokenChoice
from app.services import Services
from app.ui import learning_view
from app.ui.page import PageHandles, Panel, RunData, session_of

PLOT_INTERVAL_SECONDS = 0.5  # plots and the token view redraw at most this often while streaming
STEPPING = {"off": "off", "delay": "delay", "next token": "manual"}
ORIGINAL = "original answer"


@dataclass(frozen=True)
class Branch:
    """One answer of the branch list: the original or a branch grown from it."""

    label: str
    point: BranchPoint
    choices: tuple[TokenChoice, ...]
    text: str


@dataclass
class LearningPanel(Panel):
    enabled: gr.Checkbox
    top: gr.Slider
    stepping: gr.Radio
    step_delay: gr.Number
    last: gr.Markdown
    table: gr.HTML
    stage: gr.Dropdown
    bars: gr.BarPlot
    unlikely: gr.Markdown
    ranks: gr.LinePlot
    tokens: gr.HTML
    branch_pick: gr.Radio
    position: gr.Number
    candidate: gr.Dropdown
    branch_button: gr.Button
    branch_text: gr.Markdown
    branches: gr.State  # list[Branch]
    choices: gr.State  # the TokenChoices shown

    def views(self) -> list[Any]:
        """The components that show one answer's tokens."""
        return [self.last, self.table, self.stage, self.bars, self.unlikely, self.ranks, self.tokens]

    def run_inputs(self) -> list[Any]:
        return [self.enabled, self.top, self.stepping, self.step_delay, self.stage]

    def run_outputs(self) -> list[Any]:
        return [*self.views(), self.choices, self.branches, self.branch_pick, self.branch_text]

    def spec_fields(self, data: RunData) -> dict[str, Any]:
        return {"learning_top": int(data[self.top] or 10) if data[self.enabled] else 0,
                "stepping": STEPPING.get(data[self.stepping] or "off", "off"),
                "step_delay": float(data[self.step_delay] or 0)}

    def run_view(self, data: RunData, services: Services) -> LearningRunView | None:
        return LearningRunView(self, str(data[self.stage] or learning_view.BEFORE)) if data[self.enabled] else None


def build(services: Services | None = None) -> LearningPanel:
    """Lay out the Learning tab (wired by `wire`)."""
    enabled = gr.Checkbox(label="Learning mode: see how every token is chosen", value=False, elem_id="option-learning")
    with gr.Row():
        top = gr.Slider(1, 100, value=10, step=1, label="Candidates per token", elem_id="learning-top", scale=2)
        stepping = gr.Radio(list(STEPPING), value="off", label="Stepping", elem_id="stepping", scale=2)
        step_delay = gr.Number(label="Delay (s)", value=0.5, minimum=0, maximum=60, elem_id="step-delay", scale=1)
    gr.Markdown("**Last tokens** (probability before sampling)")
    last = gr.Markdown(learning_view.last_tokens([]), elem_id="learning-last")
    gr.Markdown(learning_view.STAGES_NOTE, elem_classes=["small-note"])
    table = gr.HTML(learning_view.candidates_table(None), elem_id="learning-table", label="Current token")
    stage = gr.Dropdown(choices=[learning_view.BEFORE], value=learning_view.BEFORE, label="Plot the probabilities",
                        elem_id="learning-stage")
    bars = gr.BarPlot(x="token", y="probability", color="pick", elem_id="learning-bars", sort="-y",
                      label="Candidates of the last token", x_label_angle=-45, height=320)
    gr.Markdown("**Unlikely picks** (tokens chosen at rank 2 or lower)")
    unlikely = gr.Markdown(learning_view.unlikely_picks([]), elem_id="learning-unlikely")
    ranks = gr.LinePlot(x="position", y="rank", elem_id="learning-ranks", label="Rank of each pick over the answer",
                        height=240)
    gr.Markdown("**The answer as tokens** (hover a token for its id and alternatives)")
    tokens = gr.HTML(learning_view.token_view([]), elem_id="token-view")
    gr.Markdown("**Branches**: take another candidate at a position and let the model go on")
    branch_pick = gr.Radio(choices=[], label="Branches of the last answer", elem_id="branches")
    with gr.Row():
        position = gr.Number(label="Position", value=0, precision=0, minimum=0, elem_id="branch-position", scale=1)
        candidate = gr.Dropdown(choices=[], label="Candidate", elem_id="branch-token", scale=3)
        branch_button = gr.Button("Branch here", elem_id="branch-button", scale=1)
    branch_text = gr.Markdown("", elem_id="branch-text")
    return LearningPanel(enabled, top, stepping, step_delay, last, table, stage, bars, unlikely, ranks, tokens,
                         branch_pick, position, candidate, branch_button, branch_text, gr.State([]), gr.State([]))


def view_values(panel: LearningPanel, choices: list[TokenChoice], stage: str, plots: bool = True) -> dict[Any, Any]:
    """The tab's values for one answer's tokens (`plots`: also the plots and the token view)."""
    last = choices[-1] if choices else None
    stages = learning_view.stage_choices(last)
    stage = stage if stage in stages else learning_view.BEFORE
    values: dict[Any, Any] = {
        panel.last: learning_view.last_tokens(choices),
        panel.table: learning_view.candidates_table(last),
        panel.unlikely: learning_view.unlikely_picks(choices),
        panel.choices: choices,
    }
    if plots:
        values[panel.stage] = gr.update(choices=stages, value=stage)
        values[panel.bars] = pd.DataFrame(learning_view.probability_rows(last, stage)) if last else None
        values[panel.ranks] = pd.DataFrame(learning_view.rank_rows(choices)) if choices else None
        values[panel.tokens] = learning_view.token_view(choices)
    return values


def branch_list_values(panel: LearningPanel, branches: list[Branch], shown: Branch | None) -> dict[Any, Any]:
    """The branch list with `shown` selected."""
    return {panel.branches: branches,
            panel.branch_pick: gr.update(choices=[b.label for b in branches], value=shown.label if shown else None),
            panel.branch_text: shown.text if shown else ""}


class LearningRunView:
    """The Learning tab while a run streams: tokens as they come, plots coalesced, and the finished
    answer as the root of its branch list."""

    def __init__(self, panel: LearningPanel, stage: str) -> None:
        self.panel = panel
        self.stage = stage
        self.choices: list[TokenChoice] = []
        self.run_id: int | None = None
        self.finished: Branch | None = None
        self._plotted = 0.0

    def on_event(self, event: ChainEvent) -> None:
        if isinstance(event, RunStarted):
            self.run_id = event.run_id
        elif isinstance(event, AnswerStarted):
            self.choices = []
        elif isinstance(event, AnswerToken) and event.choice is not None:
            self.choices.append(event.choice)
        elif isinstance(event, AnswerFinished) and self.run_id is not None and event.answer.choices:
            answer = event.answer
            self.finished = Branch(ORIGINAL, BranchPoint.from_answer(self.run_id, answer), answer.choices, answer.text)

    def values(self, complete: bool) -> dict[Any, Any]:
        now = time.monotonic()
        plots = complete or now - self._plotted >= PLOT_INTERVAL_SECONDS
        if plots:
            self._plotted = now
        values = view_values(self.panel, list(self.choices), self.stage, plots)
        if complete and self.finished is not None:
            values.update(branch_list_values(self.panel, [self.finished], self.finished))
        return values


def branches_of_run(services: Services, run_id: int) -> tuple[list[Branch], list[TokenChoice]]:
    """A journaled run's branch list (the last learning-mode answer and the branches grown from it,
    each labelled as when it was made) and the tokens to show first."""
    stored = services.journal.stored_run(run_id)
    if stored is None:
        return [], []
    by_seq = {a.index: a for a in stored.answers}
    branch_seqs = {b.seq for b in stored.branches}
    roots = [a for a in stored.answers if a.choices and a.index not in branch_seqs]
    if not roots:
        return [], []
    root = roots[-1]
    branches = [Branch(ORIGINAL, BranchPoint.from_answer(run_id, root), root.choices, root.text)]
    labels = {root.index: ORIGINAL}
    for link in stored.branches:
        answer, parent = by_seq.get(link.seq), labels.get(link.parent_seq)
        if answer is None or parent is None:
            continue
        label = branch_label(len(branches), parent, link.position, answer.choices, link.token)
        labels[link.seq] = label
        branches.append(Branch(label, BranchPoint.from_answer(run_id, answer), answer.choices, answer.text))
    return branches, list(root.choices)


def branch_label(number: int, parent: str, position: int, choices: tuple[TokenChoice, ...], token: int) -> str:
    """"branch 2: branch 1 → position 3 takes ␣tiny"."""
    taken = next((c.piece for c in choices[position].candidates if c.token_id == token), str(token)) \
        if position < len(choices) else str(token)
    return f"branch {number}: {parent.split(':')[0]} → position {position} takes {learning_view.visible(taken)}"


def selected(branches: list[Branch], label: str | None) -> Branch | None:
    return next((b for b in branches if b.label == label), branches[0] if branches else None)


def candidates_at(branches: list[Branch], label: str | None, position: float | None) -> Any:
    """The branch dropdown's choices: the other candidates at `position` of the chosen branch."""
    branch = selected(branches, label)
    index = int(position or 0)
    if branch is None or not 0 <= index < len(branch.choices):
        return gr.update(choices=[], value=None)
    choices = learning_view.candidate_choices(branch.choices[index])
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


def show_branch(panel: LearningPanel, branches: list[Branch], label: str | None, stage: str) -> dict[Any, Any]:
    """Show one answer of the branch list."""
    branch = selected(branches, label)
    values = view_values(panel, list(branch.choices) if branch else [], stage)
    values[panel.branch_text] = branch.text if branch else ""
    return values


def grow(panel: LearningPanel, page: PageHandles, services: Services, session: str, branches: list[Branch],
         label: str | None, position: float | None, token: int | None, top: float, stage: str,
         ) -> Iterator[dict[Any, Any]]:
    """"Branch here": grow a branch from the chosen answer, showing its progress in the status line,
    then select it in the branch list."""
    branch = selected(branches, label)
    if branch is None or token is None:
        yield {page.status: "⚠️ Run in learning mode, then choose a position and a candidate."}
        return
    at = int(position or 0)
    runner = services.runner_for(session)
    if runner.running:
        yield {page.status: "⚠️ A run is going in this tab: branch when it ends."}
        return
    number = len(branches)
    yield {page.status: f"Branch {number}: waiting for the model…" if services.run_lock.locked()
           else f"Branch {number}: generating…"}
    grown: list[TokenChoice] = []
    last_shown = 0.0
    try:
        with services.run_lock:
            for event in runner.branch(branch.point, at, int(token), int(top or 10)):
                if isinstance(event, AnswerToken):
                    if event.choice is not None:
                        grown.append(event.choice)
                    now = time.monotonic()
                    if now - last_shown >= PLOT_INTERVAL_SECONDS:
                        last_shown = now
                        yield {page.status: f"Branch {number}: {len(grown)} tokens…",
                               **view_values(panel, grown, stage, plots=False)}
                elif isinstance(event, BranchFinished):
                    answer = event.answer
                    new = Branch(branch_label(number, branch.label, at, answer.choices, int(token)),
                                 BranchPoint.from_answer(branch.point.run_id, answer), answer.choices, answer.text)
                    updated = [*branches, new]
                    yield {page.status: f"Branch {number} saved as answer {answer.index} of run {branch.point.run_id}.",
                           **view_values(panel, list(answer.choices), stage),
                           **branch_list_values(panel, updated, new)}
    except (ChainStudioError, ValueError) as exc:
        yield {page.status: f"⚠️ {exc}"}


def show_reopened(panel: LearningPanel, services: Services, run_id: float | None, stage: str) -> dict[Any, Any]:
    """A run reopened into the transcript: its learning records and branch tree, as they were."""
    branches, choices = branches_of_run(services, int(run_id)) if run_id else ([], [])
    values = view_values(panel, choices, stage)
    values.update(branch_list_values(panel, branches, branches[0] if branches else None))
    return values


def replot(panel: LearningPanel, choices: list[TokenChoice], stage: str) -> Any:
    return pd.DataFrame(learning_view.probability_rows(choices[-1], stage)) if choices else None


def one_more_token(services: Services, session: str) -> None:
    """"Next token" (manual stepping): one more token of this tab's answer."""
    services.runner_for(session).control.step()


def wire(panel: LearningPanel, services: Services, page: PageHandles) -> None:
    """Connect the tab's controls."""
    view_outputs = [*panel.views(), panel.choices]
    branch_outputs = [*view_outputs, panel.branches, panel.branch_pick, panel.branch_text, page.status]

    def on_next_token(request: gr.Request) -> None:
        one_more_token(services, session_of(request))

    def on_stage(choices: list[TokenChoice], stage: str) -> Any:
        return replot(panel, choices, stage)

    def on_pick(branches: list[Branch], label: str | None, stage: str) -> dict[Any, Any]:
        return show_branch(panel, branches, label, stage)

    def on_branch(branches: list[Branch], label: str | None, position: float | None, token: int | None,
                  top: float, stage: str, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from grow(panel, page, services, session_of(request), branches, label, position, token, top, stage)

    def on_reopened(run_id: float | None, stage: str) -> dict[Any, Any]:
        return show_reopened(panel, services, run_id, stage)

    page.next_token.click(on_next_token, None, None, queue=False)
    panel.stage.change(on_stage, [panel.choices, panel.stage], panel.bars)
    panel.branch_pick.input(on_pick, [panel.branches, panel.branch_pick, panel.stage],
                            [*view_outputs, panel.branch_text])
    for trigger in (panel.branch_pick.change, panel.position.change):
        trigger(candidates_at, [panel.branches, panel.branch_pick, panel.position], panel.candidate)
    panel.branch_button.click(on_branch, [panel.branches, panel.branch_pick, panel.position, panel.candidate,
                                          panel.top, panel.stage], branch_outputs, concurrency_limit=None)
    page.reopened_run.change(on_reopened, [page.reopened_run, panel.stage],
                             [*view_outputs, panel.branches, panel.branch_pick, panel.branch_text])
