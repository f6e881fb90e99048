"""Reading a job's logs in order, from a cursor, for ``lapis job stream``.

A job's log is a sequence of files: the environment build log (only when a
build ran) and then ``user_logs/std_log.txt``. The cursor is
``<file index>:<byte offset>``, so a client that polls never sees a line
twice, and the build log streams exactly like the job's own output.
"""

from __future__ import annotations

from pathlib import Path

from lapis.compute.supervisor import BUILD_LOG, STD_LOG
from lapis.errors import InvalidParameterValue

LOG_FILES = (BUILD_LOG, STD_LOG)
CHUNK = 256 * 1024


def parse_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    index, _, offset = cursor.partition(":")
    try:
        i, o = int(index), int(offset)
    except ValueError:
        raise InvalidParameterValue(f"Invalid log cursor '{cursor}'; expected N:OFFSET") from None
    if i < 0 or o < 0 or i >= len(LOG_FILES):
        raise InvalidParameterValue(f"Invalid log cursor '{cursor}'")
    return i, o


def read(folder: Path, cursor: str | None, limit: int = CHUNK) -> tuple[str, str]:
    """Text after ``cursor`` (whole lines only, unless a line is longer than ``limit``)."""
    index, offset = parse_cursor(cursor)
    parts: list[str] = []
    while index < len(LOG_FILES):
        path = folder / LOG_FILES[index]
        data = b""
        if path.exists():
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read(limit)
        if data:
            end = data.rfind(b"\n")
            if end >= 0:
                data = data[: end + 1]
            elif len(data) < limit:
                data = b""  # a line still being written
            offset += len(data)
            parts.append(data.decode(errors="replace"))
            if len(data) >= limit:
                break
        later = [i for i in range(index + 1, len(LOG_FILES)) if (folder / LOG_FILES[i]).exists()]
        if not later:
            break
        if not data:
            index, offset = later[0], 0
    return "".join(parts), f"{index}:{offset}"
