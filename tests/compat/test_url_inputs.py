"""Job inputs given as http(s) URLs are fetched (by the job's supervisor) and cached by
URL, revalidated with the server's validators — tested against a local HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobkit import get, lapis_cli, log_text, submit, wait

FILES = Path(__file__).parent / "files" / "jobs"


def _job(tmp_path: Path, base: str) -> Path:
    folder = tmp_path / "jobs"
    folder.mkdir(exist_ok=True)
    (folder / "url").mkdir(exist_ok=True)
    (folder / "url" / "count.py").write_text((FILES / "url" / "count.py").read_text())
    text = (FILES / "url-input.yml").read_text().replace("http://127.0.0.1:PORT", base)
    (folder / "job.yml").write_text(text)
    return folder / "job.yml"


def test_an_http_input_is_fetched_then_revalidated(
    lapis_server: Any, tmp_path: Path, web: tuple[str, list[str]]
) -> None:
    base, seen = web
    job_file = _job(tmp_path, base)
    logs = []
    for _ in range(2):
        job = submit(lapis_server, job_file)
        done = wait(lapis_server, job["name"], timeout=120)
        log = log_text(lapis_server, job["name"])
        assert done["status"] == "Completed", (done["status_reason"], log)
        assert "rows 3 header sepal,petal" in log
        logs.append(job["name"])
    assert [line.split()[-1] for line in seen] == ["200", "304"]  # the second: not modified
    assert get(lapis_server, logs[1])["inputs"]["data"]["path"].startswith(base)


def test_other_uris_say_what_to_do(lapis_server: Any, tmp_path: Path) -> None:
    job_file = _job(tmp_path, "http://x")
    for path, says in (
        ("ftp://data.example/iris.csv", "the ftp:// scheme is not supported"),
        ("azureml://datastores/nosuch/paths/iris.csv", "Datastore 'nosuch' not found"),
        ("azureml:iris-nosuch@latest", "Data asset 'iris-nosuch' not found"),
    ):
        text = job_file.read_text().replace("http://x/iris.csv", path)
        job_file.write_text(text)
        done = lapis_cli(lapis_server, "job", "create", "-f", str(job_file))
        assert done.returncode == 1 and says in done.stderr, done.stderr
        job_file.write_text(text.replace(path, "http://x/iris.csv"))
    folder = job_file.read_text().replace("type: uri_file", "type: uri_folder")
    job_file.write_text(folder)
    done = lapis_cli(lapis_server, "job", "create", "-f", str(job_file))
    assert done.returncode == 1 and "give it type: uri_file" in done.stderr, done.stderr


def test_a_data_asset_at_an_http_url_is_fetched_too(
    lapis_server: Any, tmp_path: Path, web: tuple[str, list[str]]
) -> None:
    import uuid

    base, _seen = web
    name = f"iris-url-{uuid.uuid4().hex[:6]}"
    made = lapis_cli(lapis_server, "data", "create", "--name", name, "--type", "uri_file",
                     "--path", f"{base}/iris.csv")  # fmt: skip
    assert made.returncode == 0, made.stderr
    job_file = _job(tmp_path, base)
    job_file.write_text(job_file.read_text().replace(f"{base}/iris.csv", f"azureml:{name}@latest"))
    job = submit(lapis_server, job_file)
    done = wait(lapis_server, job["name"], timeout=120)
    assert done["status"] == "Completed", (
        done["status_reason"],
        log_text(lapis_server, job["name"]),
    )
    assert "rows 3 header sepal,petal" in log_text(lapis_server, job["name"])
    assert get(lapis_server, job["name"])["inputs"]["data"]["asset"] == f"{name}:1"
