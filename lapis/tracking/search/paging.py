"""Page tokens: opaque to clients, an offset inside (as MLflow's are)."""

from __future__ import annotations

import base64
import json

from lapis.errors import InvalidParameterValue


def encode_page_token(offset: int) -> str:
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.b64decode(token, validate=True))
        offset = data["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError):
        raise InvalidParameterValue(f"Invalid page token '{token}': could not be decoded") from None
