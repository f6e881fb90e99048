"""Wire models of the file share API (``/api/v1/files``)."""

from __future__ import annotations

from pydantic import BaseModel


class FileEntry(BaseModel):
    name: str
    path: str  # relative to the share: Users/<name>/...
    type: str  # file | folder
    size: int
    modified: int  # epoch ms


class FileListing(BaseModel):
    path: str
    entries: list[FileEntry]
