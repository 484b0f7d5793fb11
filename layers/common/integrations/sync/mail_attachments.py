"""Attachments the platform offers by reference: downloaded once, within a size cap and a timeout.

Only HTTPS (plain HTTP to a loopback address in development and tests), no redirects followed (a
redirect could lead anywhere), the body streamed and abandoned as soon as it passes the cap.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from integrations import http
from integrations.events import EmailAttachmentRef
from integrations.mail.outgoing import Attachment
from integrations.sync.mail import MailRefused

# One attachment, and all of a mail's together (Gmail takes 25 MB of attachments per mail).
ATTACHMENT_LIMIT = 10 * 1024 * 1024
TOTAL_LIMIT = 25 * 1024 * 1024
TIMEOUT: tuple[float, float] = (3.05, 15.0)
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_CHUNK = 64 * 1024


def download(ref: EmailAttachmentRef, limit: int = ATTACHMENT_LIMIT) -> Attachment:
    """The attachment's bytes; MailRefused (attachment_unavailable / message_too_large) otherwise."""
    parts = urlsplit(ref.url)
    if parts.scheme != "https" and not (parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK):
        raise MailRefused("attachment_unavailable", f"The attachment {ref.filename} is not on an HTTPS URL.")
    try:
        with http.session().get(ref.url, stream=True, timeout=TIMEOUT, allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise MailRefused(
                    "attachment_unavailable",
                    f"The attachment {ref.filename} could not be downloaded (HTTP {answer.status_code}).",
                )
            data = bytearray()
            for chunk in answer.iter_content(_CHUNK):
                data.extend(chunk)
                if len(data) > limit:
                    raise MailRefused(
                        "message_too_large", f"The attachment {ref.filename} is larger than {limit} bytes."
                    )
    except requests.RequestException as exc:
        # The class only: its text can carry the URL, which may hold a signed token.
        raise MailRefused(
            "attachment_unavailable",
            f"The attachment {ref.filename} could not be downloaded ({type(exc).__name__}).",
        ) from None
    return Attachment(filename=ref.filename, content_type=ref.content_type, data=bytes(data))


def download_all(refs: list[EmailAttachmentRef]) -> tuple[Attachment, ...]:
    """Every attachment of a mail, within the per-mail total."""
    found: list[Attachment] = []
    total = 0
    for ref in refs:
        attachment = download(ref, min(ATTACHMENT_LIMIT, TOTAL_LIMIT - total))
        total += len(attachment.data)
        found.append(attachment)
    return tuple(found)
