"""The results store: every run's record in one SQLite file.

A :class:`ResultStore` keeps one row per run id in a table ``runs``. A row moves through the
statuses ``running`` -> ``done`` or ``running`` -> ``failed``; a ``done`` row holds the full run
record as JSON plus a few columns copied out of it for querying (metrics, method, data, seed).

Guarantees
----------
* **All or nothing.** Every write is one SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``).
  A record is either fully written, with its status and all its columns, or absent. A process that
  dies mid-write leaves the previous state of the row, never half of a new one.
* **Readers never see half a record.** The file is in WAL mode: readers see the last committed
  state and do not block writers.
* **Idempotent.** The run id is the primary key. ``put`` of a record whose run id is already
  stored replaces that row (upsert): re-running a run, or two processes finishing the same run,
  leaves exactly one row.
* **A finished run stays finished.** ``mark_running`` and ``mark_failed`` do not overwrite a
  ``done`` row; only ``put`` writes ``done`` rows.
* **Several processes may write at once.** Each process opens its own connection (a store object
  that crosses ``fork`` or pickling reconnects in the new process); writers queue on SQLite's lock
  for up to ``busy_timeout`` seconds (30 by default) instead of failing.
* **Versioned.** A ``meta`` table holds ``schema_version``. A file written by a newer unseen (or
  anything that is not an unseen results store) is refused with a :class:`StoreSchemaError`, and a
  file that is not SQLite at all with a :class:`StoreFormatError`; neither is modified.
"""

from __future__ import annotations

import io
import json
import math
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from unseen.core.errors import StoreError, StoreFormatError, StoreSchemaError
from unseen.core.io import atomic_write_bytes
from unseen.core.record import run_id as compute_run_id
from unseen.core.record import timestamp

STORE_SCHEMA = 1
STATUSES = ("running", "done", "failed")
METRIC_COLUMNS = ("S", "U", "H", "ZSL", "AUSUC")
EXPORT_SUFFIXES = (".csv", ".parquet")

_INHERITED: list[sqlite3.Connection] = []  # connections copied in by fork, kept open on purpose


_SCHEMA_SQL = f"""
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    task        TEXT,
    protocol    TEXT,
    data_name   TEXT,
    data_hash   TEXT,
    method      TEXT,
    seed        INTEGER,
    spec_json   TEXT,
    record_json TEXT,
    error       TEXT,
    started     TEXT,
    finished    TEXT,
    {", ".join(f'"{m}" REAL' for m in METRIC_COLUMNS)}
);
CREATE INDEX runs_task_protocol ON runs (task, protocol);
CREATE INDEX runs_status ON runs (status);
CREATE INDEX runs_method ON runs (method);
"""


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, sort_keys=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store a value that is not JSON-serialisable: {exc}") from exc


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths: the usual non-JSON values in a record
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _as_float(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def spec_from_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild a run spec from a record's fields (the GZSL protocol's spec layout)."""
    data = record.get("data") or {}
    selection = record.get("selection") or {}
    return {
        "task": record.get("task"),
        "protocol": record.get("protocol"),
        "data_hash": data.get("hash"),
        "semantics_kind": data.get("semantics_kind"),
        "method": record.get("method"),
        "hparams": dict(record.get("hparams_fixed") or {}),
        "calibrate": record.get("calibrate"),
        "search": selection.get("search"),
        "seed": record.get("seed"),
    }


def _spec_columns(spec: Mapping[str, Any]) -> tuple:
    """The ``runs`` columns copied from a run spec: task, protocol, data hash, method, seed, JSON."""
    return (
        spec.get("task"),
        spec.get("protocol"),
        spec.get("data_hash"),
        spec.get("method"),
        spec.get("seed"),
        _dumps(dict(spec)),
    )


class ResultStore:
    """Run records in one SQLite file; see the module docstring for the guarantees.

    ``ResultStore(path)`` creates the file (and its folder) if missing. ``read_only=True`` opens
    an existing store for reading only: the file is never created, converted or written, so a
    command that only reads cannot turn a stray file into a store. Use it as a context manager,
    or call :meth:`close`, to release the connection.
    """

    def __init__(
        self, path: str | os.PathLike, *, busy_timeout: float = 30.0, read_only: bool = False
    ) -> None:
        self.path = Path(path)
        self.busy_timeout = float(busy_timeout)
        self.read_only = read_only
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None
        self._connect()  # validate (or create) the file now, not at the first write

    # ----------------------------------------------------------------- connection management
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:
            # inherited over fork: it belongs to the parent. Never use it, and never let it be
            # closed here (closing a copied SQLite handle can disturb the parent's locks/WAL).
            _INHERITED.append(self._conn)
        self._conn = None
        if self.path.is_dir():
            raise StoreError(f"results store {self.path} is a folder; give a file path such as runs.sqlite")
        if self.read_only:
            if not self.path.is_file() or self.path.stat().st_size == 0:
                state = "is empty" if self.path.is_file() else "does not exist"
                raise StoreFormatError(
                    f"results store {self.path} {state}; run `unseen sweep FILE --store {self.path}` first"
                )
            # A store at rest (no -wal file: no writer since the last checkpoint) is opened as
            # immutable, so that reading creates no -shm/-wal files beside it; otherwise read-only.
            at_rest = not self.path.with_name(self.path.name + "-wal").exists()
            target = f"{self.path.resolve().as_uri()}?mode=ro" + ("&immutable=1" if at_rest else "")
            uri = True
        else:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder of results store {self.path} ({exc.strerror}); give a "
                    "store path whose folder exists or can be created"
                ) from None
            target, uri = str(self.path), False
        try:
            conn = sqlite3.connect(target, timeout=self.busy_timeout, isolation_level=None, uri=uri)
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot open results store {self.path} ({exc}); its folder must exist and be writable"
            ) from None
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._conn, self._pid = conn, os.getpid()
            if self.read_only:
                self._check_schema(conn)
            else:  # WAL only once the file is known to be (or has become) an unseen store
                self._init_schema()
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            conn.close()
            self._conn = None
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise StoreFormatError(
                    f"results store {self.path} is not an SQLite database ({exc}); "
                    "point to a different file, or move this one away to start a new store"
                ) from exc
            unopened = "open" in str(exc)
            fix = "; its folder must be writable (SQLite writes a journal beside it)" if unopened else ""
            raise StoreError(f"cannot open results store {self.path}: {exc}{fix}") from exc
        except BaseException:
            conn.close()
            self._conn = None
            raise
        return conn

    def _init_schema(self) -> None:
        with self._transaction() as conn:
            if not self._tables(conn):
                for stmt in filter(str.strip, _SCHEMA_SQL.split(";")):
                    conn.execute(stmt)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(STORE_SCHEMA),)
                )
                return
            self._check_schema(conn)

    @staticmethod
    def _tables(conn: sqlite3.Connection) -> set[str]:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _check_schema(self, conn: sqlite3.Connection) -> None:
        """Refuse a file that is not an unseen store of this schema version (it is not modified)."""
        tables = self._tables(conn)
        if "meta" not in tables:
            raise StoreSchemaError(
                f"{self.path} is an SQLite database but not an unseen results store "
                f"(tables: {', '.join(sorted(tables)) or 'none'}); point to a different file"
            )
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        try:
            version = int(row[0]) if row is not None else None
        except ValueError:
            version = None
        if version != STORE_SCHEMA:
            newer = version is not None and version > STORE_SCHEMA
            fix = (
                "upgrade unseen to a version that knows this schema, or use a new store file"
                if newer
                else "use a new store file"
            )
            raise StoreSchemaError(
                f"results store {self.path} has schema_version {row[0] if row else 'missing'}, "
                f"this unseen reads schema_version {STORE_SCHEMA}; {fix}"
            )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``: take the write lock up front, roll back on any error."""
        conn = self._conn if self._conn is not None and self._pid == os.getpid() else self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._connect().execute(sql, params).fetchall()

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "busy_timeout": self.busy_timeout, "read_only": self.read_only}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.busy_timeout = state["path"], state["busy_timeout"]
        self.read_only = state.get("read_only", False)
        self._conn, self._pid = None, None

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"

    # ------------------------------------------------------------------------------- writes
    @staticmethod
    def _check_spec(rid: str, spec: Mapping[str, Any]) -> None:
        if not isinstance(rid, str) or not rid:
            raise StoreError(f"run id must be a non-empty string, got {rid!r}")
        if not isinstance(spec, Mapping):
            raise StoreError(f"run spec for {rid} must be a dict, got {type(spec).__name__}")
        expected = compute_run_id(dict(spec))
        if expected != rid:
            raise StoreError(
                f"run id {rid} does not match its spec (run_id(spec) = {expected}); "
                "pass the spec the run id was computed from"
            )

    def mark_running(self, run_id: str, spec: Mapping[str, Any]) -> bool:
        """Record that ``run_id`` has started. Returns False (and changes nothing) if it is done."""
        self._check_spec(run_id, spec)
        with self._transaction() as conn:
            cur = conn.execute(
                """
                INSERT INTO runs (run_id, status, task, protocol, data_hash, method, seed,
                                  spec_json, started)
                VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (run_id) DO UPDATE SET
                    status = 'running', spec_json = excluded.spec_json, started = excluded.started,
                    finished = NULL, error = NULL
                WHERE runs.status != 'done'
                """,
                (
                    run_id,
                    *_spec_columns(spec),
                    timestamp(),
                ),
            )
            return cur.rowcount > 0

    def mark_failed(self, run_id: str, spec: Mapping[str, Any], error_text: str) -> bool:
        """Record that ``run_id`` failed with ``error_text`` (a traceback). False if it is done."""
        self._check_spec(run_id, spec)
        now = timestamp()
        with self._transaction() as conn:
            cur = conn.execute(
                """
                INSERT INTO runs (run_id, status, task, protocol, data_hash, method, seed,
                                  spec_json, error, started, finished)
                VALUES (?, 'failed', ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (run_id) DO UPDATE SET
                    status = 'failed', spec_json = excluded.spec_json, error = excluded.error,
                    started = COALESCE(runs.started, excluded.started), finished = excluded.finished
                WHERE runs.status != 'done'
                """,
                (
                    run_id,
                    *_spec_columns(spec),
                    str(error_text),
                    now,
                    now,
                ),
            )
            return cur.rowcount > 0

    def put(self, record: Mapping[str, Any], spec: Mapping[str, Any] | None = None) -> str:
        """Store a finished run's record (status ``done``); returns its run id.

        Upsert: a row with the same run id is replaced, so putting a record twice keeps one row.
        The spec stored with it is ``spec`` if given (checked against the run id), else the spec
        stored by :meth:`mark_running`, else one rebuilt from the record's fields.
        """
        if not isinstance(record, Mapping):
            raise StoreError(f"a run record must be a dict, got {type(record).__name__}")
        rid = record.get("run_id")
        if not isinstance(rid, str) or not rid:
            raise StoreError("a run record needs a non-empty string 'run_id'; build it with run_id(spec)")
        if spec is not None:
            self._check_spec(rid, spec)
        record_json = _dumps(dict(record))
        spec_json = _dumps(dict(spec)) if spec is not None else None
        fallback_spec_json = _dumps(spec_from_record(record))
        data = record.get("data") or {}
        metrics = record.get("metrics") or {}
        seed = record.get("seed")
        with self._transaction() as conn:
            conn.execute(
                f"""
                INSERT INTO runs (run_id, status, task, protocol, data_name, data_hash, method, seed,
                                  spec_json, record_json, error, started, finished,
                                  {", ".join(f'"{m}"' for m in METRIC_COLUMNS)})
                VALUES (?, 'done', ?, ?, ?, ?, ?, ?, COALESCE(?, ?), ?, NULL, ?, ?,
                        {", ".join("?" for _ in METRIC_COLUMNS)})
                ON CONFLICT (run_id) DO UPDATE SET
                    status = 'done', task = excluded.task, protocol = excluded.protocol,
                    data_name = excluded.data_name, data_hash = excluded.data_hash,
                    method = excluded.method, seed = excluded.seed,
                    spec_json = COALESCE(?, runs.spec_json, excluded.spec_json),
                    record_json = excluded.record_json, error = NULL,
                    started = COALESCE(runs.started, excluded.started), finished = excluded.finished,
                    {", ".join(f'"{m}" = excluded."{m}"' for m in METRIC_COLUMNS)}
                """,
                (
                    rid,
                    record.get("task"),
                    record.get("protocol"),
                    data.get("name"),
                    data.get("hash"),
                    record.get("method"),
                    int(seed) if isinstance(seed, int | float) and not isinstance(seed, bool) else None,
                    spec_json,
                    fallback_spec_json,
                    record_json,
                    record.get("created") or timestamp(),
                    timestamp(),
                    *(_as_float(metrics.get(m)) for m in METRIC_COLUMNS),
                    spec_json,
                ),
            )
        return rid

    # -------------------------------------------------------------------------------- reads
    def get(self, run_id: str) -> dict[str, Any] | None:
        """The record of a done run, or None if the run is absent, running or failed."""
        rows = self._read("SELECT record_json FROM runs WHERE run_id = ? AND status = 'done'", (run_id,))
        return json.loads(rows[0]["record_json"]) if rows else None

    def status(self, run_id: str) -> str | None:
        """'running', 'done' or 'failed'; None if the store has never seen ``run_id``."""
        rows = self._read("SELECT status FROM runs WHERE run_id = ?", (run_id,))
        return rows[0]["status"] if rows else None

    def error(self, run_id: str) -> str | None:
        """The error text of a failed run, else None."""
        rows = self._read("SELECT error FROM runs WHERE run_id = ?", (run_id,))
        return rows[0]["error"] if rows else None

    def records(
        self, task: str | None = None, protocol: str | None = None, status: str | None = "done"
    ) -> list[dict[str, Any]]:
        """Rows matching the filters, ordered by run id.

        For ``status="done"`` (the default) these are the full run records. For any other status
        (``"running"``, ``"failed"``, or ``None`` for all) they are row summaries: ``run_id``,
        ``status``, ``spec``, ``error``, ``started``, ``finished`` and, for done rows, ``record``.
        """
        if status is not None and status not in STATUSES:
            raise StoreError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)} or None")
        where, params = [], []
        for col, val in (("task", task), ("protocol", protocol), ("status", status)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY run_id"
        rows = self._read(sql, tuple(params))
        if status == "done":
            return [json.loads(r["record_json"]) for r in rows]
        return [
            {
                "run_id": r["run_id"],
                "status": r["status"],
                "spec": json.loads(r["spec_json"]) if r["spec_json"] else None,
                "error": r["error"],
                "started": r["started"],
                "finished": r["finished"],
                "record": json.loads(r["record_json"]) if r["record_json"] else None,
            }
            for r in rows
        ]

    def finished_ids(self) -> set[str]:
        """Run ids whose status is done (what a resumed sweep can skip)."""
        return {r["run_id"] for r in self._read("SELECT run_id FROM runs WHERE status = 'done'")}

    def __len__(self) -> int:
        """Number of rows, whatever their status."""
        return int(self._read("SELECT COUNT(*) AS n FROM runs")[0]["n"])

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and self.status(run_id) is not None

    # ------------------------------------------------------------------------------ tables
    def to_dataframe(self):
        """One row per done run: identity columns, ``spec.*``, ``hparams.*``, metrics, timing.

        Metric columns are ``S``, ``U``, ``H``, ``ZSL``, ``AUSUC`` (calibrated where the run
        calibrated) and ``uncalibrated.<metric>``; nested or list values are JSON strings.
        """
        import pandas as pd

        base = ["run_id", "task", "protocol", "data_name", "data_hash", "method", "seed"]
        rows = self._read(
            "SELECT run_id, data_name, spec_json, record_json, started, finished FROM runs "
            "WHERE status = 'done' ORDER BY run_id"
        )
        out = []
        for r in rows:
            rec = json.loads(r["record_json"])
            spec = json.loads(r["spec_json"]) if r["spec_json"] else {}
            data = rec.get("data") or {}
            row: dict[str, Any] = {
                "run_id": r["run_id"],
                "task": rec.get("task"),
                "protocol": rec.get("protocol"),
                "data_name": data.get("name"),
                "data_hash": data.get("hash"),
                "method": rec.get("method"),
                "seed": rec.get("seed"),
                "calibrate": rec.get("calibrate"),
                "gamma": rec.get("gamma"),
            }
            row.update(_flatten(spec, "spec."))
            row.update(_flatten(rec.get("hparams") or {}, "hparams."))
            row.update(_flatten(rec.get("metrics") or {}, ""))
            row.update(_flatten(rec.get("metrics_uncalibrated") or {}, "uncalibrated."))
            row.update(_flatten(rec.get("timing") or {}, "timing."))
            row["created"] = rec.get("created")
            row["finished"] = r["finished"]
            out.append(row)
        if not out:
            return pd.DataFrame(columns=base)
        return pd.DataFrame(out)

    def export(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dataframe` to ``.csv`` or ``.parquet`` (by suffix), atomically."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise StoreError(
                f"cannot export results to {path}: unknown suffix {path.suffix or '(none)'!r}; "
                f"use one of {', '.join(EXPORT_SUFFIXES)}"
            )
        if suffix == ".parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError as exc:
                raise StoreError(
                    f"cannot export results to {path}: Parquet needs pyarrow (pip install pyarrow); "
                    "or export to .csv"
                ) from exc
        df = _parquet_safe(self.to_dataframe()) if suffix == ".parquet" else self.to_dataframe()
        if suffix == ".csv":
            data = df.to_csv(index=False).encode("utf-8")
        else:
            buffer = io.BytesIO()
            df.to_parquet(buffer, index=False)
            data = buffer.getvalue()
        atomic_write_bytes(path, data)
        return path


def _flatten(d: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, list | tuple):
            out[key] = json.dumps(v, default=str)
        else:
            out[key] = v
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _parquet_safe(df):
    """Object columns mixing value types (e.g. 1.0 and "auto") become strings for Parquet."""
    for col in df.columns:
        if df[col].dtype == object:
            kinds = {type(v) for v in df[col] if not _missing(v)}
            if len(kinds) > 1:
                df[col] = df[col].map(lambda v: None if _missing(v) else str(v))
    return df
