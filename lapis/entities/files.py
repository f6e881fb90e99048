"""Facts of the workspace's file share that the server and the client both need."""

from __future__ import annotations

USERS = "Users"  # the share's folder of per-user folders, as Azure names it


def user_folder_name(username: str) -> str:
    """A user's folder under ``Users/``: their name, made safe as one path segment."""
    safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in username)
    return safe.strip(".") or "user"
