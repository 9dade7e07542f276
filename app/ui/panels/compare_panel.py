"""The Compare tab: the Models list's models side by side at one prefix (their most likely next
tokens, and where their greedy continuations part), and the differences between two journaled runs
or answers (where they part, a text diff, both as tokens)."""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from app.core.errors import ChainStudioError
from app.core.events import AnswerFinished, AnswerStarted, Failure, RunFinished, RunStarted
from app.core.grid import (
    JUDGE_GRAMMAR,
    JUDGE_PROMPT,
    SCORES,
    SORT_KEYS,
    YOU,
    Grid,
    grid_spec,
    judge_prompt,
    parse_score,
)
from app.core.hub_links import looks_like_link
from app.core.next_tokens import DEFAULT_TOKENS, DEFAULT_TOP, MAX_TOKENS, compare_next_tokens
from app.core.prompt_list import parse_prompt_list
from app.core.replay import (
    AnswerPair,
    compare_answers,
    pair_answers,
    prepare_replay,
    replay_sentence,
    replay_verdict,
    text_diff,
)
from app.services import Services
from app.ui import chain_run, compare_view
from app.ui.page import PageHandles, Panel, RunData, session_of
from app.ui.panels.history_panel import HistoryPanel

FIRST_ITEM = "the first prompt item"
THIS_TEXT = "this text (raw)"
LAST_ANSWER = "the last answer, up to a token"
SOURCES = (FIRST_ITEM, THIS_TEXT, LAST_ANSWER)


@dataclass
class ComparePanel(Panel):
    source: gr.Radio
    text: gr.Textbox
    position: gr.Number
    top: gr.Slider
    tokens: gr.Number
    compare: gr.Button
    result: gr.HTML
    diff_a: gr.Textbox
    diff_b: gr.Textbox
    diff_button: gr.Button
    replay_button: gr.Button
    diff_result: gr.HTML
    grid_run: gr.Button
    grid_id: gr.Number
    grid_open: gr.Button
    grid_sort: gr.Dropdown
    grid_view: gr.HTML
    rate_model: gr.Dropdown
    rate_item: gr.Number
    rate_score: gr.Radio
    rate_button: gr.Button
    judge_model: gr.Textbox
    judge_prompt: gr.Textbox
    judge_button: gr.Button
    export_csv: gr.Button
    export_json: gr.Button
    export_file: gr.File
    grid_status: gr.Markdown


def build(services: Services | None = None) -> ComparePanel:
    """Lay out the Compare tab (wired by `wire`)."""
    gr.Markdown("**Next tokens, model by model**: every model of the Models list at one prefix (local "
                "models, one in memory at a time), their most likely next tokens and their greedy "
                "continuations, the token where those part marked.")
    with gr.Row():
        source = gr.Radio(list(SOURCES), value=FIRST_ITEM, label="Prefix", elem_id="compare-source", scale=3)
        position = gr.Number(label="Tokens of the last answer", value=0, precision=0, minimum=0,
                             elem_id="compare-position", scale=1)
    text = gr.Textbox(label="Text (sent as is)", lines=2, elem_id="compare-text")
    with gr.Row():
        top = gr.Slider(1, 50, value=DEFAULT_TOP, step=1, label="Next tokens per model", elem_id="compare-top")
        tokens = gr.Number(label="Continuation compared (tokens)", value=DEFAULT_TOKENS, precision=0, minimum=1,
                           maximum=MAX_TOKENS, elem_id="compare-tokens")
    compare = gr.Button("Compare next tokens", elem_id="compare-next")
    result = gr.HTML("", elem_id="next-tokens")
    gr.Markdown("**Diff two runs or answers** from the journal: a run id (`12`) or an answer (`12:3`, "
                "answer 3 of run 12). **Replay run A** runs run A again with its settings and each answer's "
                "seed, then diffs the two (as `python -m app replay RUN_ID`).")
    with gr.Row():
        diff_a = gr.Textbox(label="A", placeholder="12 or 12:3", elem_id="diff-a", scale=2)
        diff_b = gr.Textbox(label="B", placeholder="13 or 13:3", elem_id="diff-b", scale=2)
        diff_button = gr.Button("Diff", elem_id="diff-button", scale=1)
        replay_button = gr.Button("Replay run A", elem_id="replay-button", scale=1)
    diff_result = gr.HTML("", elem_id="diff-result")
    gr.Markdown("**Grid**: every model of the Models list answers every item of the prompt list once, on its "
                "own (local models and engines); a models × items table with each answer's metrics and a score.")
    with gr.Row():
        grid_run = gr.Button("Run the grid", elem_id="grid-run", scale=2)
        grid_id = gr.Number(label="Run", value=None, precision=0, elem_id="grid-id", scale=1)
        grid_open = gr.Button("Open as grid", elem_id="grid-open", scale=1)
        grid_sort = gr.Dropdown(list(SORT_KEYS), value="model", label="Sort models by", elem_id="grid-sort", scale=2)
    grid_status = gr.Markdown("", elem_id="grid-status")
    grid_view = gr.HTML("", elem_id="grid-table")
    with gr.Row():
        rate_model = gr.Dropdown([], label="Model", elem_id="grid-rate-model", scale=3)
        rate_item = gr.Number(label="Item", value=1, precision=0, minimum=1, elem_id="grid-rate-item", scale=1)
        rate_score = gr.Radio([str(n) for n in SCORES], label="Your score", elem_id="grid-rate-score", scale=2)
        rate_button = gr.Button("Save score", elem_id="grid-rate", scale=1)
    with gr.Row():
        judge_model = gr.Textbox(label="Judge model (a file of the Models folder, or a path)", elem_id="grid-judge-model",
                                 scale=2)
        judge_button = gr.Button("Judge every answer", elem_id="grid-judge", scale=1)
    judge_prompt = gr.Textbox(value=JUDGE_PROMPT, label="Judge's instruction (the question and the answer follow it)",
                              lines=2, elem_id="grid-judge-prompt")
    with gr.Row():
        export_csv = gr.Button("Export CSV", elem_id="grid-export-csv")
        export_json = gr.Button("Export JSON", elem_id="grid-export-json")
    export_file = gr.File(label="Exported grid", elem_id="grid-file", interactive=False)
    return ComparePanel(source, text, position, top, tokens, compare, result, diff_a, diff_b, diff_button,
                        replay_button, diff_result, grid_run, grid_id, grid_open, grid_sort, grid_view, rate_model, rate_item,
                        rate_score, rate_button, judge_model, judge_prompt, judge_button, export_csv, export_json,
                        export_file, grid_status)


def _prefix(services: Services, data: RunData, panel: ComparePanel, page: PageHandles,
            last_run: int | None) -> tuple[str, bool, str]:
    """The prefix the tab's choice gives: (text, raw, system prompt)."""
    source = data[panel.source]
    if source == THIS_TEXT:
        text = str(data[panel.text] or "")
        if not text:
            raise ChainStudioError("type the text to compare the models at")
        return text, True, ""
    if source == LAST_ANSWER:
        if not last_run:
            raise ChainStudioError("run a chain first: its last answer is the prefix")
        stored = services.journal.stored_run(int(last_run))
        answers = [a for a in stored.answers if stored.branch_of(a.index) is None] if stored else []
        if not answers or not answers[-1].sent:
            raise ChainStudioError(f"run {last_run} has no answer to compare at")
        answer = answers[-1]
        position = int(data[panel.position] or 0)
        if not 0 <= position <= len(answer.pieces):
            raise ChainStudioError(f"the last answer has {len(answer.pieces)} tokens: choose 0 to that")
        return answer.sent + "".join(piece for _token, piece in answer.pieces[:position]), True, ""
    prompts = parse_prompt_list(str(data[page.prompt] or ""))
    return prompts.items[0].prompt(prompts.pre_prompt, None), False, str(data[page.system] or "")


def bumped(page: PageHandles, data: RunData) -> int:
    """The next value of the page's model-changed counter: this tab's work left another model in
    memory (the Models panel's "In memory" line follows it)."""
    return int(data.get(page.model_changed) or 0) + 1


def next_tokens(services: Services, page: PageHandles, panel: ComparePanel, data: RunData, session: str,
                last_run: int | None) -> Iterator[dict[Any, Any]]:
    """Compare the Models list's local models at the chosen prefix, one loaded at a time."""
    try:
        if services.runner_for(session).running:
            raise ChainStudioError("a run is going in this tab: compare when it ends")
        spec = chain_run.build_spec(page, data)
        prefix, raw, system = _prefix(services, data, panel, page, last_run)
    except ChainStudioError as exc:
        yield {panel.result: f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>'}
        return
    local = [m for m in dict.fromkeys(spec.models) if services.engines.member(m) is None and not looks_like_link(m)]
    left_out = [m for m in spec.models if m not in local]
    if not local:
        yield {panel.result: '<p class="compare-error">⚠️ Put local models in the Models list: engines and '
                             "links are not compared (download a link first).</p>"}
        return
    yield {page.status: f"Comparing {len(local)} models…" if not services.run_lock.locked()
           else f"Waiting for the model: {chain_run.waiting_for(services)}…"}
    try:
        with services.run_lock:
            comparison = compare_next_tokens(services.backend, local, prefix, raw=raw, top=int(data[panel.top] or 10),
                                             tokens=int(data[panel.tokens] or DEFAULT_TOKENS), system=system,
                                             load=spec.load)
    except ChainStudioError as exc:
        yield {panel.result: f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>', page.status: ""}
        return
    note = (f'<p class="compare-note">Not compared (engines and links): {html.escape(", ".join(left_out))}</p>'
            if left_out else "")
    yield {panel.result: compare_view.next_tokens_html(comparison) + note,
           page.status: f"Compared {len(local)} models.", page.model_changed: bumped(page, data)}


def diff(services: Services, first: str, second: str) -> str:
    """The Diff button: two answers, or two runs answer by answer."""
    from app.cli_replay import parse_reference

    try:
        (run_a, seq_a), (run_b, seq_b) = parse_reference(first or ""), parse_reference(second or "")
    except ValueError as exc:
        return f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>'
    if (seq_a is None) != (seq_b is None):
        return '<p class="compare-error">⚠️ Compare a run with a run (12 and 13) or an answer with an answer (12:1 and 13:1).</p>'
    stored = {run: services.journal.stored_run(run) for run in (run_a, run_b)}
    missing = [str(run) for run, kept in stored.items() if kept is None]
    if missing:
        return f'<p class="compare-error">⚠️ Run {html.escape(", ".join(missing))} is not in the journal.</p>'
    if seq_a is not None and seq_b is not None:
        a = next((x for x in stored[run_a].answers if x.index == seq_a), None)  # type: ignore[union-attr]
        b = next((x for x in stored[run_b].answers if x.index == seq_b), None)  # type: ignore[union-attr]
        pair = AnswerPair(seq_a, a, b, compare_answers(a, b) if a is not None and b is not None else None)
        return compare_view.answer_diff_html(pair, first, second,
                                             text_diff(a.text if a else "", b.text if b else "", first, second))
    pairs = pair_answers(*(list(stored[run].answers) for run in (run_a, run_b)))  # type: ignore[union-attr]
    differing = [pair for pair in pairs if not pair.identical]
    head = (f"<p>Runs {run_a} and {run_b}: {len(pairs)} answers paired by their place in the plan, "
            f"{len(differing)} differ.</p>")
    parts = []
    for pair in pairs:
        known = pair.a or pair.b
        label = f"answer {pair.index} · {known.model} · item {known.item}" if known else f"answer {pair.index}"
        body = compare_view.answer_diff_html(pair, f"{run_a}:{pair.index}", f"{run_b}:{pair.index}", text_diff(
            pair.a.text if pair.a else "", pair.b.text if pair.b else "", str(run_a), str(run_b)))
        opened = " open" if pair is (differing[0] if differing else None) else ""
        parts.append(f"<details{opened}><summary>{html.escape(label)}: "
                     f"{'identical' if pair.identical else 'differs'}</summary>{body}</details>")
    return f'<div id="run-diff">{head}{"".join(parts)}</div>'


def replay(services: Services, page: PageHandles, panel: ComparePanel, data: RunData,
           session: str) -> Iterator[dict[Any, Any]]:
    """"Replay run A": the run again, each answer with its seed, journaled from "replay"; then
    whether it came out token for token the same, and the two runs' diff."""
    from app.cli_replay import parse_reference

    runner = services.runner_for(session)
    try:
        run_id, seq = parse_reference(str(data[panel.diff_a] or ""))
        if seq is not None:
            raise ValueError("replay takes a run (12), not an answer")
        stored = services.journal.stored_run(run_id)
        if stored is None:
            raise ChainStudioError(f"run {run_id} is not in the journal")
        if runner.running:
            raise ChainStudioError("a run is going in this tab: replay when it ends")
        setup = prepare_replay(stored.spec, stored.answers, lambda index: stored.branch_of(index) is not None)
        runner.plan(setup.spec)
        source = chain_run.model_source(page, data, services)
    except (ChainStudioError, ValueError) as exc:
        yield {panel.diff_result: f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>'}
        return
    replay_id: int | None = None
    replayed = []
    try:
        with chain_run.model_turn(services, setup.spec.models):
            for event in runner.run(setup.spec, source, seeds=setup.seeds, origin="replay"):
                if isinstance(event, RunStarted):
                    replay_id = event.run_id
                elif isinstance(event, AnswerStarted):
                    yield {page.status: f"Replaying run {run_id}: answer {event.index}…"}
                elif isinstance(event, AnswerFinished):
                    replayed.append(event.answer)
    except ChainStudioError as exc:
        yield {panel.diff_result: f'<p class="compare-error">⚠️ {html.escape(str(exc))}</p>'}
        return
    line = replay_verdict(run_id, replay_id, setup, replayed)
    sentence = "<br>".join(html.escape(part) for part in replay_sentence(line).splitlines())
    yield {panel.diff_result: f'<p class="replay-verdict">{sentence}</p>' + diff(services, str(run_id), str(replay_id)),
           panel.diff_b: str(replay_id), page.status: f"Replayed run {run_id} as run {replay_id}.",
           page.model_changed: bumped(page, data)}


def load_grid(services: Services, run_id: int | None) -> Grid:
    """The grid of a journaled run (its own answers, not branches) with its scores."""
    stored = services.journal.stored_run(int(run_id)) if run_id else None
    if stored is None:
        raise ChainStudioError(f"run {run_id} is not in the journal" if run_id else "choose a run")
    answers = [a for a in stored.answers if stored.branch_of(a.index) is None]
    if not answers:
        raise ChainStudioError(f"run {run_id} has no answers")
    return Grid.of(stored.summary.id, answers, services.journal.ratings(stored.summary.id))


def grid_values(panel: ComparePanel, grid: Grid, order: str, said: str) -> dict[Any, Any]:
    """The grid's table, the rating dropdown and the run number."""
    return {panel.grid_view: compare_view.grid_html(grid, grid.sorted_models(order or "model")),
            panel.rate_model: gr.update(choices=list(grid.models), value=grid.models[0] if grid.models else None),
            panel.grid_id: grid.run_id, panel.grid_status: said}


def run_grid(services: Services, page: PageHandles, panel: ComparePanel, data: RunData,
             session: str) -> Iterator[dict[Any, Any]]:
    """"Run the grid": the prompt list to every model, each answer on its own, journaled as a grid run."""
    runner = services.runner_for(session)
    try:
        if runner.running:
            raise ChainStudioError("a run is going in this tab: run the grid when it ends")
        spec = grid_spec(chain_run.build_spec(page, data))
        planned = len(runner.plan(spec))
        source = chain_run.model_source(page, data, services)
    except ChainStudioError as exc:
        yield {panel.grid_status: f"⚠️ {html.escape(str(exc))}"}
        return
    if chain_run.must_wait(services, spec.models):
        yield {panel.grid_status: f"Waiting for the model: {chain_run.waiting_for(services)}…"}
    run_id: int | None = None
    failures: list[str] = []
    try:
        with chain_run.model_turn(services, spec.models):
            for event in runner.run(spec, source, origin="grid"):
                if isinstance(event, RunStarted):
                    run_id = event.run_id
                elif isinstance(event, AnswerStarted):
                    yield {panel.grid_status: f"Grid: answer {event.index} of {planned} "
                                              f"({html.escape(event.model)}, item {event.item})…"}
                elif isinstance(event, Failure):
                    failures.append(f"{event.model}: {event.message}")
                elif isinstance(event, RunFinished) and run_id is not None:
                    said = f"Grid run {run_id}: {event.answers} answers ({event.reason})."
                    if failures:
                        said += " ⚠️ " + html.escape("; ".join(failures))
                    yield {**grid_values(panel, load_grid(services, run_id), str(data[panel.grid_sort]), said),
                           page.model_changed: bumped(page, data)}
    except ChainStudioError as exc:
        yield {panel.grid_status: f"⚠️ {html.escape(str(exc))}"}


def open_grid(services: Services, panel: ComparePanel, run_id: float | None, order: str) -> dict[Any, Any]:
    """"Open as grid" (here or in History): any journaled run as a grid."""
    try:
        grid = load_grid(services, int(run_id) if run_id else None)
    except ChainStudioError as exc:
        return {panel.grid_status: f"⚠️ {html.escape(str(exc))}"}
    return grid_values(panel, grid, order, f"Run {grid.run_id} as a grid.")


def rate(services: Services, panel: ComparePanel, run_id: float | None, model: str | None, item: float | None,
         score: str | None, order: str) -> dict[Any, Any]:
    """"Save score": the person's 1-5 for one cell, kept in the journal."""
    try:
        grid = load_grid(services, int(run_id) if run_id else None)
        cell = grid.cell(model or "", int(item or 0))
        if cell is None:
            raise ChainStudioError(f"{model} has no answer to item {int(item or 0)} in run {grid.run_id}")
        if score not in [str(n) for n in SCORES]:
            raise ChainStudioError("choose a score from 1 to 5")
        services.journal.rate(grid.run_id, cell.answer.index, float(score), YOU)
        grid = load_grid(services, grid.run_id)
    except ChainStudioError as exc:
        return {panel.grid_status: f"⚠️ {html.escape(str(exc))}"}
    values = grid_values(panel, grid, order, f"Scored {html.escape(str(model))}, item {int(item or 0)}: {score}.")
    values.pop(panel.rate_model)  # keep the model chosen
    return values


def judge(services: Services, page: PageHandles, panel: ComparePanel, data: RunData,
          session: str) -> Iterator[dict[Any, Any]]:
    """"Judge every answer": a local judge model scores each cell. Its reply is held to one digit 1-5
    by a grammar (constrained decoding), so any model gives a number; the number is read from it."""
    try:
        if services.runner_for(session).running:
            raise ChainStudioError("a run is going in this tab: judge when it ends")
        grid = load_grid(services, data[panel.grid_id])
        name = str(data[panel.judge_model] or "").strip()
        if not name:
            raise ChainStudioError("name the judge model (a file of the Models folder, or a path)")
        spec = chain_run.build_spec(page, data)
        judge_path = _judge_path(name, spec.models)
    except ChainStudioError as exc:
        yield {panel.grid_status: f"⚠️ {html.escape(str(exc))}"}
        return
    from app.core.backend import GenerationRequest, GenerationResult
    from app.core.sampling import SamplingParams

    # The person's own scores stay: the judge scores the other cells.
    cells = [(model, number) for model in grid.models for number, _p in grid.items
             if (cell := grid.cell(model, number)) is not None and cell.source != YOU]
    kept = sum(1 for cell in grid.cells.values() if cell.source == YOU)
    unparsed: list[str] = []
    source = f"judge: {Path(judge_path).name}"
    try:
        with services.run_lock:
            services.backend.load(judge_path, spec.load)
            for done, (model, number) in enumerate(cells, start=1):
                cell = grid.cell(model, number)
                assert cell is not None
                yield {panel.grid_status: f"Judging {done} of {len(cells)} ({html.escape(model)}, item {number})…"}
                request = dataclasses.replace(GenerationRequest.chat(
                    judge_prompt(str(data[panel.judge_prompt] or ""), cell.answer.prompt, cell.answer.text),
                    params=SamplingParams(temperature=0.0, max_tokens=4, seed=0)), grammar=JUDGE_GRAMMAR)
                result = next(e for e in services.backend.generate(request) if isinstance(e, GenerationResult))
                score = parse_score(result.text)
                if score is None:
                    unparsed.append(f"{model} item {number}: {result.text.strip()[:40]!r}")
                    continue
                services.journal.rate(grid.run_id, cell.answer.index, score, source)
    except ChainStudioError as exc:
        yield {panel.grid_status: f"⚠️ {html.escape(str(exc))}"}
        return
    said = f"Judged by {html.escape(Path(judge_path).name)}: {len(cells) - len(unparsed)} of {len(cells)} scored."
    if kept:
        said += f" Your {kept} score{'s' if kept != 1 else ''} kept."
    if unparsed:
        said += " No number 1-5 in: " + html.escape("; ".join(unparsed))
    yield {**grid_values(panel, load_grid(services, grid.run_id), str(data[panel.grid_sort]), said),
           page.model_changed: bumped(page, data)}


def _judge_path(name: str, models: tuple[str, ...]) -> str:
    """The judge's file: a path, or a name found among the Models list's files or in its folder."""
    given = Path(name).expanduser()
    if given.is_absolute():
        if not given.exists():
            raise ChainStudioError(f"the judge model {name} does not exist")
        return str(given)
    for model in models:
        if Path(model).name == name:
            return model
    folders = {Path(model).parent for model in models if Path(model).is_absolute()}
    for folder in folders:
        if (folder / name).exists():
            return str(folder / name)
    raise ChainStudioError(f"the judge model {name} is neither in the Models list nor in its folder")


def export_grid(services: Services, run_id: float | None, kind: str) -> tuple[Any, str]:
    """The grid as a CSV or JSON file (in the data folder's exports/), for the download box."""
    from app.settings import data_dir

    try:
        grid = load_grid(services, int(run_id) if run_id else None)
    except ChainStudioError as exc:
        return None, f"⚠️ {html.escape(str(exc))}"
    folder = data_dir() / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"grid-run-{grid.run_id}.{kind}"
    path.write_text(grid.to_csv() if kind == "csv" else grid.to_json(), encoding="utf-8")
    return str(path), f"Exported run {grid.run_id} to {html.escape(str(path))}."


def wire(panel: ComparePanel, services: Services, page: PageHandles) -> None:
    """Connect the tab's controls."""
    inputs = chain_run.run_inputs(page) | {panel.source, panel.text, panel.position, panel.top, panel.tokens,
                                           page.last_run_store, page.prompt, page.system, page.model_changed}

    def on_compare(data: RunData, request: gr.Request) -> Iterator[dict[Any, Any]]:
        last = data.get(page.last_run_store)
        yield from next_tokens(services, page, panel, data, session_of(request), int(last) if last else None)

    panel.compare.click(on_compare, inputs, [panel.result, page.status, page.model_changed], concurrency_limit=None)
    panel.diff_button.click(lambda a, b: diff(services, a, b), [panel.diff_a, panel.diff_b], panel.diff_result)

    def on_replay(data: RunData, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from replay(services, page, panel, data, session_of(request))

    panel.replay_button.click(on_replay, inputs | {panel.diff_a},
                              [panel.diff_result, panel.diff_b, page.status, page.model_changed],
                              concurrency_limit=None)

    grid_outputs = [panel.grid_view, panel.rate_model, panel.grid_id, panel.grid_status, page.model_changed]
    grid_inputs = inputs | {panel.grid_sort, panel.grid_id, panel.judge_model, panel.judge_prompt}

    def on_grid(data: RunData, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from run_grid(services, page, panel, data, session_of(request))

    def on_judge(data: RunData, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from judge(services, page, panel, data, session_of(request))

    panel.grid_run.click(on_grid, grid_inputs, grid_outputs, concurrency_limit=None)
    panel.judge_button.click(on_judge, grid_inputs, grid_outputs, concurrency_limit=None)
    for trigger in (panel.grid_open.click, panel.grid_sort.input):
        trigger(lambda run_id, order: open_grid(services, panel, run_id, order), [panel.grid_id, panel.grid_sort],
                grid_outputs[:4])
    history = next((p for p in page.panels if isinstance(p, HistoryPanel)), None)
    if history is not None:  # History's "Open as grid" shows its run here
        history.open_grid.click(lambda run_id, order: open_grid(services, panel, run_id, order),
                                [history.run_id, panel.grid_sort], grid_outputs[:4])
    panel.rate_button.click(
        lambda run_id, model, item, score, order: rate(services, panel, run_id, model, item, score, order),
        [panel.grid_id, panel.rate_model, panel.rate_item, panel.rate_score, panel.grid_sort],
        [panel.grid_view, panel.grid_id, panel.grid_status])
    for button, kind in ((panel.export_csv, "csv"), (panel.export_json, "json")):
        button.click(lambda run_id, kind=kind: export_grid(services, run_id, kind), panel.grid_id,
                     [panel.export_file, panel.grid_status])

