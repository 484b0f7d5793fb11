"""iCloud Calendar (CalDAV): connect by app-specific password and calendar discovery."""
