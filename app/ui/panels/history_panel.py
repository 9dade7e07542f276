"""Past runs from the journal (reopen one), the saved versions of the input fields, and the
salvage of damaged journals that were moved aside."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app.core.errors import ChainStudioError
from app.services import Services
from app.store.journal import StoredRun
from app.ui.page import PageHandles, Panel
from app.ui.render import Entry, answer_entry, code_markdown, plural, render_transcript

FIELDS = {"prompts": "User prompt", "system": "System prompt", "previous": "Previous response"}


@dataclass
class HistoryPanel(Panel):
    runs: gr.Dataframe
    refresh: gr.Button
    run_id: gr.Number
    reopen: gr.Button
    open_grid: gr.Button  # the run as a models x items grid, in the Compare tab (wired there)
    field: gr.Radio
    versions: gr.Dropdown
    restore: gr.Button
    damaged: gr.Column  # shown while a damaged journal waits to be salvaged
    set_aside: gr.Dropdown
    salvage: gr.Button


RUN_HEADERS = ["run", "started (UTC)", "end", "answers", "first prompt", "models", "from"]
PROMPT_SHOWN = 80


def runs_table(services: Services) -> list[list[Any]]:
    """Recent runs, newest first: answers count the run's own (branches apart), the first prompt
    item, every model, and where the run was started (page, cli, api)."""
    rows = []
    for run in services.journal.runs(100):
        answers = f"{run.answers}/{run.planned}" + (f" + {plural(run.branches, 'branch')}" if run.branches else "")
        prompt = run.first_prompt if len(run.first_prompt) <= PROMPT_SHOWN else run.first_prompt[:PROMPT_SHOWN - 1] + "…"
        rows.append([run.id, run.started_at[:19].replace("T", " "), run.end_reason or "unfinished", answers, prompt,
                     "\n".join(run.models), run.origin])
    return rows


def replay_run(services: Services, run_id: int) -> tuple[list[Entry], StoredRun] | None:
    """A journaled run as transcript entries, through the same builders as a live run."""
    stored = services.journal.stored_run(run_id)
    if stored is None:
        return None
    summary = stored.summary
    branches = f" + {plural(summary.branches, 'branch')}" if summary.branches else ""
    shown = [Entry(f"Run {summary.id}", note=f"{summary.answers} of {plural(summary.planned, 'answer')}{branches} · "
                   f"{summary.end_reason or 'unfinished'}", kind="run")]
    hide_code = bool(stored.spec.get("code", {}).get("hide_output"))
    for answer in stored.answers:
        link = stored.branch_of(answer.index)
        note = f"branch of answer {link.parent_seq} at position {link.position}" if link else ""
        ran = stored.code_runs.get(answer.index)
        shown.append(answer_entry(answer, code=code_markdown(ran, hidden=hide_code) if ran else "", note=note))
    shown += [Entry(f.model, error=f.message, kind="failure") for f in stored.failures]
    return shown, stored


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
        headers=RUN_HEADERS, value=runs_table(services), interactive=False, wrap=True, elem_id="history-runs",
        column_widths=["7%", "17%", "12%", "12%", "27%", "25%"], max_height=420,
    )
    with gr.Row():
        run_id = gr.Number(label="Run", precision=0, elem_id="history-run-id", scale=2)
        reopen = gr.Button("Reopen run", size="sm", elem_id="history-reopen", scale=1)
        open_grid = gr.Button("Open as grid (Compare tab)", size="sm", elem_id="history-grid", scale=1)
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
    return HistoryPanel(runs, refresh, run_id, reopen, open_grid, field, versions, restore, damaged, set_aside, salvage)


def _field_key(label: str) -> str:
    return next((key for key, shown in FIELDS.items() if shown == label), "prompts")


def reopen(services: Services, run_id: float | None, raw_mode: bool) -> tuple:
    """"Reopen run": the run's transcript and fields back on the page (values in `reopen_outputs` order)."""
    found = replay_run(services, int(run_id)) if run_id else None
    if found is None:
        message = f"⚠️ No run {int(run_id)} in the journal." if run_id else "⚠️ Choose a run number first."
        return (gr.update(),) * 6 + (message, gr.update())
    shown, stored = found
    spec = stored.spec
    model_lines = "\n".join(Path(m).name for m in spec.get("models", []))
    return (render_transcript(shown, raw_mode), shown, spec.get("system", ""), spec.get("previous", ""),
            spec.get("prompts", ""), model_lines, f"Reopened run {stored.summary.id}.", stored.summary.id)


def restore_transcript(services: Services, run_id: Any) -> tuple:
    """After a page reload: this browser's newest run back in the transcript (fields stay as the
    person left them)."""
    found = replay_run(services, int(run_id)) if isinstance(run_id, (int, float)) and run_id else None
    if found is None:
        return gr.update(), gr.update(), gr.update()
    shown, stored = found
    return render_transcript(shown), shown, stored.summary.id


def list_versions(services: Services, label: str) -> Any:
    versions = services.journal.input_versions(_field_key(label))
    choices = [(f"{v.created_at[:19].replace('T', ' ')} · {v.text[:60]!r}", v.id) for v in versions]
    return gr.update(choices=choices, value=choices[0][1] if choices else None)


def restore_version(services: Services, label: str, version_id: int | None) -> tuple[Any, Any, Any, str]:
    key = _field_key(label)
    version = next((v for v in services.journal.input_versions(key, 1000) if v.id == version_id), None)
    if version is None:
        return gr.update(), gr.update(), gr.update(), "⚠️ Choose a version first."
    values = {name: gr.update() for name in ("system", "previous", "prompts")}
    values[key] = version.text
    return values["system"], values["previous"], values["prompts"], f"Restored the {label.lower()}."


def wire(panel: HistoryPanel, services: Services, page: PageHandles) -> None:
    """Wire the panel: the list loads when the tab opens and after each run; the page's
    damaged-journal line hides once that journal is salvaged."""
    fields = page.prompt_fields()

    def autosave(key: str):
        def save(text: str) -> None:
            services.journal.save_input(key, text or "")
        return save

    def pick_run(event: gr.SelectData) -> Any:
        row = getattr(event, "row_value", None)
        return row[0] if row else gr.update()

    def show_runs() -> list[list[Any]]:
        return runs_table(services)

    for trigger in (panel.refresh.click, page.run_done.change, *( [panel.tab.select] if panel.tab else [])):
        trigger(show_runs, None, panel.runs, queue=False, show_progress="hidden")
    panel.runs.select(pick_run, None, panel.run_id)
    panel.reopen.click(
        lambda run_id, raw_mode: reopen(services, run_id, raw_mode), [panel.run_id, page.raw],
        [page.transcript, page.entries, fields["system"], fields["previous"], fields["prompt"], page.models,
         page.status, page.reopened_run],
    )
    salvaged = [page.status, panel.runs, panel.set_aside, panel.damaged, page.journal_notice]
    panel.salvage.click(lambda path: salvage_journal(services, path)[:len(salvaged)], panel.set_aside, salvaged)
    panel.field.change(lambda label: list_versions(services, label), panel.field, panel.versions)
    panel.refresh.click(lambda label: list_versions(services, label), panel.field, panel.versions)
    panel.restore.click(lambda label, version: restore_version(services, label, version),
                        [panel.field, panel.versions], [fields["system"], fields["previous"], fields["prompt"],
                                                         page.status])
    # Nothing typed is lost: a field is kept as a new version when it loses focus with new text.
    fields["system"].blur(autosave("system"), fields["system"], None)
    fields["previous"].blur(autosave("previous"), fields["previous"], None)
    fields["prompt"].blur(autosave("prompts"), fields["prompt"], None)
    page.blocks.load(lambda run_id: restore_transcript(services, run_id), page.last_run_store,
                     [page.transcript, page.entries, page.reopened_run])
