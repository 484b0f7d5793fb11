"""Google Calendar, two-way and (via the catalog's `module`) one-way: connect, watches, pushes."""
