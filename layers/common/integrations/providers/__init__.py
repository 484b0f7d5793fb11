"""One folder per provider, all of one shape (connect, webhook, subscriptions), found by id."""
