"""Page tokens: opaque to clients, an offset inside, in MLflow's own format.

MLflow's tokens are base64 of ``{"offset": n}``; we write the same bytes, so
a token from either server decodes on the other, and read back only what we
could have written: anything else is the client's error, not ours.
"""

from __future__ import annotations

import base64
import binascii
import json

from lapis.errors import InvalidParameterValue


def encode_page_token(offset: int) -> str:
    """The token for the page that starts ``offset`` rows in."""
    return base64.b64encode(json.dumps({"offset": int(offset)}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    """The offset inside ``token``; no token (None or "") is the first page."""
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token.encode(), validate=True))
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidParameterValue(
            f"Invalid page token '{token}': not a token this server issued"
        ) from None
    offset = data.get("offset") if isinstance(data, dict) else None
    if isinstance(offset, str) and offset.isdigit():
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidParameterValue(f"Invalid page token '{token}': no valid offset inside")
    return offset


__all__ = ["decode_page_token", "encode_page_token"]
