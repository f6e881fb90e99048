"""The batch-scoring driver: the program every batch-endpoint invocation job runs.

It runs inside the deployment's environment, where Lapis is not installed, so
it is one standard-library-only script; the server copies it into the job's
code snapshot as ``lapis_batch_driver.py`` with its settings beside it in
``lapis_batch.json``. It also runs by hand::

    python lapis_batch_driver.py --config lapis_batch.json --data DIR --model DIR --output DIR

What it does, as Azure's batch deployments do:

1. lists the input folder's files (recursively, sorted by relative path) and
   cuts the list into mini-batches of ``mini_batch_size`` files;
2. starts ``workers`` processes (``instance_count * max_concurrency_per_instance``;
   ``spawn`` start method, so nothing of the parent leaks in); each imports the
   scoring script, calls ``init()`` once, then ``run(mini_batch)`` — a list of
   file paths — for every mini-batch it is given. ``run`` returns a list (one
   element per row: a string, a list/tuple of values, a dict, a number) or a
   pandas DataFrame; fewer elements than files counts the difference as
   failed files;
3. retries a mini-batch whose ``run`` raised, whose worker died, or that ran
   past ``timeout`` seconds (its worker is killed and replaced) up to
   ``max_retries`` times, writing the error and traceback to stdout (the job
   log) and to ``logs/batch/errors.txt``;
4. counts the files of mini-batches that failed every attempt; past
   ``error_threshold`` (``-1``: never) it stops and exits 1 with
   ``errors N > error_threshold T``;
5. writes every returned row, one per line, in input order, to
   ``<output>/<output_file_name>`` (``append_row``), or only a summary
   (``summary_only``: ``<output>/summary.json``); either way the summary goes
   to ``logs/batch/summary.json``.

On a compute cluster an invocation is a gang of one driver per node
(``LAPIS_BATCH_SPREAD`` set, ``RANK``/``WORLD_SIZE`` from the gang): driver r
scores mini-batches r, r+W, r+2W… with ``workers / W`` processes, leaves its rows
and their mini-batch numbers under ``<output>/.parts/``, and driver 0 merges
them, in input order, into the one output file and summary.

With no scoring script (an MLflow model), each worker loads the model with
``mlflow.pyfunc`` and scores CSV or Parquet files, one output row per
prediction led by the file's name; mlflow must be installed in the
environment, and the job says so plainly when it is not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
try:
    from lapis.endpoints.runtime.batch_scoring import (
        DriverError,
        mlflow_scorer,
        user_scorer,
    )
except ImportError:  # shipped beside this file (lapis_batch_scoring.py), Lapis not installed
    from lapis_batch_scoring import (  # type: ignore[no-redef]
        DriverError,
        mlflow_scorer,
        user_scorer,
    )


def worker_main(
    index: int,
    settings: dict[str, Any],
    code_dir: str,
    model_dir: str,
    output_dir: str,
    conn: Connection,
) -> None:
    """One worker process: init once, then score whatever mini-batch the driver sends.

    As in Azure: ``AZUREML_MODEL_DIR`` is the folder holding the registered model's
    folder (or file), ``AZUREML_BI_OUTPUT_PATH`` the output folder, where a scoring
    script may write files of its own beside the predictions file."""
    os.environ["AZUREML_MODEL_DIR"] = model_dir
    os.environ["AZUREML_BI_OUTPUT_PATH"] = output_dir
    os.environ["LAPIS_BATCH_WORKER"] = str(index)
    try:
        if settings.get("mlflow_model"):
            scorer = mlflow_scorer(Path(model_dir))
        else:
            scorer = user_scorer(Path(code_dir) / str(settings["scoring_script"]))
    except BaseException as exc:
        conn.send(("init_failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        return
    conn.send(("ready",))
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        batch, attempt, files = task
        try:
            lines, failed = scorer(files)
        except BaseException as exc:
            conn.send(
                ("error", batch, attempt, f"{type(exc).__name__}: {exc}", traceback.format_exc())
            )
            continue
        conn.send(("done", batch, attempt, lines, failed))


# --- the driver (the job's main process) -----------------------------------------------
class Worker:
    def __init__(self, ctx: Any, index: int, args: tuple[Any, ...]) -> None:
        self.index = index
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker_main, args=(index, *args, child), name=f"batch-worker-{index}"
        )
        self.proc.start()
        child.close()
        self.ready = False
        self.task: tuple[int, int] | None = None  # (mini-batch, attempt)
        self.started = 0.0
        self.eof = False  # its end of the pipe closed: the process is gone

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()


class Driver:
    def __init__(
        self,
        settings: dict[str, Any],
        code_dir: Path,
        data: Path,
        model: Path,
        output: Path,
        logs: Path,
    ) -> None:
        self.s = settings
        self.code_dir, self.data, self.model, self.output, self.logs = (
            code_dir,
            data,
            model,
            output,
            logs,
        )
        self.level = LEVELS.get(str(settings.get("logging_level", "info")).lower(), 20)
        self.files = list_files(data)
        size = int(settings["mini_batch_size"])
        self.batches = [self.files[i : i + size] for i in range(0, len(self.files), size)]
        self.rank, self.world = _spread()
        self.ids = list(range(self.rank, len(self.batches), self.world))  # global numbers
        if self.world > 1:  # this node's share; the files counted are its own
            self.batches = [self.batches[i] for i in self.ids]
            self.files = [f for b in self.batches for f in b]
        self.counts: dict[int, int] = {}
        self.total = len(self.batches)
        self.lines: dict[int, list[str]] = {}
        self.next_write = 0
        self.done = 0
        self.files_done = 0
        self.failed_files = 0
        self.failed_batches = 0
        self.retries = 0
        self.pending: deque[tuple[int, int]] = deque((i, 1) for i in range(self.total))
        self.workers: dict[int, Worker] = {}
        self.ctx = mp.get_context("spawn")
        self.out: Any = None

    # -- messages --
    def say(self, message: str, level: int = 20) -> None:
        if level >= self.level:
            prefix = "" if level < 30 else ("WARNING: " if level == 30 else "ERROR: ")
            print(f"{prefix}{message}", flush=True)

    def record_error(self, batch: int, attempt: int, reason: str, trace: str | None) -> None:
        block = f"mini-batch {batch + 1}/{self.total} attempt {attempt}: {reason}\n"
        block += f"  files: {', '.join(Path(f).name for f in self.batches[batch])}\n"
        if trace:
            block += trace if trace.endswith("\n") else trace + "\n"
        with open(self.logs / "errors.txt", "a") as fh:
            fh.write(block + "\n")
        if trace:
            self.say(trace.rstrip("\n"), 30)

    # -- workers --
    def start_worker(self, index: int) -> None:
        self.output.mkdir(parents=True, exist_ok=True)
        args = (self.s, str(self.code_dir), str(self.model), str(self.output))
        self.workers[index] = Worker(self.ctx, index, args)

    def replace_worker(self, w: Worker) -> None:
        w.kill()
        self.start_worker(w.index)

    # -- outcomes --
    def attempt_failed(self, batch: int, attempt: int, reason: str, trace: str | None) -> None:
        self.record_error(batch, attempt, reason, trace)
        tries = int(self.s["max_retries"]) + 1
        if attempt < tries:
            self.retries += 1
            self.say(
                f"mini-batch {batch + 1}/{self.total} failed on attempt {attempt}/{tries}: "
                f"{reason}; retrying",
                30,
            )
            self.pending.appendleft((batch, attempt + 1))
            return
        count = len(self.batches[batch])
        self.failed_batches += 1
        self.say(
            f"mini-batch {batch + 1}/{self.total} failed all {tries} attempts: {reason}; "
            f"its {count} files count as failed",
            40,
        )
        self.finished(batch, attempt, [], count)

    def finished(self, batch: int, attempt: int, lines: list[str], failed: int) -> None:
        self.done += 1
        self.files_done += len(self.batches[batch])
        self.failed_files += failed
        self.lines[batch] = lines
        self.counts[batch] = len(lines)
        self.flush_rows()
        retries = attempt - 1
        note = (
            f"{len(self.batches[batch])} files, {retries} {'retry' if retries == 1 else 'retries'}"
        )
        if failed:
            note += f", {failed} failed"
        self.say(
            f"mini-batch {batch + 1}/{self.total} done ({note}); "
            f"{self.files_done}/{len(self.files)} files processed"
        )
        limit = int(self.s["error_threshold"])
        if limit >= 0 and self.failed_files > limit:
            raise DriverError(
                f"errors {self.failed_files} > error_threshold {limit}: "
                f"{self.failed_files} files failed; details in logs/batch/errors.txt"
            )

    def flush_rows(self) -> None:
        while self.next_write in self.lines:
            rows = self.lines.pop(self.next_write)
            if self.out is not None:
                for row in rows:
                    self.out.write(row + "\n")
                self.out.flush()
            self.next_write += 1

    def on_message(self, w: Worker, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "ready":
            w.ready = True
        elif kind == "init_failed":
            self.say(msg[2].rstrip("\n"), 40)
            raise DriverError(f"init() failed in worker {w.index}: {msg[1]}")
        elif kind in ("done", "error"):
            w.task = None
            if kind == "done":
                self.finished(msg[1], msg[2], msg[3], msg[4])
            else:
                self.attempt_failed(msg[1], msg[2], msg[3], msg[4])

    def check_health(self) -> None:
        timeout = float(self.s["timeout"])
        now = time.monotonic()
        for w in list(self.workers.values()):
            if w.task is not None and now - w.started > timeout:
                batch, attempt = w.task
                self.replace_worker(w)
                self.attempt_failed(
                    batch, attempt, f"timed out after {timeout:g} s (worker restarted)", None
                )
            elif w.eof or (not w.proc.is_alive() and not w.conn.poll()):
                w.proc.join(2)  # its pipe closes a moment before it is reaped
                code = w.proc.exitcode
                if w.task is None and not w.ready:
                    raise DriverError(f"worker {w.index} died during init() (exit code {code})")
                task = w.task
                self.replace_worker(w)
                if task is not None:
                    self.attempt_failed(
                        task[0], task[1], f"the worker process died (exit code {code})", None
                    )

    def dispatch(self) -> None:
        for w in self.workers.values():
            if w.ready and w.task is None and self.pending:
                batch, attempt = self.pending.popleft()
                w.task, w.started = (batch, attempt), time.monotonic()
                self.say(
                    f"mini-batch {batch + 1}/{self.total} attempt {attempt} → worker {w.index}", 10
                )
                w.conn.send((batch, attempt, self.batches[batch]))

    def run(self) -> dict[str, Any]:
        started = time.time()
        action = self.s["output_action"]
        count = min(max(1, int(self.s["workers"]) // self.world), self.total)
        self.say(
            f"batch scoring {len(self.files)} files from {self.data} in {self.total} mini-batches "
            f"of up to {self.s['mini_batch_size']} with {count} worker(s); "
            f"retries {self.s['max_retries']}, timeout {self.s['timeout']} s, "
            f"error_threshold {self.s['error_threshold']}"
        )
        self.output.mkdir(parents=True, exist_ok=True)
        target = self.output / str(self.s["output_file_name"])
        parts = self.output / ".parts"
        if self.world > 1:
            parts.mkdir(exist_ok=True)
            target = parts / f"{self.rank}.rows"
        with contextlib.ExitStack() as stack:
            if action == "append_row":
                self.out = stack.enter_context(open(target, "w", newline=""))
            stack.callback(self.stop_workers)
            for i in range(count):
                self.start_worker(i)
            while self.done < self.total:
                self.dispatch()
                self.receive()
                self.check_health()
        summary = {
            "files": len(self.files),
            "mini_batches": self.total,
            "failed_files": self.failed_files,
            "failed_mini_batches": self.failed_batches,
            "retries": self.retries,
            "output_action": action,
            "output": str(target) if action == "append_row" else None,
            "seconds": round(time.time() - started, 3),
        }
        if self.world > 1:
            return self.hand_over(parts, summary)
        (self.logs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if action == "summary_only":
            (self.output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        where = f"; predictions in {target.name}" if action == "append_row" else ""
        self.say(
            f"batch scoring done: {len(self.files)} files in {self.total} mini-batches, "
            f"{self.retries} {'retry' if self.retries == 1 else 'retries'}, "
            f"{self.failed_files} failed files{where}"
        )
        return summary

    def hand_over(self, parts: Path, summary: dict[str, Any]) -> dict[str, Any]:
        """Leave this node's share for driver 0; driver 0 waits for every share and
        merges them in input order (the gang ends everyone if one driver fails)."""
        share = {"batches": [[self.ids[b], self.counts.get(b, 0)] for b in range(self.total)],
                 "summary": summary}  # fmt: skip
        tmp = parts / f".{self.rank}.json"
        tmp.write_text(json.dumps(share))
        tmp.rename(parts / f"{self.rank}.json")
        self.say(f"node {self.rank} of {self.world}: {self.total} mini-batches scored")
        if self.rank != 0:
            return summary
        while not all((parts / f"{r}.json").exists() for r in range(self.world)):
            time.sleep(0.2)
        shares = [json.loads((parts / f"{r}.json").read_text()) for r in range(self.world)]
        rows: dict[int, list[str]] = {}
        for r, got in enumerate(shares):
            if not (parts / f"{r}.rows").exists():
                continue
            with open(parts / f"{r}.rows", newline="") as fh:
                for number, count in got["batches"]:
                    rows[int(number)] = [fh.readline() for _ in range(int(count))]
        action = self.s["output_action"]
        target = self.output / str(self.s["output_file_name"])
        if action == "append_row":
            with open(target, "w", newline="") as out:
                for number in sorted(rows):
                    out.writelines(rows[number])
        merged = dict(summary)
        for key in ("files", "mini_batches", "failed_files", "failed_mini_batches", "retries"):
            merged[key] = sum(int(s["summary"][key]) for s in shares)
        merged["seconds"] = max(float(s["summary"]["seconds"]) for s in shares)
        merged["nodes"] = self.world
        merged["output"] = str(target) if action == "append_row" else None
        (self.logs / "summary.json").write_text(json.dumps(merged, indent=2) + "\n")
        if action == "summary_only":
            (self.output / "summary.json").write_text(json.dumps(merged, indent=2) + "\n")
        import shutil

        shutil.rmtree(parts, ignore_errors=True)
        self.say(f"merged {self.world} nodes' shares: {merged['files']} files")
        return merged

    def receive(self) -> None:
        conns = {w.conn: w for w in self.workers.values()}
        for ready in wait(list(conns), timeout=0.2):
            w = conns[ready]
            try:
                msg = w.conn.recv()
            except (EOFError, OSError):
                w.eof = True  # it died: check_health sees to it
                continue
            self.on_message(w, msg)

    def stop_workers(self) -> None:
        for w in self.workers.values():
            try:
                if w.proc.is_alive():
                    w.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        for w in self.workers.values():
            w.proc.join(max(0.0, deadline - time.monotonic()))
            w.kill()


def _spread() -> tuple[int, int]:
    """(rank, world) of a driver spread over a cluster's nodes; (0, 1) otherwise."""
    if not os.environ.get("LAPIS_BATCH_SPREAD"):
        return 0, 1
    return int(os.environ.get("RANK", "0")), max(1, int(os.environ.get("WORLD_SIZE", "1")))


def list_files(root: Path) -> list[str]:
    """Every regular file below ``root``, sorted by relative path (stable input order);
    a ``uri_file`` input is the one file."""
    if root.is_file():
        return [str(root)]
    found: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.isfile(full):
                found.append((Path(full).relative_to(root).as_posix(), full))
    return [full for _, full in sorted(found)]


def _folder(given: str | None, env: str, what: str) -> Path:
    value = given or os.environ.get(env)
    if not value:
        raise DriverError(f"no {what} folder: pass --{what} or set {env}")
    return Path(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score a folder of files in mini-batches.")
    parser.add_argument("--config", default="lapis_batch.json", help="the driver's settings")
    parser.add_argument("--data", help="input folder (default $AZURE_ML_INPUT_data)")
    parser.add_argument("--model", help="model folder (default $AZURE_ML_INPUT_model)")
    parser.add_argument("--output", help="output folder (default $AZURE_ML_OUTPUT_score)")
    parser.add_argument("--logs", default="logs/batch", help="where errors and the summary go")
    args = parser.parse_args(argv)
    try:
        config = Path(args.config).resolve()
        settings = json.loads(config.read_text())
        data = _folder(args.data, "AZURE_ML_INPUT_data", "data")
        model = _folder(args.model, "AZURE_ML_INPUT_model", "model")
        output = _folder(args.output, "AZURE_ML_OUTPUT_score", "output")
        if not data.exists():
            raise DriverError(f"the input {data} does not exist")
        logs = Path(args.logs)
        logs.mkdir(parents=True, exist_ok=True)
        Driver(settings, config.parent, data, model, output, logs).run()
    except DriverError as exc:
        print(f"batch scoring failed: {exc}", file=sys.stderr, flush=True)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"batch scoring failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
