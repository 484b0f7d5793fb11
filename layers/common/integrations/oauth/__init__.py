"""The OAuth protocol: start / authorize / callback, PKCE, sessions, engines, apps, token manager."""
