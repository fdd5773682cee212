"""The Sans-I/O core of syncws: RFC 6455 and RFC 7692 with no sockets, threads or clocks.

Bytes go in, events and bytes come out. :mod:`syncws.runtime` drives it with blocking
sockets; the WSGI integration drives it on a socket taken over from a WSGI server.
"""
