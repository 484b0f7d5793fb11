"""OAuth sessions, the generic OAuth2 engine, Google's flow, app credentials and the token manager."""
