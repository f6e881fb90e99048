"""Engine creation and schema migration.

SQLite is the embedded default. It runs in WAL mode so readers never wait for
the writer, with ``synchronous=NORMAL``: a committed transaction survives the
server being killed (kill -9 loses nothing the WAL holds); only a power cut
can lose the last few commits, the trade every embedded database makes for
speed. All writes from this process go through one lock (``Database.write``)
so SQLite never answers SQLITE_BUSY to ourselves; PostgreSQL gets no lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
CHECKPOINT_EVERY = 1000  # write_now commits between two passive WAL checkpoints
T = TypeVar("T")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite opens transactions implicitly; leave that to SQLAlchemy's
    # BEGIN so that a connection in the pool never holds a read snapshot.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


class Database:
    """An engine plus the write discipline that suits its dialect."""

    def __init__(self, url: str, *, pool_size: int = 8) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.dialect = "sqlite" if self.is_sqlite else "postgresql"
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        self._now_conn: Any = None  # write_now's own connection, opened on first use
        self._now_commits = 0
        self._memory = self.is_sqlite and url.split("///", 1)[-1] in ("", ":memory:")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=16,
                connect_args={"check_same_thread": False},
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        else:
            self.engine = create_engine(
                url, pool_size=pool_size, max_overflow=16, pool_pre_ping=True
            )

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that commits on exit; only then may the caller acknowledge."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def write_now(self, work: Callable[[Any], T]) -> tuple[bool, T | None]:
        """SQLite: run ``work(dbapi)`` in a write transaction *now*, on the calling thread,
        if no other thread holds the write lock; ``(False, None)`` when one does.

        The server calls this on its event loop for single tracking calls: a transaction
        of three short statements costs less than handing it to a worker thread and back.
        It never waits, and never checkpoints there: its connection has automatic WAL
        checkpoints off, and every ``CHECKPOINT_EVERY`` commits a background thread runs
        a passive checkpoint instead. Committed before it returns, as every write.
        """
        lock = self._write_lock
        if lock is None or self._memory or not lock.acquire(blocking=False):
            return False, None
        try:
            dbapi = self._now_connection()
            dbapi.execute("BEGIN")
            try:
                result = work(dbapi)
            except BaseException:
                dbapi.execute("ROLLBACK")
                raise
            dbapi.execute("COMMIT")
            self._now_commits += 1
            if self._now_commits % CHECKPOINT_EVERY == 0:
                threading.Thread(target=self._checkpoint, name="lapis-checkpoint").start()
            return True, result
        finally:
            lock.release()

    def _now_connection(self) -> Any:
        if self._now_conn is None:
            import sqlite3

            path = self.url.split("///", 1)[-1]
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            _sqlite_pragmas(conn, None)
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._now_conn = conn
        return self._now_conn

    def _checkpoint(self) -> None:
        with contextlib.suppress(Exception), self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def write_raw(self) -> Iterator[Any]:
        """SQLite only: the driver's connection inside one write transaction.

        For the ingest hot path (one ``log_metric`` call is one transaction of three
        statements): SQLAlchemy's connection, event and result layers cost twice what
        SQLite itself spends there. Same lock, same commit-before-acknowledge rule.
        """
        if self._write_lock is None:
            raise RuntimeError("write_raw is for SQLite; use write()")
        with self._write_lock:
            pooled = self.engine.raw_connection()
            try:
                dbapi = pooled.driver_connection
                dbapi.execute("BEGIN")
                try:
                    yield dbapi
                except BaseException:
                    dbapi.execute("ROLLBACK")
                    raise
                dbapi.execute("COMMIT")
            finally:
                pooled.close()  # back to the pool

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the newest revision (Alembic), as every server start does."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.attributes["connection"] = None
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        if self._now_conn is not None:
            self._now_conn.close()
            self._now_conn = None
        self.engine.dispose()
