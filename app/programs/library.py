"""Saved programs and their sharing: each program's versions live in the journal (like the prompt
fields, as the field `program:NAME`), and a program travels with its runs as one JSON file
(PromptIDE's "share", offline): export writes it, import adds its versions and runs."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from app.core.errors import SettingsError
from app.store.journal import Journal

FIELD_PREFIX = "program:"
EXPORT_FORMAT = "chain-studio-program"
EXPORT_VERSION = 1
MAX_IMPORT_BYTES = 50 * 2**20
EXAMPLES = {"Chatbot (user_input)": "chatbot.py", "CSV batch (concurrency)": "csv_batch.py",
            "Answer and judge (@prompt_fn)": "judge.py"}
EXAMPLE_FILES = {"csv_batch.py": ("questions.csv",)}  # files an example reads, shipped beside it


def example_source(file_name: str) -> str:
    return resources.files("app.programs").joinpath("examples", file_name).read_text(encoding="utf-8")


def example_file_path(file_name: str) -> str:
    return str(resources.files("app.programs").joinpath("examples", file_name))


def check_name(name: str) -> str:
    cleaned = (name or "").strip()
    if not cleaned:
        raise SettingsError("give the program a name to save it under")
    if len(cleaned) > 120 or any(ch in cleaned for ch in "\n\r\t"):
        raise SettingsError("a program's name is one line of at most 120 characters")
    return cleaned


def normal_source(source: str) -> str:
    """A program's text as it is kept: one newline at its end (the editor drops it, files keep it),
    so a version differs from the last only when the program does."""
    return source.rstrip() + "\n" if source.strip() else ""


def save_program(journal: Journal, name: str, source: str) -> bool:
    """Keep `source` as a new version of program `name`; False when it equals the latest one."""
    return journal.save_input(FIELD_PREFIX + check_name(name), normal_source(source))


def saved_programs(journal: Journal) -> list[str]:
    """Names of saved programs, most recently saved first."""
    return [field[len(FIELD_PREFIX):] for field in journal.input_fields(FIELD_PREFIX)]


def program_versions(journal: Journal, name: str) -> list[tuple[str, str]]:
    """(saved at, source) of each version of `name`, newest first."""
    return [(v.created_at, v.text) for v in journal.input_versions(FIELD_PREFIX + name, limit=200)]


def export_program(journal: Journal, name: str, source: str, run_ids: list[int]) -> dict[str, Any]:
    """The program (its versions, newest first, or just `source` when unsaved) with the given runs."""
    versions = [text for _at, text in program_versions(journal, name)] if name else []
    if source.strip() and (not versions or versions[0] != normal_source(source)):
        versions.insert(0, normal_source(source))
    runs = []
    for run_id in run_ids:
        found = journal.program_run(run_id)
        if found is not None:
            run, events = found
            runs.append({"run": {k: run[k] for k in ("started_at", "finished_at", "name", "title", "source",
                                                    "model", "seed", "origin", "outcome", "error")},
                         "events": events})
    return {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "name": name, "versions": versions, "runs": runs}


def import_program(journal: Journal, data: bytes) -> tuple[str, int, int]:
    """Add an exported program's versions (oldest first) and runs; returns (name, versions, runs)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise SettingsError(f"the file is larger than {MAX_IMPORT_BYTES // 2**20} MiB")
    try:
        shared = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SettingsError(f"this is not an exported program (not JSON: {exc})") from exc
    if not isinstance(shared, dict) or shared.get("format") != EXPORT_FORMAT:
        raise SettingsError("this is not an exported program (a file made by the Programs tab's Export)")
    if shared.get("version") != EXPORT_VERSION:
        raise SettingsError(f"this program was exported by a newer studio (format version {shared.get('version')})")
    name = check_name(str(shared.get("name") or "imported program"))
    versions = [v for v in shared.get("versions") or [] if isinstance(v, str)]
    added_versions = sum(save_program(journal, name, text) for text in reversed(versions))
    added_runs = 0
    for entry in shared.get("runs") or []:
        run, events = (entry or {}).get("run"), (entry or {}).get("events")
        if not isinstance(run, dict) or not isinstance(events, list):
            continue
        seed = run.get("seed")
        run_id = journal.start_program_run(name, str(run.get("source") or ""), str(run.get("model") or ""),
                                           seed if isinstance(seed, int) else None, "import")
        journal.record_program_events(run_id, [e for e in events if isinstance(e, dict)])
        journal.finish_program_run(run_id, str(run.get("outcome") or ""), str(run.get("title") or ""),
                                   str(run.get("error") or ""))
        added_runs += 1
    return name, added_versions, added_runs
