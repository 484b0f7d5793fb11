"""Gmail: connect and the mailbox watch (Pub/Sub push)."""
