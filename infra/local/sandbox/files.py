"""Files served by URL, as the platform offers mail attachments by reference (a signed download URL).

POST /_sandbox/files makes one; GET /_sandbox/files/<id> serves it, late or failing when asked to.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field

from werkzeug.wrappers import Request, Response

from infra.local.sandbox.core import Route, Sandbox, json_response, read_json


@dataclass
class ServedFile:
    content_type: str
    data: bytes
    status: int = 200
    delay_ms: int = 0


@dataclass
class FileStore:
    files: dict[str, ServedFile] = field(default_factory=dict)


def _store(sb: Sandbox) -> FileStore:
    store = sb.state.extensions.get("files")
    if not isinstance(store, FileStore):
        store = FileStore()
        sb.state.extensions["files"] = store
    return store


def create(sb: Sandbox, request: Request) -> Response:
    """POST /_sandbox/files {content_type, text | base64 | size, status, delay_ms} → {id, url, size}.

    `size` makes that many random bytes; `status` answers the download with it (404, 500...);
    `delay_ms` waits before answering (a download that times out)."""
    body = read_json(request) or {}
    try:
        if "base64" in body:
            data = base64.b64decode(str(body["base64"]), validate=True)
        elif "text" in body:
            data = str(body["text"]).encode()
        else:
            data = secrets.token_bytes(max(0, int(body.get("size", 16))))
    except (binascii.Error, ValueError):
        return json_response({"error": "base64 or size is not valid"}, 400)
    served = ServedFile(
        content_type=str(body.get("content_type") or "application/octet-stream"),
        data=data,
        status=int(body.get("status", 200)),
        delay_ms=int(body.get("delay_ms", 0)),
    )
    file_id = secrets.token_hex(8)
    with sb.state.lock:
        _store(sb).files[file_id] = served
    url = f"{request.host_url.rstrip('/')}/_sandbox/files/{file_id}"
    return json_response({"id": file_id, "url": url, "size": len(data)}, status=201)


def serve(sb: Sandbox, request: Request, file_id: str) -> Response:
    """GET /_sandbox/files/<id>: the file's bytes (or the status and delay it was made with)."""
    with sb.state.lock:
        served = _store(sb).files.get(file_id)
    if served is None:
        return json_response({"error": "no such file"}, 404)
    if served.delay_ms:
        time.sleep(served.delay_ms / 1000)
    if served.status != 200:
        return json_response({"error": "refused"}, served.status)
    return Response(served.data, status=200, mimetype=served.content_type)


def routes() -> list[Route]:
    return [
        Route("/_sandbox/files", ("POST",), create, "control", None),
        Route("/_sandbox/files/<file_id>", ("GET",), serve, "control", None),
    ]
