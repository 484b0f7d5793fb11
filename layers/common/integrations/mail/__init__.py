"""Mail as the service reads it: MIME parsing, what a message is (reply, bounce, auto-reply), and
the ports mail flows share (contacts by address, logging once on a CRM contact)."""
