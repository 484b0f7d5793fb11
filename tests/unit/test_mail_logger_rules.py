"""The mail logger's rules without I/O: direction and counterparts, names, the stand-in Message-ID,
what a CRM keeps of a mail."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from integrations.mail.message import parse_mail
from integrations.sync.crm import MAIL_BODY_LIMIT
from integrations.sync.mail_logging import counterparts, derived_message_id, log_id, logged_mail, split_name

OWNERS = frozenset({"ava@agency.example", "ava.rivers@agency.example"})


def _raw(sender: str, to: str, cc: str = "", body: str = "Hello there") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = "Pricing"
    message["Date"] = "Tue, 01 Dec 2026 09:00:00 +0000"
    message.set_content(body)
    return bytes(message)


def test_a_mail_from_the_owner_is_outbound_to_every_other_recipient_once() -> None:
    mail = parse_mail(
        _raw(
            "Ava <AVA@agency.example>",
            "sam@example.com, jo@example.com",
            "ava.rivers@agency.example, SAM@example.com",
        )
    )

    direction, parties = counterparts(mail, OWNERS)

    assert direction == "outbound"
    assert [p.address for p in parties] == ["sam@example.com", "jo@example.com"]


def test_any_other_mail_is_inbound_from_its_sender_even_with_the_owner_in_cc() -> None:
    mail = parse_mail(_raw("Sam Rivera <sam@example.com>", "lee@colleague.example", "ava@agency.example"))

    direction, parties = counterparts(mail, OWNERS)

    assert (direction, [(p.address, p.name) for p in parties]) == (
        "inbound",
        [("sam@example.com", "Sam Rivera")],
    )


def test_display_names_split_into_first_and_last() -> None:
    assert split_name("Sam Rivera") == ("Sam", "Rivera")
    assert split_name('"Rivera, Sam"') == ("Sam", "Rivera")
    assert split_name("Cher") == ("Cher", "")
    assert split_name("") == ("", "")
    assert split_name("Mary Ann van Dyke") == ("Mary", "Ann van Dyke")


def test_the_stand_in_message_id_is_the_same_for_both_copies_and_differs_between_mails() -> None:
    bcc_copy = parse_mail(_raw("sam@example.com", "ava@agency.example", body="Hello   there\n"))
    mailbox_copy = parse_mail(_raw("sam@example.com", "ava@agency.example", body="Hello there"))
    other = parse_mail(_raw("sam@example.com", "ava@agency.example", body="Something else"))

    assert derived_message_id(bcc_copy) == derived_message_id(mailbox_copy)
    assert derived_message_id(bcc_copy) != derived_message_id(other)
    assert derived_message_id(bcc_copy).endswith("@derived.invalid>")


def test_log_ids_are_stable_per_connection_message_and_contact() -> None:
    assert log_id("c1", "<m@x>", "e1") == log_id("c1", "<m@x>", "e1")
    assert len({log_id("c1", "<m@x>", "e1"), log_id("c2", "<m@x>", "e1"), log_id("c1", "<m@x>", "e2")}) == 3


def test_a_crm_keeps_cut_bodies_and_the_text_of_an_html_only_mail() -> None:
    long = parse_mail(
        _raw("sam@example.com", "ava@agency.example", body="x" * (MAIL_BODY_LIMIT + 10)), body_limit=10**6
    )
    kept = logged_mail(long, "inbound", "<m@x>", datetime(2026, 12, 1, tzinfo=UTC))
    html_only = parse_mail(
        b"From: sam@example.com\r\nTo: ava@agency.example\r\nSubject: Hi\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Hello <b>Ava</b>&amp; team</p><style>p{}</style>"
    )

    assert len(kept.text) == MAIL_BODY_LIMIT and kept.truncated
    assert (
        logged_mail(html_only, "inbound", "<m@x>", datetime(2026, 12, 1, tzinfo=UTC)).plain
        == "Hello Ava & team"
    )
