"""Glue between the Powertools HTTP resolver and the domain: identity and error answers, once."""
