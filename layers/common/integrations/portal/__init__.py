"""The portal's use cases: cards, connection details, config, disconnect, health and settings."""
