"""Plumbing shared by the MLflow-protocol routes.

MLflow handlers take a flat request message — the JSON body for POST/PATCH/
DELETE, the query string for GET — so each route here is a plain function
``(Args, Ctx) -> dict`` run in the thread pool, registered under every prefix
the MLflow client and UI use. ``Args`` does the type checks the protobuf
parser does on MLflow's server, with messages that name the parameter.
"""

from __future__ import annotations

import builtins
import json
import re
import reprlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from lapis.entities.auth import Principal
from lapis.errors import InvalidParameterValue
from lapis.server.authorize import authorize_mlflow, mlflow_action
from lapis.server.body import parse_object
from lapis.server.context import Workspace

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
MLFLOW_V3_PREFIXES = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")  # MLflow 3's trace calls
SCHEMAS = Path(__file__).with_name("schemas.json")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _missing(name: str) -> InvalidParameterValue:
    return InvalidParameterValue(
        f"Missing value for required parameter '{name}'. See the API docs for more information "
        "about request parameters."
    )


_SHORT = reprlib.Repr()  # deep or huge values are shown cut short, never recursed into
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 80, 80


def _bad(name: str, value: object, expected: str) -> InvalidParameterValue:
    shown = _SHORT.repr(value) if not isinstance(value, str) else f'"{value[:200]}"'
    return InvalidParameterValue(
        f"Invalid value {shown} for parameter '{name}' supplied: expected {expected}"
    )


class Args:
    """A request message with typed accessors."""

    def __init__(self, data: Mapping[str, Any], from_query: bool = False) -> None:
        self.data = data
        self.is_query = from_query

    @classmethod
    def from_query(cls, qp: QueryParams) -> Args:
        data: dict[str, Any] = {}
        for key in qp:
            values = qp.getlist(key)
            data[key] = values if len(values) > 1 else values[0]
        return cls(data, from_query=True)

    def raw(self, name: builtins.str) -> Any:
        return self.data.get(name)

    def str(
        self, name: builtins.str, required: bool = False, default: builtins.str | None = None
    ) -> builtins.str | None:
        value = self.data.get(name)
        if value is None or (value == "" and required):
            if required:
                raise _missing(name)
            return default
        if not isinstance(value, str):
            raise _bad(name, value, "a string")
        return value

    def req_str(self, name: builtins.str) -> builtins.str:
        value = self.str(name, required=True)
        assert value is not None
        return value

    def int(
        self, name: builtins.str, required: bool = False, default: builtins.int | None = None
    ) -> builtins.int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise _missing(name)
            return default
        if isinstance(value, bool):
            raise _bad(name, value, "an integer")
        number: builtins.int | None = None
        if isinstance(value, builtins.int):
            number = value
        elif isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            number = builtins.int(value)  # larger floats no longer hold the exact integer
        elif isinstance(value, builtins.str) and value.strip().lstrip("+-").isdigit():
            number = builtins.int(value)
        if number is None:
            raise _bad(name, value, "an integer")
        if not INT64_MIN <= number <= INT64_MAX:
            raise _bad(name, value, "an integer that fits in 64 bits")
        return number

    def int_or(self, name: builtins.str, default: builtins.int) -> builtins.int:
        """An optional integer; the default applies only when it is absent (0 stays 0)."""
        value = self.int(name)
        return default if value is None else value

    def list(self, name: builtins.str) -> builtins.list[Any]:
        value = self.data.get(name)
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if self.is_query:
            return [value]
        raise _bad(name, value, "a list")

    def str_list(self, name: builtins.str) -> builtins.list[builtins.str]:
        out = self.list(name)
        for item in out:
            if not isinstance(item, str):
                raise _bad(name, out, "a list of strings")
        return out

    def kv_list(self, name: builtins.str) -> builtins.list[tuple[Any, Any]]:
        """``[{"key": k, "value": v}, ...]`` as pairs, each element type-checked."""
        out = []
        for item in self.list(name):
            if not isinstance(item, dict) or "key" not in item:
                raise _bad(name, item, 'objects of the form {"key": ..., "value": ...}')
            key, value = item.get("key"), item.get("value")
            if not isinstance(key, str):
                raise _bad(f"{name}.key", key, "a string")
            if isinstance(value, (dict, list)):
                raise _bad(f"{name}.value", value, "a string or a number")
            out.append((key, value))
        return out


@dataclass
class Ctx:
    ws: Workspace
    principal: Principal
    path: Mapping[str, str]


Handler = Callable[[Args, Ctx], dict[str, Any]]
NowHandler = Callable[[Args, Ctx], "dict[str, Any] | None"]

# Handlers with a variant that may run on the event loop, answering None when it would
# have to wait (then the handler runs on a worker thread as usual): the single-call
# tracking writes, where the hop to a thread and back costs more than the write.
NOW: dict[Handler, NowHandler] = {}


def runs_now(handler: Handler) -> Callable[[NowHandler], NowHandler]:
    def register(now: NowHandler) -> NowHandler:
        NOW[handler] = now
        return now

    return register


Route = tuple[str, str, Handler]


def json_response(payload: Any, status: int = 200) -> Response:
    """``payload`` is plain JSON data or a wire model (``lapis.api``), or a list of them."""
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    return Response(
        orjson.dumps(payload, default=_wire), status_code=status, media_type="application/json"
    )


def _wire(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def read_args(request: Request, method: str) -> Args:
    if method == "GET":
        return Args.from_query(request.query_params)
    body = await request.body()
    if not body.strip():
        return Args.from_query(request.query_params)
    data = parse_object(body)
    for key in request.query_params:
        data.setdefault(key, request.query_params[key])
    return Args(data)


class Dispatcher:
    """Finds the handler for a path under an MLflow prefix with one dict lookup.

    Starlette matches routes one regex at a time; with MLflow's ~60 endpoints
    under two prefixes that scan was the largest fixed cost of a small request,
    and it grew with every route added after them. Paths with a parameter
    (``/logged-models/{model_id}``) are few and are tried in order afterwards.
    """

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        self.exact: dict[tuple[str, str], Handler] = {}
        self.patterns: list[tuple[str, re.Pattern[str], Handler, str]] = []
        for method, path, fn in routes:
            if "{" in path:
                regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
                self.patterns.append((method, re.compile(f"^{regex}$"), fn, path))
            else:
                self.exact[(method, path)] = fn

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str], str] | None:
        """The handler, its path parameters and the route's template (for its action)."""
        fn = self.exact.get((method, path))
        if fn is not None:
            return fn, {}, path
        for m, pattern, handler, template in self.patterns:
            if m == method and (match := pattern.match(path)):
                return handler, match.groupdict(), template
        return None

    def allowed(self, path: str) -> builtins.list[str]:
        """The methods a path answers (for a 405's ``Allow``), empty when it is unknown."""
        found = {m for (m, p) in self.exact if p == path}
        found |= {m for m, pattern, _, _ in self.patterns if pattern.match(path)}
        return sorted(found)

    def openapi_paths(self, prefix: str) -> dict[str, dict[str, Any]]:
        """OpenAPI entries for the routes the catch-all serves, so /docs still lists them,
        with MLflow's request and response schemas (generated by scripts/mlflow_schemas.py
        from MLflow's protocol files)."""
        schemas = json.loads(SCHEMAS.read_text()) if SCHEMAS.exists() else {}
        paths: dict[str, dict[str, Any]] = {}
        for method, path, fn in self.routes:
            known = schemas.get(f"{method} {path}", {})
            doc = (fn.__doc__ or "").strip()
            params = [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"\{(\w+)\}", path)
            ]
            taken = {p["name"] for p in params}
            params += [q for q in known.get("query", []) if q["name"] not in taken]
            extra: dict[str, Any] = {}
            if "body" in known:
                body = dict(known["body"])
                body["properties"] = {
                    k: v for k, v in body.get("properties", {}).items() if k not in taken
                }
                body["required"] = [r for r in body.get("required", []) if r not in taken]
                if not body["required"]:
                    del body["required"]
                extra["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": body}},
                }
            ok: dict[str, Any] = {"description": "MLflow JSON response"}
            if "response" in known:
                ok["content"] = {"application/json": {"schema": known["response"]}}
            paths.setdefault(prefix + path, {})[method.lower()] = {
                **({"parameters": params} if params else {}),
                "tags": ["mlflow"],
                "summary": fn.__module__.rsplit(".", 1)[-1] + ": " + fn.__name__.replace("_", " "),
                "description": doc or "MLflow REST API (same request and response as MLflow).",
                "operationId": f"mlflow_{fn.__module__.rsplit('.', 1)[-1]}_{fn.__name__}_{method}",
                **extra,
                "responses": {"200": ok},
            }
        return paths


def mount(
    app: FastAPI, routes: Sequence[Route], prefixes: Sequence[str] = MLFLOW_PREFIXES
) -> Dispatcher:
    """Serve ``routes`` under every prefix through one catch-all route per prefix."""
    dispatcher = Dispatcher(routes)

    async def mlflow_endpoint(request: Request) -> Response:
        found = dispatcher.resolve(request.method, "/" + request.path_params["rest"])
        if found is None:
            allow = dispatcher.allowed("/" + request.path_params["rest"])
            if allow:
                raise StarletteHTTPException(405, headers={"Allow": ", ".join(allow)})
            raise StarletteHTTPException(404)
        fn, params, template = found
        args = await read_args(request, request.method)
        ws, principal = request.app.state.ws, request.state.principal
        action = request.state.action = mlflow_action(request.method, template)
        if principal.job is None:  # roles only: decided in memory
            authorize_mlflow(ws, principal, action, args.data, params)
        else:  # a job's reach may look runs up in the store
            await run_in_threadpool(authorize_mlflow, ws, principal, action, args.data, params)
        ctx = Ctx(ws, principal, params)
        now = NOW.get(fn)
        if now is not None:
            answer = now(args, ctx)
            if answer is not None:
                return json_response(answer)
        return json_response(await run_in_threadpool(fn, args, ctx))

    for i, prefix in enumerate(prefixes):
        # A plain Starlette route: FastAPI's per-request parameter solving buys nothing here.
        # First in the table: routing is a linear scan, and the tracking calls a training
        # job makes are the most frequent requests (no other route shares these prefixes).
        app.router.routes.insert(
            i,
            StarletteRoute(
                f"{prefix}/{{rest:path}}",
                mlflow_endpoint,
                methods=["GET", "POST", "PATCH", "DELETE", "PUT"],
                include_in_schema=False,
                name=f"mlflow_{i}",
            ),
        )

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = default_openapi()
            schema["paths"].update(dispatcher.openapi_paths(prefixes[0]))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return dispatcher
