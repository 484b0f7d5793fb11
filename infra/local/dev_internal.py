"""Act as the platform on the internal API, from the portal page's developer panel (`make dev` only).

`POST /dev/internal/availability` and `POST /dev/internal/bookings` take the body of
`POST /internal/availability` / `POST /internal/bookings` as is, sign the call with the dev credentials
(SigV4, service `execute-api`, the stack's region: what the platform does with its own credentials)
and hand it to the gateway's own AWS_IAM route, where the signature is verified exactly as for a call
from outside. The answer is the internal route's, untouched.

These routes exist only in the local gateway: the template declares no `/dev/*` route (the gateway
refuses to start with one), so a deployment answers them 404. A portal JWT sent to them is dropped,
never forwarded: the call is the platform's, whoever's page sent it, and the stack listens on loopback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infra.local.authorizer import DevCredentials

# The dev route → the internal route it signs a call to.
DEV_INTERNAL_ROUTES: Mapping[str, str] = {
    "/dev/internal/availability": "/internal/availability",
    "/dev/internal/bookings": "/internal/bookings",
}


@dataclass(frozen=True, slots=True)
class PlatformSigner:
    """Signs a call as the platform would: SigV4 with the dev credentials."""

    credentials: DevCredentials
    region: str

    def sign(self, method: str, url: str, body: bytes, content_type: str) -> dict[str, str]:
        """The headers of the signed call (Host included, as it was signed)."""
        from urllib.parse import urlsplit

        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": content_type})
        c = self.credentials
        credentials = Credentials(c.access_key, c.secret_key, c.session_token)
        signer = SigV4Auth(credentials, "execute-api", self.region)
        signer.add_auth(request)
        return {"Host": urlsplit(url).netloc, **{k: str(v) for k, v in request.headers.items()}}
