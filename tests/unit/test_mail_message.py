"""Parsing a mail never trusts it: headers in any charset, multipart bodies, and garbage."""

from __future__ import annotations

from integrations.mail.message import parse_mail

ALTERNATIVE = (
    b"From: =?iso-8859-1?q?J=F6rg_M=FCller?= <Jorg@Example.com>\r\n"
    b"To: sam@agency.example, Kim <kim@client.example>\r\n"
    b"Subject: =?utf-8?b?UHJlaXNlIGbDvHIgMjAyNw==?=\r\n"
    b"Message-ID: <abc.1@mail.example.com>\r\n"
    b"In-Reply-To: <root.0@agency.example>\r\n"
    b"References: <root.0@agency.example> <abc.0@mail.example.com>\r\n"
    b"Date: Tue, 1 Dec 2026 09:00:00 +0100\r\n"
    b"Content-Type: multipart/alternative; boundary=XX\r\n\r\n"
    b"--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nTuesday works.\r\n"
    b"--XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Tuesday works.</p>\r\n--XX--\r\n"
)


def test_alternative_mail_gives_both_bodies_and_decoded_headers() -> None:
    mail = parse_mail(ALTERNATIVE)

    assert mail.sender is not None and mail.sender.address == "jorg@example.com"
    assert mail.sender.name == "Jörg Müller"
    assert [p.address for p in mail.to] == ["sam@agency.example", "kim@client.example"]
    assert mail.subject == "Preise für 2027"
    assert mail.message_id == "<abc.1@mail.example.com>"
    assert mail.in_reply_to == "<root.0@agency.example>"
    assert mail.references == ["<root.0@agency.example>", "<abc.0@mail.example.com>"]
    assert mail.text.strip() == "Tuesday works." and mail.html.strip() == "<p>Tuesday works.</p>"
    assert mail.sent_at is not None and mail.sent_at.utcoffset() is not None
    assert not mail.automatic and not mail.bounce


def test_bodies_are_cut_at_the_limit_and_say_so() -> None:
    raw = b"From: a@b.example\r\nContent-Type: text/plain\r\n\r\n" + b"x" * 5000

    mail = parse_mail(raw, body_limit=1000)

    assert len(mail.text) == 1000 and mail.truncated


def test_garbage_parses_to_an_empty_mail() -> None:
    mail = parse_mail(b"\xff\xfe\x00 not a mail at all")

    assert mail.sender is None and mail.message_id is None and mail.to == []


def test_auto_replies_and_bounces_are_recognised() -> None:
    auto = parse_mail(b"From: kim@client.example\r\nAuto-Submitted: auto-replied\r\n\r\nAway")
    bounce = parse_mail(
        b"From: MAILER-DAEMON@mx.example\r\nContent-Type: multipart/report; report-type=delivery-status;"
        b" boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--B--\r\n"
    )

    assert auto.automatic and not auto.bounce
    assert bounce.bounce
