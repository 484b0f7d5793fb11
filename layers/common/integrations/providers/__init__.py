"""One module per provider, each with the same shape; behaviour the catalog's data cannot express."""
