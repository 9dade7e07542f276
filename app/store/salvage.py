"""Reading what is still readable in a damaged journal file, the way sqlite's `.recover` does.

The file is copied first, so the set-aside original is never written. When a `sqlite3` command-line
tool that can run `.recover` is on PATH (it needs SQLITE_ENABLE_DBPAGE_VTAB, which Debian's build
lacks), its output is loaded into a scratch database and read from there. Otherwise each table is
read through Python's sqlite3, skipping the rowid ranges whose pages fail to read. Both need the
schema page to be readable; a file of random bytes or zeros gives nothing back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECOVER_TIMEOUT_SECONDS = 600.0
_MAX_ROWID = 2**62  # galloping past a damaged region stops here: ~62 probes at most


@dataclass(frozen=True)
class ReadableRows:
    """What could be read from a damaged journal."""

    rows: dict[str, list[dict[str, Any]]]  # table -> rows in rowid order (columns by name)
    method: str  # "sqlite3 .recover" or "row by row"
    damaged_regions: int  # ranges of rows skipped because their pages could not be read


def read_readable_rows(path: Path, tables: tuple[str, ...], added_later: tuple[str, ...] = ()) -> ReadableRows:
    """Every row of `tables` that can still be read from the journal file at `path` (a file that is
    not a database at all gives empty tables). A table of `added_later` missing from the file is
    no damage: an older journal never had it. Raises OSError when the file cannot be copied."""
    with tempfile.TemporaryDirectory(prefix="chain-studio-salvage-") as scratch:
        copy = Path(scratch) / "damaged.sqlite3"
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.exists():  # answers committed after the last checkpoint live only there
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        recovered = _recover_with_cli(copy, Path(scratch) / "recovered.sqlite3")
        source, method = (recovered, "sqlite3 .recover") if recovered else (copy, "row by row")
        db = sqlite3.connect(source)
        try:
            db.row_factory = sqlite3.Row
            with contextlib.suppress(sqlite3.DatabaseError):
                # Lets sqlite open a file shorter than its header says (a truncated journal), as .recover does.
                db.execute("PRAGMA writable_schema=ON")
            rows: dict[str, list[dict[str, Any]]] = {}
            damaged = 0
            for table in tables:
                rows[table], skipped = _read_table(db, table)
                if table in added_later and not rows[table] and skipped == 1 and not _has_table(db, table):
                    skipped = 0
                damaged += skipped
        finally:
            db.close()
    return ReadableRows(rows, method, damaged)


def _recover_with_cli(damaged: Path, target: Path) -> Path | None:
    """`sqlite3 damaged .recover | sqlite3 target`; None when there is no such tool or it failed.
    A non-zero exit means partial SQL (e.g. "no such table: sqlite_dbpage"), which is not used."""
    tool = shutil.which("sqlite3")
    if tool is None:
        return None
    script = target.with_suffix(".sql")
    # -init devnull: a person's ~/.sqliterc must not change the output.
    base = [tool, "-batch", "-init", os.devnull]
    try:
        with open(script, "wb") as out:
            dumped = subprocess.run([*base, str(damaged), ".recover"], stdout=out, stderr=subprocess.DEVNULL,
                                    timeout=RECOVER_TIMEOUT_SECONDS, check=False)
        if dumped.returncode != 0:
            return None
        with open(script, "rb") as sql:
            # Without -bail the tool goes on past a statement that fails, keeping every other row.
            subprocess.run([*base, str(target)], stdin=sql, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=RECOVER_TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return target if target.exists() else None


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    """Whether the file's schema names `table` (False too when the schema cannot be read)."""
    try:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None
    except sqlite3.DatabaseError:
        return False


def _read_table(db: sqlite3.Connection, table: str) -> tuple[list[dict[str, Any]], int]:
    """The readable rows of one table in rowid order, and how many damaged regions were skipped.
    A read that fails resumes after the next rowid whose page reads; rows that come back out of
    order (a zeroed page reads as rowid 0) mark damage too."""
    rows: list[dict[str, Any]] = []
    damaged = 0
    last = 0  # the journal's rowids start at 1
    while True:
        try:
            for row in db.execute(f'SELECT rowid AS "_rowid_", * FROM "{table}" WHERE rowid > ? ORDER BY rowid',
                                  (last,)):
                if row["_rowid_"] <= last:
                    raise sqlite3.DatabaseError("rowid out of order")
                last = row["_rowid_"]
                rows.append({k: row[k] for k in row.keys() if k != "_rowid_"})
            return rows, damaged
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):  # the table's schema entry was lost
                return rows, damaged + 1
            damaged += 1
            resume = _next_readable(db, table, last)
            if resume is None:
                return rows, damaged
            last = resume


def _next_readable(db: sqlite3.Connection, table: str, failing: int) -> int | None:
    """The smallest `after` > `failing` from which a read succeeds: gallop to one that reads, then
    narrow back down so rows just after the damage are not jumped over."""
    step = 1
    while failing + step <= _MAX_ROWID:
        if _reads_after(db, table, failing + step):
            low, high = failing + step // 2, failing + step  # low fails (or is `failing`), high reads
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (low, middle) if _reads_after(db, table, middle) else (middle, high)
            return high
        step *= 2
    return None


def _reads_after(db: sqlite3.Connection, table: str, after: int) -> bool:
    try:
        row = db.execute(f'SELECT rowid FROM "{table}" WHERE rowid > ? ORDER BY rowid LIMIT 1', (after,)).fetchone()
    except sqlite3.DatabaseError:
        return False
    return row is None or row[0] > after
