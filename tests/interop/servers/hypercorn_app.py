"""The ASGI application hypercorn serves in the interop matrix (see ``hypercorn.py``).

GET of a file in ``$HTTPOOL_INTEROP_ROOT`` (read once at import), and ``POST /upload``, which
reads the whole body and answers its length and SHA-256. Plain ASGI, no framework.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

ROOT = Path(os.environ["HTTPOOL_INTEROP_ROOT"])
FILES = {"/" + path.name: path.read_bytes() for path in ROOT.iterdir()}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] == "POST" and scope["path"] == "/upload":
        digest = hashlib.sha256()
        length = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            digest.update(chunk)
            length += len(chunk)
            if not message.get("more_body", False):
                break
        body = b"received %d bytes, sha256 %s\n" % (length, digest.hexdigest().encode())
        content_type = b"text/plain"
        status = 200
    elif scope["method"] == "GET" and scope["path"] in FILES:
        body, content_type, status = FILES[scope["path"]], b"application/octet-stream", 200
    else:
        body, content_type, status = b"not found\n", b"text/plain", 404
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
