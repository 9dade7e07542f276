"""The journal: every run, answer and failure, written to SQLite as it happens.

WAL mode with a commit after every answer: killing the studio mid-run loses at most the answer that
was being generated. Input fields (system prompt, previous response, prompt list) are kept with
versions: a new version each time a field's text changes, so nothing typed is lost.

A journal that sqlite finds damaged when it is opened (truncated, overwritten, not a database) is
moved aside as `journal.corrupt-<UTC time>` next to it and a fresh one is started; `Journal.notice`
says so, and `Journal.salvage` copies the readable rows of a set-aside file back in. A journal that
cannot be opened or written for another reason (a read-only folder, a locked file) raises
StorageError and is left where it is.
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
from app.core.backend import ChatMessage
from app.core.chain import ChainSpec
from app.core.code_exec import CodeResult
from app.core.errors import ChainStudioError, StorageError
from app.core.events import Answer, Escalation, Failure
from app.core.learning import TokenChoice
from app.core.metrics import AnswerMetrics
from app.core.sampling import SamplingParams
from app.store.salvage import read_readable_rows

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
    created_at TEXT NOT NULL,
    prompt_format TEXT NOT NULL DEFAULT '',
    sent TEXT NOT NULL DEFAULT '',
    reasoning TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '[]',
    metrics TEXT NOT NULL DEFAULT '',
    escalation TEXT NOT NULL DEFAULT '',
    pieces TEXT NOT NULL DEFAULT '[]'
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
CREATE TABLE IF NOT EXISTS ratings (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    score REAL NOT NULL,
    source TEXT NOT NULL,
    rated_at TEXT NOT NULL,
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
CREATE TABLE IF NOT EXISTS program_runs (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    name TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    seed INTEGER,
    origin TEXT NOT NULL,
    outcome TEXT,
    error TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS program_events (
    run_id INTEGER NOT NULL REFERENCES program_runs(id),
    seq INTEGER NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS salvages (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    report TEXT NOT NULL
);
"""
# Tables a salvage copies, parents first (rows of the others point at a run).
SALVAGED_TABLES = ("runs", "inputs", "answers", "answer_tokens", "branches", "failures", "code_runs", "ratings")
TABLES_ADDED_LATER = ("ratings",)  # an older journal has none: its salvage reads no damage there
# Columns read back with json.loads: a salvaged row whose JSON does not parse is left out.
_JSON_COLUMNS = {"runs": ("spec",), "answers": ("messages", "params"), "answer_tokens": ("choices",),
                 "failures": ("record",), "code_runs": ("record",)}
_SQLITE_CORRUPT, _SQLITE_NOTADB, _SQLITE_BUSY, _SQLITE_LOCKED = 11, 26, 5, 6


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunSummary:
    id: int
    started_at: str
    finished_at: str | None
    end_reason: str | None  # None: still running, or the process was killed
    planned: int
    answers: int  # the run's own answers (branches grown later are counted apart)
    failures: int
    models: list[str]
    branches: int = 0
    first_prompt: str = ""  # the first line of the prompt list, as typed
    origin: str = ""  # who started it: "page", "cli", "api", "replay" or "grid" ("" in journals older than the column)


@dataclass(frozen=True)
class BranchLink:
    """Answer `seq` is a branch of answer `parent_seq`: it took `token` at `position`."""

    seq: int
    parent_seq: int
    position: int
    token: int


@dataclass(frozen=True)
class StoredRun:
    """One run as the journal keeps it, as the same typed records the run produced."""

    summary: RunSummary
    spec: dict[str, Any]
    answers: list[Answer]  # in order; branches included (see `branches`), learning records attached
    failures: list[Failure]
    branches: list[BranchLink]
    code_runs: dict[int, CodeResult]  # by answer seq

    def branch_of(self, seq: int) -> BranchLink | None:
        return next((b for b in self.branches if b.seq == seq), None)


@dataclass(frozen=True)
class InputVersion:
    id: int
    field: str
    text: str
    created_at: str


@dataclass(frozen=True)
class SalvageReport:
    """What a salvage copied from a damaged journal into the live one."""

    source: Path
    method: str  # "sqlite3 .recover" or "row by row"
    copied: dict[str, int]  # table -> rows copied
    renumbered: int  # runs whose number was taken in the live journal, so they got a new one
    left_out: int  # rows that could not be used (missing fields, unreadable JSON)
    damaged_regions: int  # ranges of rows whose pages could not be read at all

    def describe(self) -> str:
        """One line for a person."""
        total = sum(self.copied.values())
        if total == 0:
            return f"Nothing readable was left in {self.source}."
        parts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in self.copied.items() if n)
        text = f"Salvaged from {self.source.name} ({self.method}): {parts}."
        if self.renumbered:
            text += f" {self.renumbered} runs got new numbers (theirs were taken)."
        lost = [f"{n} {what}" for n, what in ((self.damaged_regions, "unreadable stretches of rows"),
                                              (self.left_out, "rows with unusable fields")) if n]
        if lost:
            text += f" Could not be read: {', '.join(lost)}."
        return text


class _Damaged(Exception):
    """sqlite reports the journal file as corrupt (internal: the file is then moved aside)."""


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)  # extended codes keep the primary in the low byte
    return "malformed" in str(exc) or "not a database" in str(exc)


def _open_database(path: Path) -> sqlite3.Connection:
    """The one place the journal file is opened (tests open it read-only through here)."""
    return sqlite3.connect(path, check_same_thread=False, isolation_level=None)


def _check(path: Path) -> None:
    """Raise _Damaged when sqlite finds the journal file corrupt. sqlite opens files lazily, so
    damage would otherwise surface as a traceback from some later query; quick_check reads every
    page now (about a tenth of a second for 350 MB). The connection is read-only: closing a
    read-write one on a damaged file lets sqlite delete a WAL that may hold the last answers."""
    if not path.is_file():  # a new journal (a folder in its place fails when it is opened)
        return
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        verdict = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        if _is_damage(exc):
            raise _Damaged(str(exc)) from exc
        raise
    finally:
        db.close()
    if verdict != "ok":  # e.g. "*** in database main ***\nPage 22: btreeInitPage() returns error code 11"
        raise _Damaged(" ".join(line for line in verdict.splitlines() if not line.startswith("***")))


# Columns added after the first release: a journal written by an older version gains them, empty.
NEW_COLUMNS = {"answers": {"prompt_format": "TEXT NOT NULL DEFAULT ''", "sent": "TEXT NOT NULL DEFAULT ''",
                           "reasoning": "TEXT NOT NULL DEFAULT ''", "notes": "TEXT NOT NULL DEFAULT '[]'",
                           "metrics": "TEXT NOT NULL DEFAULT ''", "escalation": "TEXT NOT NULL DEFAULT ''",
                           "pieces": "TEXT NOT NULL DEFAULT '[]'"},
               "runs": {"origin": "TEXT NOT NULL DEFAULT ''"}}
"""Columns added after the first version: added to an older journal when it is opened."""


def _add_new_columns(db: sqlite3.Connection) -> None:
    for table, columns in NEW_COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in present:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _connect(path: Path) -> sqlite3.Connection:
    """Open a journal that passed `_check` and set it up (the connection is closed on failure)."""
    db = _open_database(path)
    try:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(SCHEMA)
        _add_new_columns(db)
        # sqlite quietly opens a file it may not write (read-only file or folder) for reading; a
        # rewrite of the header's user version fails now instead of the first answer failing later.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version)}")
    except BaseException:
        db.close()
        raise
    return db


def _move_aside(path: Path) -> Path:
    """Rename a damaged journal (and its -wal/-shm files, which sqlite pairs by name) to
    `<stem>.corrupt-<UTC time>` in the same folder; returns the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.stem}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.stem}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        sibling = path.with_name(path.name + suffix)
        if sibling.exists():
            sibling.replace(target.with_name(target.name + suffix))
    path.replace(target)
    return target


class Journal:
    """The run journal of one data folder; safe to share between threads.

    `moved_aside` is where a journal found damaged at open went (None when it opened normally);
    `notice` is the message saying so."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings.data_dir() / "journal.sqlite3"
        self._lock = threading.Lock()
        self.moved_aside: Path | None = None
        self.damage: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                _check(self.path)
            except _Damaged as exc:
                self.damage = str(exc)
                self.moved_aside = self._set_aside()
            self._db = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(self._open_failure(exc)) from exc

    def _set_aside(self) -> Path:
        try:
            return _move_aside(self.path)
        except FileNotFoundError:  # another studio process moved it first: name the newest set-aside file
            found = sorted(p for p in self.path.parent.glob(f"{self.path.stem}.corrupt-*")
                           if not p.name.endswith(("-wal", "-shm")))
            return found[-1] if found else self.path
        except OSError as exc:
            raise StorageError(
                f"the journal {self.path} is damaged ({self.damage}) and cannot be moved aside: "
                f"{exc.strerror or exc}. Move it away by hand, or set {settings.HOME_ENV} to another folder."
            ) from exc

    def _open_failure(self, exc: Exception) -> str:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return f"the journal {self.path} is locked by another program ({exc}); close it and try again."
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return (f"cannot open or write the journal {self.path}: {reason}. The journal and its folder must be "
                f"writable: make them so, or set {settings.HOME_ENV} to a writable folder.")

    @property
    def notice(self) -> str | None:
        """What a person should be told after a damaged journal was moved aside, else None."""
        if self.moved_aside is None:
            return None
        return (f"The journal was damaged ({self.damage}), so a fresh one was started. The old file is kept as "
                f"{self.moved_aside}; copy its readable rows back with History → Salvage, or "
                f"`python -m app journal salvage {self.moved_aside}`.")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            cursor = self._db.execute(sql, args)  # autocommit: each statement is durable at once
            return int(cursor.lastrowid or 0)

    # -- RunRecorder -------------------------------------------------------------------------

    def start_run(self, spec: ChainSpec, planned: int, origin: str = "page") -> int:
        """Record a new run started from `origin` ("page", "cli", "api"); returns its id."""
        for name, text in (("system", spec.system), ("previous", spec.previous), ("prompts", spec.prompts)):
            self.save_input(name, text)
        return self._write(
            "INSERT INTO runs (started_at, planned, spec, origin) VALUES (?, ?, ?, ?)",
            (_now(), planned, json.dumps(spec.to_dict(), ensure_ascii=False), origin),
        )

    def record_answer(self, run_id: int, answer: Answer) -> None:
        self._write(
            "INSERT INTO answers (run_id, seq, model, model_path, item, response, loop, prompt, messages,"
            " params, text, prompt_tokens, tokens, seconds, stop_reason, seed, created_at, prompt_format, sent,"
            " reasoning, notes, metrics, escalation, pieces)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id, answer.index, answer.model, answer.model_path, answer.item, answer.response,
                answer.loop, answer.prompt,
                json.dumps([{"role": m.role, "content": m.content} for m in answer.messages], ensure_ascii=False),
                json.dumps(answer.params.to_dict()), answer.text, answer.prompt_tokens, answer.tokens,
                answer.seconds, answer.stop_reason, answer.seed, _now(), answer.prompt_format, answer.sent,
                answer.reasoning, json.dumps(list(answer.notes), ensure_ascii=False),
                json.dumps(answer.metrics.to_dict()) if answer.metrics is not None else "",
                json.dumps(answer.escalation.to_dict()) if answer.escalation is not None else "",
                json.dumps([list(piece) for piece in answer.pieces], ensure_ascii=False),
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

    def rate(self, run_id: int, seq: int, score: float, source: str) -> None:
        """Keep a score for answer `seq` of run `run_id` (the comparison grid): the person's 1-5
        ("you") or a judge model's ("judge: NAME"); a new score replaces the old one."""
        self._write("INSERT OR REPLACE INTO ratings (run_id, seq, score, source, rated_at) VALUES (?, ?, ?, ?, ?)",
                    (run_id, seq, float(score), source, _now()))

    def ratings(self, run_id: int) -> dict[int, tuple[float, str]]:
        """The scores of a run's answers: seq -> (score, source)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, score, source FROM ratings WHERE run_id = ?", (run_id,)).fetchall()
        return {row["seq"]: (row["score"], row["source"]) for row in rows}

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

    # -- programs ----------------------------------------------------------------------------

    def start_program_run(self, name: str, source: str, model: str, seed: int | None, origin: str) -> int:
        """Record a program run starting (its source kept as it ran); returns its id."""
        return self._write(
            "INSERT INTO program_runs (started_at, name, source, model, seed, origin) VALUES (?, ?, ?, ?, ?, ?)",
            (_now(), name, source, model, seed, origin),
        )

    def record_program_events(self, run_id: int, events: list[dict[str, Any]]) -> None:
        """Append a batch of the run's events (tokens, titles, output…), in order."""
        with self._lock:
            row = self._db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM program_events WHERE run_id = ?",
                                   (run_id,)).fetchone()
            self._db.execute("INSERT INTO program_events (run_id, seq, events) VALUES (?, ?, ?)",
                             (run_id, row[0], json.dumps(events, ensure_ascii=False)))

    def finish_program_run(self, run_id: int, outcome: str, title: str, error: str) -> None:
        self._write("UPDATE program_runs SET finished_at = ?, outcome = ?, title = ?, error = ? WHERE id = ?",
                    (_now(), outcome, title, error, run_id))

    def program_runs(self, limit: int = 50, name: str | None = None) -> list[dict[str, Any]]:
        """Recent program runs (without their events), newest first; only `name`'s when given."""
        where, args = ("WHERE name = ?", (name, limit)) if name is not None else ("", (limit,))
        with self._lock:
            rows = self._db.execute(
                "SELECT id, started_at, finished_at, name, title, model, seed, origin, outcome, error "
                f"FROM program_runs {where} ORDER BY id DESC LIMIT ?", args).fetchall()
        return [dict(row) for row in rows]

    def program_run(self, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """One program run (with its source) and all its events in order, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM program_runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            batches = self._db.execute("SELECT events FROM program_events WHERE run_id = ? ORDER BY seq",
                                       (run_id,)).fetchall()
        events: list[dict[str, Any]] = []
        for batch in batches:
            try:
                events += json.loads(batch["events"])
            except ValueError:
                continue  # a damaged batch: the rest of the run still shows
        return dict(row), events

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

    def input_fields(self, prefix: str) -> list[str]:
        """The fields with saved versions whose names start with `prefix`, most recently saved first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT field, MAX(id) AS newest FROM inputs WHERE substr(field, 1, ?) = ? GROUP BY field "
                "ORDER BY newest DESC", (len(prefix), prefix),
            ).fetchall()
        return [row["field"] for row in rows]

    def input_versions(self, field: str, limit: int = 50) -> list[InputVersion]:
        """Saved versions of an input field, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, field, text, created_at FROM inputs WHERE field = ? ORDER BY id DESC LIMIT ?",
                (field, limit),
            ).fetchall()
        return [InputVersion(r["id"], r["field"], r["text"], r["created_at"]) for r in rows]

    # -- reading -----------------------------------------------------------------------------

    _SUMMARY_SELECT = (
        "SELECT r.*, (SELECT COUNT(*) FROM answers a WHERE a.run_id = r.id) AS n_all,"
        " (SELECT COUNT(*) FROM branches b WHERE b.run_id = r.id) AS n_branches,"
        " (SELECT COUNT(*) FROM failures f WHERE f.run_id = r.id) AS n_failures FROM runs r"
    )

    def runs(self, limit: int = 50) -> list[RunSummary]:
        """Recent runs, newest first."""
        with self._lock:
            rows = self._db.execute(self._SUMMARY_SELECT + " ORDER BY r.id DESC LIMIT ?", (limit,)).fetchall()
        return [self._summary(row) for row in rows]

    @staticmethod
    def _summary(row: sqlite3.Row) -> RunSummary:
        spec = json.loads(row["spec"])
        prompts = str(spec.get("prompts", "") or "")
        first = next((line.strip() for line in prompts.splitlines() if line.strip()), "")
        return RunSummary(
            id=row["id"], started_at=row["started_at"], finished_at=row["finished_at"],
            end_reason=row["end_reason"], planned=row["planned"], answers=row["n_all"] - row["n_branches"],
            failures=row["n_failures"], models=[Path(m).name for m in spec.get("models", [])],
            branches=row["n_branches"], first_prompt=first, origin=row["origin"],
        )

    def stored_run(self, run_id: int) -> StoredRun | None:
        """One run with typed answers (learning records attached), failures, branches and code runs."""
        with self._lock:
            row = self._db.execute(self._SUMMARY_SELECT + " WHERE r.id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            answer_rows = self._db.execute("SELECT * FROM answers WHERE run_id = ? ORDER BY seq",
                                           (run_id,)).fetchall()
            token_rows = self._db.execute("SELECT seq, choices FROM answer_tokens WHERE run_id = ?",
                                          (run_id,)).fetchall()
            failure_rows = self._db.execute("SELECT record FROM failures WHERE run_id = ? ORDER BY id",
                                            (run_id,)).fetchall()
        choices = {r["seq"]: r["choices"] for r in token_rows}
        answers = [_answer_from_row(a, choices.get(a["seq"])) for a in answer_rows]
        failures = [_failure_from_record(json.loads(f["record"])) for f in failure_rows]
        branches = [BranchLink(**b) for b in self.branches_of(run_id)]
        code = {c["seq"]: CodeResult.from_record(c) for c in self.code_runs(run_id) if c["seq"] is not None}
        return StoredRun(self._summary(row), json.loads(row["spec"]), answers, failures, branches, code)

    def run(self, run_id: int) -> tuple[RunSummary, dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]] | None:
        """One run: its summary, spec, answer records (public JSON form) and failure records."""
        with self._lock:
            row = self._db.execute(self._SUMMARY_SELECT + " WHERE r.id = ?", (run_id,)).fetchone()
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
                    "messages": json.loads(a["messages"]), "prompt_format": a["prompt_format"],
                    "sent": a["sent"], "reasoning": a["reasoning"], "notes": json.loads(a["notes"] or "[]"),
                    "metrics": json.loads(a["metrics"]) if a["metrics"] else None,
                    "escalation": json.loads(a["escalation"]) if a["escalation"] else None,
                }
                for a in answers
            ],
            [json.loads(f["record"]) for f in failures],
        )

    # -- damaged journals ----------------------------------------------------------------------

    def set_aside_files(self) -> list[Path]:
        """Damaged journals moved aside next to this one that have not been salvaged, newest first."""
        with self._lock:
            done = {row["source"] for row in self._db.execute("SELECT source FROM salvages")}
        found = [p for p in self.path.parent.glob(f"{self.path.stem}.corrupt-*")
                 if not p.name.endswith(("-wal", "-shm")) and str(p.resolve()) not in done]
        return sorted(found, key=lambda p: p.name, reverse=True)

    def salvage(self, source: Path) -> SalvageReport:
        """Copy every readable row of the damaged journal `source` into this one. A run keeps its
        number unless the number is taken; answers whose run record was lost get a run of their own
        (end reason "salvaged"). The source file is read from a copy and never changed; salvaging the
        same file twice is refused, so rows are not doubled."""
        source = source.expanduser().resolve()
        if source.name.endswith(("-wal", "-shm")):  # a sibling was named: salvage the journal it belongs to
            source = source.with_name(source.name[:-4])
        if source == self.path.resolve():
            raise StorageError(f"{source} is the journal in use; salvage copies from a set-aside file into it.")
        with self._lock:
            before = self._db.execute("SELECT created_at FROM salvages WHERE source = ?", (str(source),)).fetchone()
        if before is not None:
            raise StorageError(f"{source} was already salvaged on {before['created_at'][:19]}Z.")
        try:
            readable = read_readable_rows(source, SALVAGED_TABLES, TABLES_ADDED_LATER)
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc.strerror or exc}") from exc
        try:
            with self._lock:
                report = self._insert_salvaged(source, readable.rows, readable.method, readable.damaged_regions)
        except sqlite3.Error as exc:  # e.g. a full disk: nothing was copied (one transaction)
            raise StorageError(f"cannot write the salvaged rows into {self.path}: {exc}") from exc
        return report

    def _insert_salvaged(self, source: Path, rows: dict[str, list[dict[str, Any]]], method: str,
                         damaged: int) -> SalvageReport:
        """Insert salvaged rows in one transaction (the caller holds the lock)."""
        run_ids: dict[int, int] = {}  # run number in the damaged file -> number here
        copied = dict.fromkeys(SALVAGED_TABLES, 0)
        left_out = renumbered = 0
        db = self._db
        columns = {t: [c["name"] for c in db.execute(f"PRAGMA table_info({t})")] for t in SALVAGED_TABLES}

        # A row whose id is taken gets one above every id here and in the file, so it cannot take the
        # id of a later salvaged row (which would then be renumbered too).
        next_id = {t: 1 + max([db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {t}").fetchone()[0]]
                              + [r["id"] for r in rows.get(t, []) if isinstance(r.get("id"), int)])
                   for t in SALVAGED_TABLES if "id" in columns[t]}

        def insert(table: str, row: dict[str, Any]) -> int | None:
            """Insert with the row's own id when it is free, else a new one; None when unusable."""
            names = [c for c in columns[table] if c in row]
            attempts = [row]
            if "id" in names:
                attempts.append({**row, "id": next_id[table]})
            for values in attempts:
                try:
                    cursor = db.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES "
                                        f"({', '.join('?' * len(names))})", [values[c] for c in names])
                except sqlite3.IntegrityError:
                    continue  # a taken id (retried with a new one), a missing field, an orphan
                if values is not row:
                    next_id[table] += 1
                return int(cursor.lastrowid or 0)
            return None

        def run_for(old: int | None, row: dict[str, Any]) -> int | None:
            """The number here of the damaged file's run `old`, making a stand-in when it was lost."""
            nonlocal renumbered
            if old is None or old in run_ids:
                return run_ids.get(old) if old is not None else None
            stand_in = {"id": old, "started_at": row.get("created_at") or _now(), "finished_at": None,
                        "end_reason": "salvaged", "planned": 0,
                        "spec": json.dumps({"models": [row["model_path"]] if row.get("model_path") else []})}
            new = insert("runs", stand_in)
            if new is not None:
                run_ids[old] = new
                renumbered += new != old
            return new

        db.execute("BEGIN")
        try:
            for table in SALVAGED_TABLES:
                for row in rows.get(table, []):
                    if not _json_ok(table, row):
                        left_out += 1
                        continue
                    if table == "runs":
                        new = insert("runs", row)
                        if new is not None and isinstance(row.get("id"), int):
                            run_ids[row["id"]] = new
                            renumbered += new != row["id"]
                    else:
                        if "run_id" in row and row["run_id"] is not None:
                            mapped = run_for(row["run_id"], row)
                            if mapped is None:
                                left_out += 1
                                continue
                            row = {**row, "run_id": mapped}
                        new = insert(table, row)
                    if new is None:
                        left_out += 1
                    else:
                        copied[table] += 1
            report = SalvageReport(source, method, copied, renumbered, left_out, damaged)
            # Recorded in the same transaction, so a file is never half-salvaged or salvaged twice.
            db.execute("INSERT INTO salvages (source, created_at, report) VALUES (?, ?, ?)",
                       (str(source), _now(), report.describe()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return report


def _params(data: dict[str, Any]) -> SamplingParams:
    try:
        return SamplingParams().with_overrides(data)
    except (ChainStudioError, TypeError):  # settings of an older version: shown with today's defaults
        return SamplingParams()


def _answer_from_row(row: sqlite3.Row, choices: str | None) -> Answer:
    messages = tuple(ChatMessage(m["role"], m["content"]) for m in json.loads(row["messages"]))
    return Answer(
        index=row["seq"], model=row["model"], model_path=row["model_path"], item=row["item"],
        response=row["response"], loop=row["loop"], prompt=row["prompt"], messages=messages,
        params=_params(json.loads(row["params"])), text=row["text"], prompt_tokens=row["prompt_tokens"],
        tokens=row["tokens"], seconds=row["seconds"], stop_reason=row["stop_reason"], seed=row["seed"],
        choices=tuple(TokenChoice.from_record(c) for c in json.loads(choices)) if choices else (),
        prompt_format=row["prompt_format"], sent=row["sent"], reasoning=row["reasoning"],
        notes=tuple(json.loads(row["notes"] or "[]")),
        metrics=AnswerMetrics.from_dict(json.loads(row["metrics"])) if row["metrics"] else None,
        escalation=Escalation.from_dict(json.loads(row["escalation"])) if row["escalation"] else None,
        pieces=tuple((int(token), str(text)) for token, text in json.loads(row["pieces"] or "[]")),
    )


def _failure_from_record(record: dict[str, Any]) -> Failure:
    known = {"model", "message", "loop", "index", "item", "response", "skipped"}
    return Failure(**{k: v for k, v in record.items() if k in known})


def _json_ok(table: str, row: dict[str, Any]) -> bool:
    """Whether a salvaged row's JSON columns parse (the readers would fail on it later)."""
    for column in _JSON_COLUMNS.get(table, ()):
        try:
            value = json.loads(row[column])
        except (KeyError, TypeError, ValueError):
            return False
        if column == "spec" and not isinstance(value, dict):
            return False
    return True
