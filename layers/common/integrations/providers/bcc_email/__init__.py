"""BCC logging address: the inbound address that routes logged mail to its owner."""
