"""Whatever arrives at a BCC address, the inbound path never crashes and never logs for another tenant.

Messages are random bytes, or a real message mangled: cut anywhere (multiparts without their end),
header lines replaced by junk, a header of a hundred kilobytes, boundaries that lie. Envelopes carry
one tenant's address, both tenants' addresses, or an unknown one; the headers name anyone. Only an
envelope address may decide which tenant a mail is logged for.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integrations.mail.inbound import Outcome
from tests.unit.test_inbound_mail import DOMAIN, World, connection

A, B = "log-aaaa", "log-bbbb"
TENANTS = {A: ("agency-1", "client-a"), B: ("agency-2", "client-z")}

MULTIPART = (
    b"From: Sam Rivera <sam@agency.example>\r\n"
    b"To: kim@client.example, log-bbbb@" + DOMAIN.encode() + b"\r\n"
    b"Cc: log-aaaa@" + DOMAIN.encode() + b"\r\n"
    b"Subject: =?utf-8?b?UHJlaXNl?=\r\n"
    b"Message-ID: <fuzz.1@agency.example>\r\n"
    b"Content-Type: multipart/mixed; boundary=OUTER\r\n\r\n"
    b"--OUTER\r\nContent-Type: multipart/alternative; boundary=INNER\r\n\r\n"
    b"--INNER\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\nHello\r\n"
    b"--INNER\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"PHA+SGVsbG88L3A+\r\n--INNER--\r\n"
    b"--OUTER\r\nContent-Type: application/pdf; name=quote.pdf\r\n"
    b"Content-Disposition: attachment; filename=quote.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0xLjQK\r\n--OUTER--\r\n"
)

header_junk = st.binary(min_size=0, max_size=200).map(lambda b: b.replace(b"\r\n", b" "))


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["random", "cut", "junk_header", "huge_header", "lying_boundary", "as_is"]))
    if how == "random":
        return draw(st.binary(max_size=4000))
    if how == "cut":
        return MULTIPART[: draw(st.integers(0, len(MULTIPART)))]
    lines = MULTIPART.split(b"\r\n")
    if how == "junk_header":
        index = draw(st.integers(0, 6))
        lines[index] = draw(header_junk)
        return b"\r\n".join(lines)
    if how == "huge_header":
        name = draw(st.sampled_from([b"Subject", b"To", b"References", b"X-Long"]))
        filler = draw(st.sampled_from([b"a", b"<x@y> ", b"kim@client.example, ", b"=?utf-8?q?=FF?= "]))
        return name + b": " + filler * (100_000 // len(filler)) + b"\r\n" + MULTIPART
    if how == "lying_boundary":
        return MULTIPART.replace(
            b"boundary=OUTER", draw(st.sampled_from([b"boundary=", b'boundary="', b"x"]))
        )
    return MULTIPART


envelopes = st.lists(
    st.sampled_from(
        [
            f"{A}@{DOMAIN}",
            f"{B}@{DOMAIN}",
            f"LOG-AAAA+x@{DOMAIN.upper()}",
            f"log-ffff@{DOMAIN}",
            "kim@client.example",
        ]
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=mangled(), envelope=envelopes, spam=st.sampled_from(["PASS", "FAIL", "GRAY", "", "weird"]))
def test_mangled_mail_never_crashes_and_never_crosses_tenants(
    raw: bytes, envelope: list[str], spam: str
) -> None:
    world = World(connection(A, *TENANTS[A]), connection(B, *TENANTS[B]))

    handled = world.deliver(raw, *envelope, spam=spam)

    addressed = {r.split("@")[0].lower().split("+")[0] for r in envelope} & set(TENANTS)
    allowed = {TENANTS[local] for local in addressed}
    assert {(e.agency_id, e.client_id) for e in world.logger.entries} <= allowed
    assert {(e.agency_id, e.client_id) for e in world.published} <= allowed  # type: ignore[attr-defined]
    assert {cid for cid, _ in world.recorded} <= {f"conn-{local}" for local in addressed}
    assert all(isinstance(h.outcome, Outcome) for h in handled)
    if spam == "FAIL":
        assert world.logger.entries == []
