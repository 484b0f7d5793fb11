"""The partition keys of the CRM items in the sync table (store/crm.py, store/mail_contacts.py)."""

from __future__ import annotations


def client_pk(agency_id: str, client_id: str) -> str:
    """One client's platform contacts, their CRM copies and its address directory."""
    return f"PCT#{agency_id}#{client_id}"


def mirror_pk(connection_id: str) -> str:
    return f"CRM#{connection_id}"


def call_pk(agency_id: str, call_id: str) -> str:
    return f"CALL#{agency_id}#{call_id}"
