"""The internal API's routes, one module per resource."""
