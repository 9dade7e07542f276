"""The journal: every run, answer and failure, written to SQLite as it happens.

WAL mode with a commit after every answer: killing the studio mid-run loses at most the answer that
was being generated. Input fields (system prompt, previous response, prompt list) are kept with
versions: a new version each time a field's text changes, so nothing typed is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from app import settings
from app.core.chain import ChainSpec
from app.core.code_exec import CodeResult
from app.core.events import Answer, Failure

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    end_reason TEXT,
    planned INTEGER NOT NULL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    model TEXT NOT NULL,
    model_path TEXT NOT NULL,
    item INTEGER NOT NULL,
    response INTEGER NOT NULL,
    loop INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    messages TEXT NOT NULL,
    params TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    seconds REAL NOT NULL,
    stop_reason TEXT NOT NULL,
    seed INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_by_run ON answers(run_id, seq);
CREATE TABLE IF NOT EXISTS answer_tokens (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    choices TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS branches (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    parent_seq INTEGER NOT NULL,
    position INTEGER NOT NULL,
    token INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS inputs (
    id INTEGER PRIMARY KEY,
    field TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inputs_by_field ON inputs(field, id);
CREATE TABLE IF NOT EXISTS code_runs (
    id INTEGER PRIMARY KEY,
    run_id INTEGER REFERENCES runs(id),
    seq INTEGER,
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    status TEXT NOT NULL,
    seconds REAL NOT NULL,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS code_runs_by_run ON code_runs(run_id, seq);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunSummary:
    id: int
    started_at: str
    finished_at: str | None
    end_reason: str | None  # None: still running, or the process was killed
    planned: int
    answers: int
    failures: int
    models: list[str]


@dataclass(frozen=True)
class InputVersion:
    id: int
    field: str
    text: str
    created_at: str


class Journal:
    """The run journal of one data folder; safe to share between threads."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings.data_dir() / "journal.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            cursor = self._db.execute(sql, args)  # autocommit: each statement is durable at once
            return int(cursor.lastrowid or 0)

    # -- RunRecorder -------------------------------------------------------------------------

    def start_run(self, spec: ChainSpec, planned: int) -> int:
        """Record a new run; returns its id."""
        for name, text in (("system", spec.system), ("previous", spec.previous), ("prompts", spec.prompts)):
            self.save_input(name, text)
        return self._write(
            "INSERT INTO runs (started_at, planned, spec) VALUES (?, ?, ?)",
            (_now(), planned, json.dumps(spec.to_dict(), ensure_ascii=False)),
        )

    def record_answer(self, run_id: int, answer: Answer) -> None:
        self._write(
            "INSERT INTO answers (run_id, seq, model, model_path, item, response, loop, prompt, messages,"
            " params, text, prompt_tokens, tokens, seconds, stop_reason, seed, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id, answer.index, answer.model, answer.model_path, answer.item, answer.response,
                answer.loop, answer.prompt,
                json.dumps([{"role": m.role, "content": m.content} for m in answer.messages], ensure_ascii=False),
                json.dumps(answer.params.to_dict()), answer.text, answer.prompt_tokens, answer.tokens,
                answer.seconds, answer.stop_reason, answer.seed, _now(),
            ),
        )
        if answer.choices:
            self._write(
                "INSERT OR REPLACE INTO answer_tokens (run_id, seq, choices) VALUES (?, ?, ?)",
                (run_id, answer.index, json.dumps([c.to_record() for c in answer.choices], ensure_ascii=False)),
            )

    def next_answer_seq(self, run_id: int) -> int:
        """A sequence number for a new answer of a finished run (a branch)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) AS top FROM answers WHERE run_id = ?", (run_id,)).fetchone()
            planned = self._db.execute("SELECT planned FROM runs WHERE id = ?", (run_id,)).fetchone()
        return max(row["top"] or 0, planned["planned"] if planned else 0) + 1

    def record_branch(self, run_id: int, answer: Answer, parent_seq: int, position: int, token: int) -> None:
        """Keep a branch: an answer that starts like its parent up to `position`, then takes `token`."""
        self.record_answer(run_id, answer)
        self._write(
            "INSERT INTO branches (run_id, seq, parent_seq, position, token) VALUES (?, ?, ?, ?, ?)",
            (run_id, answer.index, parent_seq, position, token),
        )

    def branches_of(self, run_id: int) -> list[dict[str, int]]:
        """The branches of a run's answers: seq, parent_seq, position, token."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, parent_seq, position, token FROM branches WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [dict(row) for row in rows]

    def answer_choices(self, run_id: int, seq: int) -> list[dict[str, Any]]:
        """Learning mode's per-token records of one answer (empty when it ran in normal mode)."""
        with self._lock:
            row = self._db.execute(
                "SELECT choices FROM answer_tokens WHERE run_id = ? AND seq = ?", (run_id, seq)
            ).fetchone()
        return json.loads(row["choices"]) if row else []

    def record_failure(self, run_id: int, failure: Failure) -> None:
        self._write(
            "INSERT INTO failures (run_id, record, created_at) VALUES (?, ?, ?)",
            (run_id, json.dumps(failure.to_record(), ensure_ascii=False), _now()),
        )

    def record_code_run(self, run_id: int | None, seq: int | None, source: str, result: CodeResult) -> int:
        """Keep one run of code: the code, its outputs, duration and status. `run_id`/`seq` name the
        answer it came from; runs by hand ("manual", "saved file") have none."""
        return self._write(
            "INSERT INTO code_runs (run_id, seq, source, code, status, seconds, record, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, seq, source, result.code, result.status, result.seconds,
             json.dumps(result.to_record(), ensure_ascii=False), _now()),
        )

    def code_runs(self, run_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Code runs of one chain run in answer order (or the most recent ones, newest first), each
        the public "code" object plus id, run_id, seq, source and created_at."""
        with self._lock:
            if run_id is None:
                rows = self._db.execute("SELECT * FROM code_runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute("SELECT * FROM code_runs WHERE run_id = ? ORDER BY seq, id",
                                        (run_id,)).fetchall()
        return [{"id": r["id"], "run_id": r["run_id"], "seq": r["seq"], "source": r["source"],
                 "created_at": r["created_at"], **json.loads(r["record"])} for r in rows]

    def finish_run(self, run_id: int, reason: str) -> None:
        self._write("UPDATE runs SET finished_at = ?, end_reason = ? WHERE id = ?", (_now(), reason, run_id))

    # -- inputs ------------------------------------------------------------------------------

    def save_input(self, field: str, text: str) -> bool:
        """Keep `text` as a new version of `field` unless it equals the latest one."""
        with self._lock:
            row = self._db.execute(
                "SELECT text FROM inputs WHERE field = ? ORDER BY id DESC LIMIT 1", (field,)
            ).fetchone()
            if (row is None and not text) or (row is not None and row["text"] == text):
                return False
            self._db.execute(
                "INSERT INTO inputs (field, text, created_at) VALUES (?, ?, ?)", (field, text, _now())
            )
            return True

    def input_versions(self, field: str, limit: int = 50) -> list[InputVersion]:
        """Saved versions of an input field, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, field, text, created_at FROM inputs WHERE field = ? ORDER BY id DESC LIMIT ?",
                (field, limit),
            ).fetchall()
        return [InputVersion(r["id"], r["field"], r["text"], r["created_at"]) for r in rows]

    # -- reading -----------------------------------------------------------------------------

    def runs(self, limit: int = 50) -> list[RunSummary]:
        """Recent runs, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.*, (SELECT COUNT(*) FROM answers a WHERE a.run_id = r.id) AS n_answers,"
                " (SELECT COUNT(*) FROM failures f WHERE f.run_id = r.id) AS n_failures"
                " FROM runs r ORDER BY r.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._summary(row) for row in rows]

    @staticmethod
    def _summary(row: sqlite3.Row) -> RunSummary:
        spec = json.loads(row["spec"])
        return RunSummary(
            id=row["id"], started_at=row["started_at"], finished_at=row["finished_at"],
            end_reason=row["end_reason"], planned=row["planned"], answers=row["n_answers"],
            failures=row["n_failures"], models=[Path(m).name for m in spec.get("models", [])],
        )

    def run(self, run_id: int) -> tuple[RunSummary, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]] | None:
        """One run: its summary, spec, answer records (public JSON form) and failure records."""
        with self._lock:
            row = self._db.execute(
                "SELECT r.*, (SELECT COUNT(*) FROM answers a WHERE a.run_id = r.id) AS n_answers,"
                " (SELECT COUNT(*) FROM failures f WHERE f.run_id = r.id) AS n_failures"
                " FROM runs r WHERE r.id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                return None
            answers = self._db.execute("SELECT * FROM answers WHERE run_id = ? ORDER BY seq", (run_id,)).fetchall()
            failures = self._db.execute("SELECT record FROM failures WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return (
            self._summary(row),
            json.loads(row["spec"]),
            [
                {
                    "index": a["seq"], "model": a["model"], "item": a["item"], "response": a["response"],
                    "loop": a["loop"], "prompt": a["prompt"], "params": json.loads(a["params"]),
                    "text": a["text"], "prompt_tokens": a["prompt_tokens"], "tokens": a["tokens"],
                    "seconds": round(a["seconds"], 4), "stop_reason": a["stop_reason"],
                    "messages": json.loads(a["messages"]),
                }
                for a in answers
            ],
            [json.loads(f["record"]) for f in failures],
        )
