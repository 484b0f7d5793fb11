"""The connection lifecycle: connect by auth kind, reauthorize, after-connect, disconnect, apply."""
