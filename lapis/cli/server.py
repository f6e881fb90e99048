"""``lapis server``: run the workspace server in the foreground."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lapis.config import DEFAULT_PORT, Settings
from lapis.server.home import lock_home, record_holder
from lapis.server.tls import ca_bundle, check_pair

if TYPE_CHECKING:
    from lapis.server.context import Workspace


def _write_private(path: Path, data: dict[str, object]) -> None:
    """Write JSON readable by the owner only (the file holds a secret)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _open_workspace(settings: Settings) -> Workspace:
    """Open the stores, turning the usual set-up mistakes into one readable line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from lapis.errors import LapisError
    from lapis.server.context import Workspace

    url = settings.resolved_database_url
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        raise LapisError(f"--database-url '{url}' is not a database URL") from None
    try:
        return Workspace.open(settings)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise LapisError(f"cannot open the metadata store {shown}: {reason}") from None
    except ImportError as exc:
        raise LapisError(
            f"a package is missing for {shown} or {settings.resolved_artifact_root}: {exc} "
            "(install the driver or fsspec backend, e.g. `pip install s3fs`)"
        ) from None


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def server_command(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Workspace folder (default $LAPIS_HOME or ~/.lapis)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help=f"Port to listen on (0 picks a free one; default {DEFAULT_PORT}).")
    ] = DEFAULT_PORT,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL of the metadata store, e.g. postgresql+psycopg://user@host/db "
            "(default: SQLite in the home folder).",
        ),
    ] = None,
    artifact_root: Annotated[
        str | None,
        typer.Option(
            "--artifact-root", help="fsspec URL for artifacts (default file://HOME/artifacts)."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="PEM certificate: serve HTTPS (TLS 1.2 or newer)."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="PEM private key of --tls-cert.")
    ] = None,
    webhooks_to_private_networks: Annotated[
        bool | None,
        typer.Option(
            "--webhooks-to-private-networks",
            help="Let registry webhooks call http URLs and private or loopback addresses "
            "(receivers on your own network); by default only https to public addresses.",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Run the workspace server: studio (web UI at /), REST API, MLflow tracking, scoring."""
    import uvicorn

    from lapis.server.app import Background, create_app

    settings = Settings.from_env(
        home=home,
        host=host,
        port=port,
        database_url=database_url,
        artifact_root=artifact_root,
        webhooks_private=webhooks_to_private_networks or None,
    )
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give both --tls-cert and --tls-key, or neither")
    context = check_pair(tls_cert, tls_key) if tls_cert and tls_key else None
    if context is None and not _loopback(host):
        typer.echo(
            f"Warning: serving plain HTTP on {host}: tokens and passwords cross the network "
            "unencrypted. Use --tls-cert/--tls-key (or a TLS-terminating proxy).",
            err=True,
        )
    os.umask(0o077)  # everything the server and its jobs create is private to this user
    lock = lock_home(settings.home)  # before anything is touched: one server per home
    ws = _open_workspace(settings)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise typer.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{'https' if context else 'http'}://{shown_host}:{bound}"
    bundle = ca_bundle(settings.home, tls_cert) if tls_cert and context else None
    if ws.bootstrap is not None:
        _write_private(
            settings.credentials_path,
            {"url": url, "user": ws.bootstrap.user, "token": ws.bootstrap.token},
        )
    from lapis.util import now_ms

    info: dict[str, object] = {
        "url": url,
        "pid": os.getpid(),
        "port": bound,
        "started_at": now_ms(),
    }
    if bundle is not None:
        info["ca_bundle"] = str(bundle)
    _write_private(settings.server_info_path, info)
    record_holder(lock, info)
    typer.echo(f"Lapis server at {url}  (home {settings.home})", err=False)
    typer.echo(f"Studio: open {url}/ and sign in with the token from `lapis auth token`")
    if ws.bootstrap is not None:
        typer.echo(f"Admin token written to {settings.credentials_path}")
    background = Background(url, ca_bundle=str(bundle) if bundle else None)
    config = uvicorn.Config(
        create_app(ws, background),  # its lifespan starts and stops the scheduler and serving
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
        ssl_certfile=str(tls_cert) if context else None,
        ssl_keyfile=str(tls_key) if context else None,
    )
    if context is not None:
        config.load()
        config.ssl = context  # ours: TLS 1.2 minimum, checked above
    # uvicorn re-raises the signal that stopped it once it has shut down; exiting
    # through SystemExit/KeyboardInterrupt instead lets the cleanup below run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        ws.close()
        try:
            current = json.loads(settings.server_info_path.read_text())
            if current.get("pid") == os.getpid():
                settings.server_info_path.unlink()
        except (OSError, ValueError):
            pass
