"""Finding the workspace server and talking to it.

Resolution order, the same for the SDK and the CLI:

1. ``LAPIS_URL`` + ``LAPIS_TOKEN`` (what a job or a remote client sets);
2. otherwise the workspace home (``--home``, ``LAPIS_HOME`` or ``~/.lapis``):
   ``server.json`` names the URL of the running server and ``credentials.json``
   holds the token it wrote on first start.

``LapisHTTP`` is a thin keep-alive client: bearer auth on every request, and
error bodies (``{"error_code", "message"}``) turned back into the
``lapis.errors`` classes the server raised, so callers catch one tree of
exceptions whichever side of the wire an error came from.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lapis.config import default_home
from lapis.errors import LapisError, Unauthenticated, from_json

_START_HINT = "start one with `lapis server` (or set LAPIS_URL and LAPIS_TOKEN)"


class ServerNotFound(LapisError):
    """No server is known, or the one we know of does not answer."""

    error_code = "SERVER_NOT_FOUND"
    http_status = 503


@dataclass(frozen=True)
class Connection:
    """Where the server is and how to prove who we are; ``source`` says where we learned it."""

    url: str
    token: str | None
    source: str
    ca_bundle: str | None = None  # set for a server with a self-signed certificate

    def client(self) -> LapisHTTP:
        return LapisHTTP(self.url, self.token, source=self.source, verify=self.ca_bundle)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LapisError(f"cannot read {path}: {exc}") from None
    return data if isinstance(data, dict) else None


def read_token(home: Path | None = None) -> str:
    """The token the local server wrote to ``credentials.json`` (``lapis auth token``)."""
    home = home.expanduser() if home is not None else default_home()
    path = home / "credentials.json"
    creds = _read_json(path)
    if not creds or not creds.get("token"):
        raise ServerNotFound(
            f"no credentials in {path}: the server writes them on its first start; "
            f"run `lapis server --home {home}` once"
        )
    return str(creds["token"])


def resolve(
    home: Path | None = None, env: Mapping[str, str] | None = None, prefer_home: bool = False
) -> Connection:
    """Find the server and token (see the module docstring for the order).

    ``prefer_home`` is for an explicit ``--home`` on the command line: the user
    named a workspace, so its files win over ``LAPIS_URL``.
    """
    env = os.environ if env is None else env
    if home is None:
        home_env = env.get("LAPIS_HOME")
        home = Path(home_env) if home_env else Path.home() / ".lapis"
    home = home.expanduser()
    token = env.get("LAPIS_TOKEN") or None
    if token is None:  # LAPIS_URL alone: the local credentials may still fit
        creds = _read_json(home / "credentials.json")
        token = str(creds["token"]) if creds and creds.get("token") else None
    url = env.get("LAPIS_URL")
    ca = env.get("LAPIS_CA_BUNDLE") or None
    info = _read_json(home / "server.json")
    if url and not prefer_home:
        if ca is None and info and str(info.get("url", "")).rstrip("/") == url.rstrip("/"):
            ca = str(info["ca_bundle"]) if info.get("ca_bundle") else None  # the local server
        return Connection(url.rstrip("/"), token, "LAPIS_URL", ca)
    if not info or not info.get("url"):
        raise ServerNotFound(f"no Lapis server is running for workspace {home}: {_START_HINT}")
    ca = ca or (str(info["ca_bundle"]) if info.get("ca_bundle") else None)
    return Connection(str(info["url"]).rstrip("/"), token, str(home / "server.json"), ca)


def error_from_response(resp: httpx.Response) -> LapisError:
    """The LapisError a failed response stands for (MLflow's error JSON, or a bare status)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error_code" in body:
        err = from_json(body, resp.status_code)
    elif isinstance(body, dict) and "detail" in body:  # FastAPI's own validation errors
        err = LapisError(f"HTTP {resp.status_code}: {body['detail']}")
    else:
        text = resp.text.strip().splitlines()[0][:200] if resp.text.strip() else resp.reason_phrase
        err = LapisError(f"HTTP {resp.status_code} from {resp.request.url.path}: {text}")
    err.status_code = resp.status_code  # type: ignore[attr-defined]
    return err


def status_of(err: BaseException) -> int | None:
    """The HTTP status behind an error from ``LapisHTTP`` (None for transport failures)."""
    status = getattr(err, "status_code", None)
    return status if isinstance(status, int) else None


class LapisHTTP:
    """Keep-alive HTTP client for one server, raising ``lapis.errors`` classes.

    Timeouts are generous on reads: a 100,000-point batch or a large artifact
    can legitimately take a while, while a dead server is noticed at connect.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        source: str = "",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 300.0,
        verify: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.source = source
        self.token = token
        headers = {"User-Agent": "lapis-sdk"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=10.0),
            transport=transport,
            verify=ssl.create_default_context(cafile=verify) if verify else True,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> LapisHTTP:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one request; a non-2xx answer raises the matching LapisError."""
        try:
            resp = self._client.request(
                method,
                path,
                json=json_body,
                content=content,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers=headers,
            )
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code >= 400:
            raise self._error(resp)
        return resp

    @contextlib.contextmanager
    def stream(
        self, method: str, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[httpx.Response]:
        """A response whose body is read in pieces (downloads); errors raise before yielding."""
        try:
            cm = self._client.stream(method, path, params=params)
            resp = cm.__enter__()
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from exc
        try:
            if resp.status_code >= 400:
                resp.read()
                raise self._error(resp)
            yield resp
        finally:
            cm.__exit__(None, None, None)

    def _unreachable(self, exc: Exception) -> ServerNotFound:
        where = f" (from {self.source})" if self.source else ""
        return ServerNotFound(
            f"cannot reach the Lapis server at {self.url}{where}: {exc}; {_START_HINT}"
        )

    def _error(self, resp: httpx.Response) -> LapisError:
        err = error_from_response(resp)
        if resp.status_code == 401 and not isinstance(err, Unauthenticated):
            err = Unauthenticated(err.message)
            err.status_code = 401  # type: ignore[attr-defined]
        return err

    def exists(self, path: str) -> bool:
        """HEAD ``path``: True on 2xx, False on 404; anything else raises.

        Resources whose route answers only GET (405 to HEAD) are asked with GET.
        """
        try:
            resp = self._client.request("HEAD", path)
            if resp.status_code == 405:
                resp = self._client.request("GET", path)
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code == 404:
            return False
        if resp.status_code >= 400:
            raise self._error(resp)
        return True

    def get(self, path: str, /, **params: Any) -> Any:
        return self.request("GET", path, params=params).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json_body=body if body is not None else {}).json()

    def post_raw(self, path: str, content: bytes) -> Any:
        """POST an already-serialised JSON body (the writer's fast path)."""
        headers = {"Content-Type": "application/json"}
        return self.request("POST", path, content=content, headers=headers).json()
