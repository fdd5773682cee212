"""Blocking I/O on top of the Sans-I/O core: connections, the server, the client and the
shared heartbeat thread."""
