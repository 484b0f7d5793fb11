"""The portal's use cases: me, cards, connections, config and options, health, settings."""
