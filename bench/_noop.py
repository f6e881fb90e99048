"""The ceiling for single calls: an HTTP server that does nothing, on the same stack.

uvicorn (same version, same event loop and HTTP parser as ``lapis server``)
with a bare ASGI app that reads the body and answers ``{}`` — plus the two
ids the mlflow client needs to carry on (an experiment id, a run id). What a
client call costs against it is the client, the HTTP round trip and the
server stack; what Lapis spends on top is its own work. Run only by
bench/tracking.py:

    python bench/_noop.py PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn

RUN = b'{"run": {"info": {"run_id": "' + b"0" * 32 + b'", "experiment_id": "1"}, "data": {}}}'
HEADERS = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the whole body, as a real server must
        message = await receive()
        more = message.get("more_body", False)
    path = scope["path"]
    if path.endswith("/experiments/create"):
        body = b'{"experiment_id": "1"}'
    elif path.endswith("/runs/create"):
        body = RUN
    else:
        body = b"{}"
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
