"""Routes of the portal API, one router per resource."""
