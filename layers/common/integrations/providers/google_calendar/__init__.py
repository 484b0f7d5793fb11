"""Google Calendar, two-way and (through the catalog's `module`) one-way: connect, watch channels."""
