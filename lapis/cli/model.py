"""``lapis model …``: register model versions (local files, job outputs, runs) and trace them.

A local path is uploaded by the CLI (file by file, streamed) into a pending
version that the server marks registered once every file is in; a job output
or ``runs:/`` path is only referenced. ``show`` prints the lineage chain:
job → its inputs and environment → this version → deployments.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    SetOption,
    WebOption,
    apply_sets,
    client,
    console,
    fmt_time,
    named,
    open_web,
    output_format,
    print_json,
)
from lapis.errors import InvalidParameterValue
from lapis.sdk.models import download_model_files, is_local, upload_model
from lapis.specs.yaml_lines import load, read_text_file

app = typer.Typer(
    help="Models: versioned, with the job, data and environment that produced them.",
    no_args_is_help=True,
)

YAML_KEYS = ("$schema", "name", "version", "path", "type", "description", "tags", "properties")


def _q(text: object, safe: str = "") -> str:
    return urllib.parse.quote(str(text), safe=safe)


def _base(name: str, version: object) -> str:
    return f"/api/v1/models/{_q(name)}/versions/{_q(version)}"


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidParameterValue(f"{flag} expects key=value, got '{item}'")
        out[key] = value
    return out


def _from_yaml(file: Path) -> dict[str, Any]:
    text = read_text_file(file)
    doc = load(text, str(file))
    if not isinstance(doc.data, dict):
        raise doc.error((), "a model file must be a mapping of keys to values")
    for key in doc.data:
        if key not in YAML_KEYS:
            raise doc.error((key,), f"is not allowed; model files take: {', '.join(YAML_KEYS)}")
    spec = dict(doc.data)
    path = spec.get("path")
    if isinstance(path, str) and is_local(path) and not Path(path).is_absolute():
        spec["path"] = str(file.parent / path)
    return spec


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Model name.")] = None,
    version: Annotated[
        str | None, typer.Option(help="Integer version (default: the next one).")
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(help="Local file/folder, azureml://jobs/<job>/outputs/…, or runs:/<id>/…"),
    ] = None,
    type_: Annotated[
        str | None, typer.Option("--type", help="custom_model (default) or mlflow_model.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="Description.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag key=value (repeatable).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Model YAML (Azure ML shape).")
    ] = None,
    set_: SetOption = None,
    output: OutputOption = None,
) -> None:
    """Register a model version; a local path is uploaded, a job output only referenced."""
    spec: dict[str, Any] = apply_sets(_from_yaml(file) if file is not None else {}, set_)
    given = {"name": name, "version": version, "path": path, "type": type_}
    spec.update({k: v for k, v in given.items() if v is not None})
    if description is not None:
        spec["description"] = description
    if tag:
        spec["tags"] = {**(spec.get("tags") or {}), **_pairs(tag, "--tag")}
    for key in ("name", "path"):
        if not spec.get(key):
            raise InvalidParameterValue(f"Missing the model's {key} (--{key} or in the YAML)")
    model_path = str(spec["path"])
    with client(ctx) as http:
        if is_local(model_path):
            local = Path(model_path).expanduser()
            if not local.exists():
                raise InvalidParameterValue(f"Model path '{model_path}' does not exist")
            result = upload_model(http, spec, local)
        else:
            result = http.post("/api/v1/models", spec)
    if output_format(ctx, output) is OutputFormat.json:
        print_json(result)
        return
    console().print(
        f"Registered model [bold]{escape(result['name'])}[/bold] version {result['version']}"
    )


@app.command("list")
def list_models(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option(help="Only this model's versions.")] = None,
    include_archived: Annotated[
        bool, typer.Option("--include-archived", help="Show archived versions too.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Model versions, by name, newest version first."""
    with client(ctx) as http:
        found = http.get("/api/v1/models", name=name, include_archived=include_archived)["models"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(found)
        return
    table = Table("name", "version", "type", "job", "created", "description")
    for m in found:
        table.add_row(
            escape(m["name"]),
            str(m["version"]) + (" (archived)" if m["archived"] else ""),
            m["type"],
            escape(m.get("job") or ""),
            fmt_time(m["created_at"]),
            escape((m.get("description") or "").splitlines()[0] if m.get("description") else ""),
        )
    console().print(table)


def _version_or_label(version: str | None, label: str | None) -> str:
    if version and label:
        raise InvalidParameterValue("Give --version or --label, not both")
    return version or label or "latest"


@app.command("show")
@named(what="model")
def show(
    ctx: typer.Context,
    name: str,
    version: Annotated[str | None, typer.Option(help="Version number.")] = None,
    label: Annotated[str | None, typer.Option(help="latest, or an alias.")] = None,
    web: WebOption = False,
    output: OutputOption = None,
) -> None:
    """A version and its lineage: job → inputs/environment → model → deployments."""
    with client(ctx) as http:
        m = http.get(_base(name, _version_or_label(version, label)))
        if web:
            open_web(http, f"/models/{m['name']}/versions/{m['version']}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(m)
        return
    con = console()
    con.print(f"[bold]{escape(m['name'])}[/bold] version {m['version']}  ({m['type']})")
    rows = [
        ("path", m["path"]),
        ("status", m["status"] + (", archived" if m["archived"] else "")),
        ("description", m.get("description")),
        ("created", fmt_time(m["created_at"])),
        ("created by", m.get("created_by")),
        ("run id", m.get("run_id")),
    ]
    for key, value in rows:
        if value:
            con.print(f"  {key:<12} {escape(str(value))}")
    for kind in ("tags", "properties"):
        for k, v in (m.get(kind) or {}).items():
            con.print(
                f"  {kind[:-1] if kind == 'tags' else 'property':<12} {escape(k)} = {escape(v)}"
            )
    _print_lineage(m["lineage"])


def _print_lineage(lin: dict[str, Any]) -> None:
    con = console()
    con.print("lineage")
    job = lin.get("job")
    if job:
        con.print(
            f"  job          {escape(job['name'])} ({escape(str(job['status']))}"
            f", compute {escape(str(job.get('compute') or '-'))})"
        )
    else:
        con.print("  job          none" + (f" (run {lin['run_id']})" if lin.get("run_id") else ""))
    for key, value in (lin.get("inputs") or {}).items():
        shown = value.get("path") or value.get("value")
        con.print(f"  input        {escape(key)} = {escape(str(shown))}")
    env = lin.get("environment")
    if env and (env.get("name") or env.get("digest")):
        digest = f" ({env['digest'][:19]})" if env.get("digest") else ""
        con.print(f"  environment  {escape(str(env.get('name') or '-'))}{escape(digest)}")
    deployments = lin.get("deployments") or []
    if deployments:
        for d in deployments:
            served = f"{d['endpoint']}/{d['deployment']} ({d['provisioning_state']})"
            con.print(f"  deployment   {escape(served)}")
    else:
        con.print("  deployments: none")


@app.command("update")
@named(what="model")
def update(
    ctx: typer.Context,
    name: str,
    version: Annotated[str, typer.Option(help="Version number.")],
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    set_tag: Annotated[
        list[str] | None, typer.Option("--set-tag", help="Set a tag key=value (repeatable).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Change a version's description or tags (its files never change)."""
    body = {"description": description, "tags": _pairs(set_tag, "--set-tag")}
    with client(ctx) as http:
        m = http.request("PATCH", _base(name, version), json_body=body).json()
    _done(ctx, output, m, "updated")


def _done(ctx: typer.Context, output: OutputFormat | None, m: dict[str, Any], what: str) -> None:
    if output_format(ctx, output) is OutputFormat.json:
        print_json(m)
        return
    console().print(f"Model {escape(m['name'])} version {m['version']} {what}")


@app.command("archive")
@named(what="model")
def archive(
    ctx: typer.Context,
    name: str,
    version: Annotated[str, typer.Option(help="Version number.")],
    output: OutputOption = None,
) -> None:
    """Hide a version from ``list`` (it still loads by name and number)."""
    with client(ctx) as http:
        m = http.post(f"{_base(name, version)}/archive")
    _done(ctx, output, m, "archived")


@app.command("restore")
@named(what="model")
def restore(
    ctx: typer.Context,
    name: str,
    version: Annotated[str, typer.Option(help="Version number.")],
    output: OutputOption = None,
) -> None:
    """Undo ``archive``."""
    with client(ctx) as http:
        m = http.post(f"{_base(name, version)}/restore")
    _done(ctx, output, m, "restored")


@app.command("package")
@named(what="model")
def package(
    ctx: typer.Context,
    name: str,
    version: Annotated[str, typer.Option(help="Version number.")],
    output_path: Annotated[Path, typer.Option(help="Empty folder for the Docker build context.")],
    scoring_script: Annotated[
        str | None,
        typer.Option(help="Script with init() and run(raw_data), relative to --code."),
    ] = None,
    code: Annotated[Path | None, typer.Option(help="Folder holding the scoring code.")] = None,
    environment: Annotated[
        str | None,
        typer.Option(help="Environment whose packages the image installs (NAME[:VER|@latest])."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Write a self-contained Docker build context that serves this model version anywhere."""
    import tempfile

    from lapis.endpoints.packaging.context import PackageSpec, write_context

    requirements: list[str] = []
    python = image = None
    with client(ctx) as http:
        if environment:
            ref = environment.removeprefix("azureml:")
            env_name, _, ver = ref.partition(":")
            env_name = env_name.partition("@")[0]  # @latest is the default
            path = f"/api/v1/environments/{_q(env_name)}"
            if ver:
                path += f"/versions/{_q(ver)}"
            env = http.get(path)
            requirements = list(env["spec"].get("requirements") or [])
            python, image = env["spec"].get("python"), env.get("image")
        with tempfile.TemporaryDirectory(prefix="lapis-package-") as tmp:
            model_dir = Path(tmp) / "model"
            download_model_files(http, name, version, model_dir, as_registered=True)
            files = write_context(
                PackageSpec(
                    model_label=f"{name}:{version}",
                    model_dir=model_dir,
                    code_dir=code,
                    scoring_script=scoring_script,
                    requirements=requirements,
                    python=python,
                    image=image,
                ),
                output_path,
            )
    if output_format(ctx, output) is OutputFormat.json:
        print_json([str(p) for p in files])
        return
    console().print(
        f"Wrote a Docker build context for {escape(name)}:{escape(version)} to {output_path} "
        f"({len(files)} files); build it with `docker build -t {escape(name.lower())} "
        f"{output_path}`"
    )


@app.command("download")
@named(what="model")
def download(
    ctx: typer.Context,
    name: str,
    version: Annotated[str, typer.Option(help="Version number.")],
    download_path: Annotated[
        Path, typer.Option(help="Folder to write into (files go under <name>/).")
    ] = Path("."),
    output: OutputOption = None,
) -> None:
    """Download a version's files into DOWNLOAD_PATH/<name>/."""
    target = download_path / name
    with client(ctx) as http:
        written = download_model_files(http, name, version, target)
    if output_format(ctx, output) is OutputFormat.json:
        print_json([str(p) for p in written])
        return
    console().print(f"Downloaded {len(written)} file(s) of model {escape(name)} into {target}")
