"""Past runs from the journal (reopen one), the saved versions of the input fields, and the
salvage of damaged journals that were moved aside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.core.code_exec import CodeResult
from app.core.errors import ChainStudioError
from app.core.events import STOP_REASON_TEXT
from app.services import Services
from app.ui.render import Entry, code_markdown, render_transcript

FIELDS = {"prompts": "User prompt", "system": "System prompt", "previous": "Previous response"}


@dataclass
class HistoryPanel:
    runs: gr.Dataframe
    refresh: gr.Button
    run_id: gr.Number
    reopen: gr.Button
    field: gr.Radio
    versions: gr.Dropdown
    restore: gr.Button
    damaged: gr.Column  # shown while a damaged journal waits to be salvaged
    set_aside: gr.Dropdown
    salvage: gr.Button


def runs_table(services: Services) -> list[list[Any]]:
    return [
        [run.id, run.started_at[:19].replace("T", " "), run.end_reason or "unfinished",
         f"{run.answers}/{run.planned}", ", ".join(run.models)]
        for run in services.journal.runs(100)
    ]


def journal_notice(services: Services) -> str:
    """The page's line about a damaged journal moved aside at start ("" when there was none)."""
    notice = services.journal.notice
    return f"⚠️ {notice}" if notice else ""


def build_notice(services: Services) -> gr.Markdown:
    """The notice line for the top of the page (hidden unless the journal was replaced at start)."""
    text = journal_notice(services)
    return gr.Markdown(text, visible=bool(text), elem_id="journal-notice")


def set_aside_choices(services: Services) -> list[tuple[str, str]]:
    """Damaged journals waiting to be salvaged, as (file name, path) choices."""
    return [(path.name, str(path)) for path in services.journal.set_aside_files()]


def salvage_journal(services: Services, path: str | None) -> tuple[str, list[list[Any]], Any, Any, Any]:
    """Copy the readable rows of a set-aside journal back in: (status, runs table, choices update,
    damaged-section update, notice update)."""
    if not path:
        return "⚠️ Choose a damaged journal first.", runs_table(services), gr.update(), gr.update(), gr.update()
    try:
        report = services.journal.salvage(Path(path))
    except ChainStudioError as exc:
        gr.Warning(str(exc))
        message = f"⚠️ {exc}"
    else:
        message = report.describe()
    left = set_aside_choices(services)
    moved = services.journal.moved_aside
    notice_done = moved is not None and str(moved) not in {value for _, value in left}
    return (message, runs_table(services), gr.update(choices=left, value=left[0][1] if left else None),
            gr.update(visible=bool(left)), gr.update(visible=False) if notice_done else gr.update())


def build(services: Services) -> HistoryPanel:
    refresh = gr.Button("Refresh", size="sm", elem_id="history-refresh")
    runs = gr.Dataframe(
        headers=["run", "started (UTC)", "end", "answers", "models"], value=runs_table(services),
        interactive=False, wrap=True, elem_id="history-runs",
    )
    with gr.Row():
        run_id = gr.Number(label="Run", precision=0, elem_id="history-run-id", scale=2)
        reopen = gr.Button("Reopen run", size="sm", elem_id="history-reopen", scale=1)
    field = gr.Radio(choices=list(FIELDS.values()), value=FIELDS["prompts"], label="Saved versions of",
                     elem_id="history-field")
    versions = gr.Dropdown(choices=[], label="Version", elem_id="history-versions")
    restore = gr.Button("Restore this version", size="sm", elem_id="history-restore")
    choices = set_aside_choices(services)
    with gr.Column(visible=bool(choices), elem_id="history-damaged") as damaged:
        gr.Markdown("**Damaged journals set aside**: copy the rows that can still be read into the journal "
                    "(the file itself is kept as it is).")
        with gr.Row():
            set_aside = gr.Dropdown(choices=choices, value=choices[0][1] if choices else None, label="Damaged journal",
                                    elem_id="history-set-aside", scale=3)
            salvage = gr.Button("Salvage readable rows", size="sm", elem_id="history-salvage", scale=1)
    return HistoryPanel(runs, refresh, run_id, reopen, field, versions, restore, damaged, set_aside, salvage)


def _field_key(label: str) -> str:
    return next((key for key, shown in FIELDS.items() if shown == label), "prompts")


def wire(panel: HistoryPanel, services: Services, fields: dict[str, gr.Textbox], models: gr.Textbox,
         transcript: gr.Markdown, entries: gr.State, status: gr.Markdown, raw: gr.Checkbox,
         learning_records: gr.State, notice: gr.Markdown | None = None) -> Any:
    """Wire the panel; returns the reopen event so the page can refresh what depends on it.
    `notice` is the page's damaged-journal line, hidden once that journal is salvaged."""
    def reopen(run_id: float | None, raw_mode: bool) -> tuple:
        found = services.journal.run(int(run_id)) if run_id else None
        if found is None:
            message = f"⚠️ No run {int(run_id)} in the journal." if run_id else "⚠️ Choose a run number first."
            return (gr.update(),) * 6 + (message, gr.update())
        summary, spec, answers, failures = found
        shown = [Entry(f"Run {summary.id}", note=f"{summary.answers} of {summary.planned} answers · "
                       f"{summary.end_reason or 'unfinished'}", kind="run")]
        code_runs = {c["seq"]: c for c in services.journal.code_runs(summary.id)}
        hide_code = bool(spec.get("code", {}).get("hide_output"))
        for answer in answers:
            speed = answer["tokens"] / answer["seconds"] if answer["seconds"] else 0.0
            ran = code_runs.get(answer["index"])
            shown.append(Entry(
                f"{answer['model']} · item {answer['item']} · response {answer['response']} · loop {answer['loop']}",
                text=answer["text"],
                footer=(f"{answer['prompt_tokens']} prompt + {answer['tokens']} generated tokens · "
                        f"{answer['seconds']:.2f} s · {speed:.1f} tok/s · "
                        f"{STOP_REASON_TEXT.get(answer['stop_reason'], answer['stop_reason'])}"),
                code=code_markdown(CodeResult.from_record(ran), hidden=hide_code) if ran else "",
            ))
        shown += [Entry(f["model"], error=f["message"], kind="failure") for f in failures]
        model_lines = "\n".join(Path(m).name for m in spec.get("models", []))
        # Learning mode's records of the last answer that has them, as they were seen.
        records: list = []
        for answer in reversed(answers):
            records = services.journal.answer_choices(summary.id, answer["index"])
            if records:
                break
        return (render_transcript(shown, raw_mode), shown, spec.get("system", ""), spec.get("previous", ""),
                spec.get("prompts", ""), model_lines, f"Reopened run {summary.id}.", records)

    def list_versions(label: str) -> Any:
        versions = services.journal.input_versions(_field_key(label))
        choices = [(f"{v.created_at[:19].replace('T', ' ')} · {v.text[:60]!r}", v.id) for v in versions]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def restore(label: str, version_id: int | None) -> tuple[Any, Any, Any, str]:
        key = _field_key(label)
        version = next((v for v in services.journal.input_versions(key, 1000) if v.id == version_id), None)
        if version is None:
            return gr.update(), gr.update(), gr.update(), "⚠️ Choose a version first."
        values = {name: gr.update() for name in ("system", "previous", "prompts")}
        values[key] = version.text
        return values["system"], values["previous"], values["prompts"], f"Restored the {label.lower()}."

    def autosave(key: str):
        def save(text: str) -> None:
            services.journal.save_input(key, text or "")
        return save

    panel.refresh.click(lambda: runs_table(services), None, panel.runs)
    def pick_run(event: gr.SelectData) -> Any:
        row = getattr(event, "row_value", None)
        return row[0] if row else gr.update()

    panel.runs.select(pick_run, None, panel.run_id)
    reopened = panel.reopen.click(
        reopen, [panel.run_id, raw],
        [transcript, entries, fields["system"], fields["previous"], fields["prompt"], models, status, learning_records],
    )
    salvaged = [status, panel.runs, panel.set_aside, panel.damaged] + ([notice] if notice is not None else [])
    panel.salvage.click(lambda path: salvage_journal(services, path)[:len(salvaged)], panel.set_aside, salvaged)
    panel.field.change(list_versions, panel.field, panel.versions)
    panel.refresh.click(list_versions, panel.field, panel.versions)
    panel.restore.click(restore, [panel.field, panel.versions],
                        [fields["system"], fields["previous"], fields["prompt"], status])
    # Nothing typed is lost: a field is kept as a new version when it loses focus with new text.
    fields["system"].blur(autosave("system"), fields["system"], None)
    fields["previous"].blur(autosave("previous"), fields["previous"], None)
    fields["prompt"].blur(autosave("prompts"), fields["prompt"], None)
    return reopened
