"""Powertools resolver glue: the caller's identity, error answers and the OpenAPI merge."""
