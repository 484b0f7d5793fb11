"""Routers of the OAuth function (named to stay clear of other functions' route packages)."""
