"""Sync: the wire protocol, the server app and (client side) the sync service."""
