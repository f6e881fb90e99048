"""``lapis user|token|role|audit …``: who may use the workspace and what they did.

A token is printed once, when it is made; the server keeps only its hash.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.table import Table

from lapis.cli._common import (
    OutputFormat,
    OutputOption,
    YesOption,
    client,
    console,
    fmt_time,
    named,
    output_format,
    print_json,
    state,
)
from lapis.config import default_home
from lapis.errors import InvalidParameterValue
from lapis.specs.yaml_lines import read_text_file

user_app = typer.Typer(help="Users of the workspace: create, list, disable.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create, list, revoke, rotate.", no_args_is_help=True)
role_app = typer.Typer(
    help="Roles (Owner, Contributor, Reader, AzureML Data Scientist, AzureML Compute Operator "
    "and custom ones) and who holds them.",
    no_args_is_help=True,
)
audit_app = typer.Typer(help="The audit log: every write, who made it and how it ended.")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``90m``, ``2w`` or plain seconds, in seconds."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text.lower())
    if not m or int(m.group(1)) <= 0:
        raise InvalidParameterValue(
            f"'{text}' is not a duration: a positive number with s, m, h, d or w (e.g. 30d)"
        )
    return int(m.group(1)) * _UNITS[m.group(2) or "s"]


def _q(name: str) -> str:
    return quote(name, safe="")


def _show(ctx: typer.Context, output: OutputFormat | None, data: Any, line: str) -> None:
    if output_format(ctx, output) is OutputFormat.json:
        print_json(data)
    else:
        console().print(line, markup=False)


# --- users --------------------------------------------------------------------------------
@user_app.command("create")
@named(what="user")
def user_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User name (letters, digits, . _ - @).")],
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="A role to assign (repeatable).")
    ] = None,
    password: Annotated[
        bool, typer.Option("--password", help="Ask for a password for the studio's sign-in.")
    ] = False,
    token: Annotated[
        bool, typer.Option("--token/--no-token", help="Also issue a first token and print it.")
    ] = True,
    expires_in: Annotated[
        str | None, typer.Option(help="The first token's lifetime, e.g. 30d (default: none).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Create a user with roles; print their first token (shown only now)."""
    body: dict[str, Any] = {"name": name, "roles": role or []}
    if password:
        body["password"] = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with client(ctx) as http:
        user = http.post("/api/v1/users", body)
        issued = None
        if token:
            req: dict[str, Any] = {"name": "first token", "user": user["name"]}
            if expires_in:
                req["expires_in_seconds"] = parse_duration(expires_in)
            issued = http.post("/api/v1/tokens", req)
    roles = ", ".join(user["roles"]) or "no role"
    line = f"Created user {user['name']} ({roles})."
    if issued:
        line += f"\nToken (shown once): {issued['token']}"
    _show(ctx, output, {"user": user, "token": issued}, line)


@user_app.command("list")
def user_list(ctx: typer.Context, output: OutputOption = None) -> None:
    """List users with their roles."""
    with client(ctx) as http:
        users = http.get("/api/v1/users")["users"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(users)
        return
    table = Table(title="Users", title_justify="left")
    for col in ("Name", "Roles", "State", "Password", "Created", "By"):
        table.add_column(col)
    for u in users:
        table.add_row(
            u["name"],
            ", ".join(u["roles"]) or "-",
            "disabled" if u["disabled"] else "enabled",
            "yes" if u["has_password"] else "no",
            fmt_time(u["created_at"]),
            u.get("created_by") or "-",
        )
    console().print(table)


@user_app.command("show")
@named(what="user")
def user_show(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """One user: roles, state, tokens."""
    with client(ctx) as http:
        user = http.get(f"/api/v1/users/{_q(name)}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(user)
        return
    state_ = "disabled" if user["disabled"] else "enabled"
    console().print(
        f"{user['name']}  roles: {', '.join(user['roles']) or '-'}  {state_}  "
        f"created {fmt_time(user['created_at'])} by {user.get('created_by') or '-'}",
        markup=False,
    )


def _set_disabled(ctx: typer.Context, name: str, verb: str, output: OutputFormat | None) -> None:
    with client(ctx) as http:
        user = http.post(f"/api/v1/users/{_q(name)}/{verb}")
    _show(ctx, output, user, f"User {user['name']} {verb}d.")


@user_app.command("disable")
@named(what="user")
def user_disable(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Disable a user: their tokens stop working at once."""
    _set_disabled(ctx, name, "disable", output)


@user_app.command("enable")
@named(what="user")
def user_enable(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """Enable a disabled user again (their unexpired tokens work again)."""
    _set_disabled(ctx, name, "enable", output)


@user_app.command("set-password")
@named(what="user")
def user_set_password(ctx: typer.Context, name: str) -> None:
    """Set a user's studio password (your own, or anyone's with workspaces/users/write)."""
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    with client(ctx) as http:
        http.post(f"/api/v1/users/{_q(name)}/password", {"password": password})
    console().print(f"Password set for {name}.", markup=False)


# --- tokens --------------------------------------------------------------------------------
@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", "-n", help="What the token is for.")] = "cli",
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="For another user (needs users/write).")
    ] = None,
    expires_in: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 30d, 12h (default: no expiry).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Issue a token; it is printed once and only its hash is kept."""
    body: dict[str, Any] = {"name": name}
    if user:
        body["user"] = user
    if expires_in:
        body["expires_in_seconds"] = parse_duration(expires_in)
    with client(ctx) as http:
        issued = http.post("/api/v1/tokens", body)
    until = f", expires {fmt_time(issued['expires_at'])}" if issued.get("expires_at") else ""
    _show(
        ctx,
        output,
        issued,
        f"{issued['token']}\n(token {issued['token_id']} for {issued['user']}{until}; shown once)",
    )


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="Another user's ('*' for all).")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List live tokens (yours unless --user): ids, names, expiry, last use."""
    with client(ctx) as http:
        tokens = http.get("/api/v1/tokens", **({"user": user} if user else {}))["tokens"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(tokens)
        return
    table = Table(title="Tokens", title_justify="left")
    for col in ("ID", "User", "Name", "Created", "Expires", "Job"):
        table.add_column(col)
    for t in tokens:
        table.add_row(
            t["token_id"],
            t["user"],
            t["name"],
            fmt_time(t["created_at"]),
            fmt_time(t["expires_at"]) if t.get("expires_at") else "never",
            t.get("job") or "",
        )
    console().print(table)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: str, output: OutputOption = None) -> None:
    """Revoke a token by id (yours, or anyone's with workspaces/users/write)."""
    with client(ctx) as http:
        info = http.post(f"/api/v1/tokens/{_q(token_id)}/revoke")
    _show(ctx, output, info, f"Token {info['token_id']} ({info['name']}) revoked.")


@token_app.command("rotate")
def token_rotate(ctx: typer.Context, output: OutputOption = None) -> None:
    """Replace the token you are using with a new one (same name and lifetime).

    When it came from the workspace's credentials.json, the file is rewritten.
    """
    with client(ctx) as http:
        old = http.token
        issued = http.post("/api/v1/tokens/rotate")
    home = (state(ctx).home or default_home()).expanduser()
    creds = home / "credentials.json"
    rewritten = _rewrite_credentials(creds, old, issued["token"])
    note = f"; {creds} updated" if rewritten else "; update wherever you keep it"
    _show(
        ctx,
        output,
        issued,
        f"{issued['token']}\n(new token {issued['token_id']}, the old one is revoked{note})",
    )


def _rewrite_credentials(path: Path, old: str | None, new: str) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or data.get("token") != old:
        return False
    data["token"] = new
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    return True


# --- roles ---------------------------------------------------------------------------------
@role_app.command("list")
def role_list(ctx: typer.Context, output: OutputOption = None) -> None:
    """Built-in and custom roles."""
    with client(ctx) as http:
        roles = http.get("/api/v1/roles")["roles"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(roles)
        return
    table = Table(title="Roles", title_justify="left")
    for col in ("Name", "Kind", "Description"):
        table.add_column(col)
    for r in roles:
        table.add_row(r["name"], "built-in" if r["builtin"] else "custom", r["description"])
    console().print(table)


@role_app.command("show")
@named(what="role")
def role_show(ctx: typer.Context, name: str, output: OutputOption = None) -> None:
    """A role's patterns, the actions they allow, and who holds it."""
    with client(ctx) as http:
        role = http.get(f"/api/v1/roles/{_q(name)}")
    if output_format(ctx, output) is OutputFormat.json:
        print_json(role)
        return
    out = console()
    out.print(f"{role['name']} — {role['description']}", markup=False)
    out.print(f"actions: {', '.join(role['actions'])}", markup=False)
    if role["not_actions"]:
        out.print(f"not_actions: {', '.join(role['not_actions'])}", markup=False)
    out.print(f"allows ({len(role['allowed_actions'])}):", markup=False)
    for action in role["allowed_actions"]:
        out.print(f"  {action}", markup=False)
    out.print(f"assigned to: {', '.join(role['assigned_to']) or 'nobody'}", markup=False)


@role_app.command("actions")
def role_actions(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every action a role can allow, with what it lets one do."""
    with client(ctx) as http:
        actions = http.get("/api/v1/actions")["actions"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(actions)
        return
    table = Table(title="Actions", title_justify="left")
    table.add_column("Action")
    table.add_column("Lets one")
    for a in actions:
        table.add_row(a["action"], a["description"])
    console().print(table)


@role_app.command("create")
def role_create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="The role's YAML or JSON file.")],
    output: OutputOption = None,
) -> None:
    """Create a custom role: name, description, actions and not_actions (Azure's shape works)."""
    text = read_text_file(file, "role file")
    with client(ctx) as http:
        role = http.post("/api/v1/roles", {"yaml": text, "source": str(file)})
    _show(ctx, output, role, f"Created role {role['name']}.")


@role_app.command("delete")
@named(what="role")
def role_delete(
    ctx: typer.Context, name: str, yes: YesOption = False, output: OutputOption = None
) -> None:
    """Delete a custom role (its assignments go with it)."""
    from lapis.cli._common import delete_and_report

    delete_and_report(ctx, f"role {name}", f"/api/v1/roles/{_q(name)}", yes, output)


@role_app.command("assign")
def role_assign(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Who gets the role.")],
    role: Annotated[str, typer.Option("--role", "-r", help="Role name.")],
    output: OutputOption = None,
) -> None:
    """Give a user a role."""
    with client(ctx) as http:
        found = http.post("/api/v1/roleAssignments", {"user": user, "role": role})
    _show(ctx, output, found, f"{found['name']} now holds: {', '.join(found['roles'])}.")


@role_app.command("unassign")
def role_unassign(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="Whose role to take away.")],
    role: Annotated[str, typer.Option("--role", "-r", help="Role name.")],
    output: OutputOption = None,
) -> None:
    """Take a role away from a user (the last Owner keeps theirs)."""
    with client(ctx) as http:
        found = http.request(
            "DELETE", "/api/v1/roleAssignments", params={"user": user, "role": role}
        ).json()
    _show(ctx, output, found, f"{found['name']} now holds: {', '.join(found['roles']) or '-'}.")


# --- audit ---------------------------------------------------------------------------------
@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option(help="Only this user's writes.")] = None,
    since: Annotated[str | None, typer.Option(help="Only the last DURATION (e.g. 1h, 7d).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only actions matching this (wildcard *).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    output: OutputOption = None,
) -> None:
    """Recent writes: when, who, action, path, result, from where."""
    import time

    params: dict[str, Any] = {"limit": limit}
    if user:
        params["user"] = user
    if action:
        params["action"] = action
    if since:
        params["since"] = int(time.time() * 1000) - parse_duration(since) * 1000
    with client(ctx) as http:
        rows = http.get("/api/v1/audit", **params)["entries"]
    if output_format(ctx, output) is OutputFormat.json:
        print_json(rows)
        return
    table = Table(title="Audit log", title_justify="left")
    for col in ("When", "Who", "Action", "Request", "Result", "From"):
        table.add_column(col, overflow="fold")
    for r in rows:
        who = r["user_name"] or "-"
        if r.get("job"):
            who += f" (job {r['job']})"
        result = str(r["status"]) + ("" if r["allowed"] else " refused")
        table.add_row(
            fmt_time(r["time"]),
            who,
            r["action"],
            f"{r['method']} {r['path']}",
            result,
            r.get("client") or "-",
        )
    console().print(table)
