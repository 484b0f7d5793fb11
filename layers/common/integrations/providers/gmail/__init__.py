"""Gmail: connect, the mailbox watch, and its Pub/Sub pushes (verified by Google's OIDC JWT)."""
