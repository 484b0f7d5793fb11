"""Raw inbound mail as SES receiving stored it (S3), read with a size cap.

A message may be tens of megabytes (attachments); the logging path needs its headers and text
bodies, which come first. So only the first `limit` bytes are ever fetched (a ranged GET), and the
object's full size comes from the answer's Content-Range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from integrations.store.errors import error_code, unavailable_on_aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_unavailable = unavailable_on_aws_error("The inbound mail store")


@dataclass(frozen=True, slots=True)
class RawMail:
    """The start of one stored message: `data` holds at most the limit, `size` is the whole object."""

    data: bytes
    size: int

    @property
    def cut(self) -> bool:
        return len(self.data) < self.size


class S3RawMail:
    """Reads messages SES's S3 action wrote (SSE-S3: reading needs no key grant)."""

    def __init__(self, client: S3Client) -> None:
        self._s3 = client

    @_unavailable
    def read(self, bucket: str, key: str, limit: int) -> RawMail | None:
        """The first `limit` bytes of the message; None when there is no such object (expired)."""
        try:
            answer = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max(limit, 1) - 1}")
        except ClientError as exc:
            code = error_code(exc)
            if code in ("NoSuchKey", "404"):
                return None
            if code == "InvalidRange":  # an empty object has no byte 0
                return RawMail(b"", 0)
            raise
        body = answer["Body"]
        try:
            data = body.read(limit)
        finally:
            body.close()
        return RawMail(data, _total_size(answer.get("ContentRange"), len(data)))


def _total_size(content_range: str | None, read: int) -> int:
    """`bytes 0-99/1234` → 1234; without a range (a server that ignored it) what was read."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        if total.isdigit():
            return int(total)
    return read


__all__ = ["RawMail", "S3RawMail"]
