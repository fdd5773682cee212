"""Blocking I/O on top of the Sans-I/O core: connections, the server, the client and the
shared heartbeat thread.

Who owns what. A :class:`~syncws.runtime.connection.Connection` composes small objects
that own their state: its :class:`~syncws.runtime.inbox.Inbox` (incoming messages), its
:class:`~syncws.runtime.pings.Pings` (pings waiting for their pong) and its
:class:`~syncws.runtime.writing.Writer` (outgoing bytes, with the
:class:`~syncws.runtime.writing.WriterToken`). Every thread, the heartbeat's included,
follows these rules; the code refers to them by number.

1. A connection's lock (``Connection._lock``) guards its protocol and the state of the
   objects it composes. It is held only for short work that never blocks: never across a
   blocking socket call, compression or encryption. A method that requires it says so and
   asserts it, except where the assertion would be a call of its own on the path of every
   message: the inbox, ``Connection._feed`` and ``_handle_events`` (once per read), the
   writer's steps of a send or a broadcast
   (``WriterToken.take`` and ``release`` among them).
2. One reader at a time. A thread in ``recv()`` or ``recv_streaming()`` owns reading: it
   sets ``Connection._reading`` under the lock before it reads and clears it when it
   leaves (``recv()`` without the lock: another thread may see it set a moment too long,
   never clear too early). While no thread does, the heartbeat thread may read the socket
   for it (it *parks* the connection), without blocking, and only within a hold of the
   lock in which it found ``_reading`` clear; it hands reading back, in the same hold in
   which it finds ``_reading`` set again. Both feed the same protocol, in order, into the
   same inbox.
3. One writer at a time: the holder of the writer token (``WriterToken.owner``: nobody, a
   thread, or the heartbeat thread with an unwritten tail). The token changes under the
   lock only; only its holder releases it or hands it to the heartbeat, and every release
   wakes the threads that wait for it. The holder writes ``protocol.data_to_send()`` until
   it is empty, checked under the lock, so that frames never interleave.
4. A fragmented message is sent whole under the writer's send mutex; a whole message is
   one frame queued under the lock, and waits for the mutex only when it finds a
   fragmented message in progress. ``close()``, ``ping()``, ``pong()`` and broadcasts wait
   for neither the mutex nor the token: a control frame may go between two fragments, as
   RFC 6455 §5.4 allows.
5. Locks are taken in this order: the send mutex, the writer's encode lock, the
   connection's lock, a TLS transport's lock. A connection's lock and the heartbeat's own
   lock are never held together.
6. The heartbeat thread uses a connection only through
   :class:`~syncws.runtime.heartbeat.Served` and never sets its state. What it keeps about
   a connection (``heartbeat._Watch``) is its own and changes on its thread only; other
   threads may read whether it reads a connection, without a lock, only after a hold of
   that connection's lock. That is sound because the heartbeat stops reading (unparks) in
   the same hold of the lock in which ``Connection.hb_read`` finds ``_reading`` set: a
   ``ping()`` queues its frame under the lock, then reads ``_reading``, then asks the
   heartbeat to read the pong (``Heartbeat.want_read``); if the heartbeat had handed
   reading back, the handler's ``ping()`` comes after that hold and finds it unparked; if
   not, the heartbeat, still parked, reads the pong. (An unpark after the hold once let a
   ``ping()`` just after ``recv()`` skip the wake-up, its pong waiting for the next
   periodic park.) Once the heartbeat has claimed a connection, it alone closes its
   socket, after unregistering it.
7. A deadline that passes (pong, close, write) fails the connection: its socket is shut
   down, which wakes every thread blocked on it. A finalized connection
   (``Connection._finalized``, set once under the lock) is not read or watched again, and
   its protocol, closed, refuses every new frame.
8. No object sets another's private state: it calls a method. The composed objects hold no
   reference back to their connection, which reference counting frees once closed.
"""

# The "idna" codec, which getaddrinfo() uses for host names, imported once, here: its first
# use racing in two threads fails with "LookupError: unknown encoding: idna" (CPython's
# bpo-29288). Seen in a gunicorn --preload worker: a Redis hub's subscriber connecting
# while a request was routed. requests and the AWS CLI import it early for the same reason.
import encodings.idna  # noqa: F401
