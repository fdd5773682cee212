/*
 * syncws.runtime._send: short socket system calls made WITHOUT releasing the GIL.
 *
 *     send(sock, data, flags, /) -> int
 *     recv(sock, size, /) -> bytes | None          (see below)
 *     epoll_ctl(epfd, op, fd, events, /) -> None   (Linux; see below)
 *
 * "sock" is a file descriptor or an object with a fileno() method, a socket: then the
 * descriptor is read and written to within this one call, with the GIL held throughout,
 * so no other thread can close the socket in between and let a new one take its number.
 * Returns the number of bytes written, or -1 when send() failed (EAGAIN included), or when
 * the socket is closed (a negative descriptor): no
 * exception is raised for a failed system call, because the caller then makes a blocking
 * write, which meets the error again and reports it. Bad arguments raise TypeError or
 * OverflowError. "data" must be a bytes object. MSG_DONTWAIT (and MSG_NOSIGNAL where it
 * exists) is always added to "flags": a send() that blocked here would stall every Python
 * thread, and one that raised SIGPIPE would kill the process.
 *
 * Why this exists (see syncws/runtime/transport.py, send_short): the socket module releases
 * the GIL around every call, and so does every function that cffi binds. When other
 * threads wait for the GIL, a thread that releases it for a system call of a few
 * microseconds must then wait its turn to take it back, usually through a context switch.
 * For a short write with MSG_DONTWAIT, which never blocks, keeping the GIL is cheaper.
 * The same holds for the heartbeat thread's reads and epoll changes (recv, epoll_ctl).
 *
 * It uses the limited C API of Python 3.11 (one abi3 build for every later version), and
 * builds on POSIX systems only; without it, syncws uses socket.send(). The module uses
 * single-phase initialisation, so subinterpreters with their own GIL refuse to import it:
 * syncws then uses socket.send() there too.
 */

#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/*
 * None, as a new reference. Not Py_RETURN_NONE: from Python 3.12 on, None is immortal and
 * the headers define Py_RETURN_NONE as "return Py_None", without Py_INCREF, even with
 * Py_LIMITED_API set to 3.11. This abi3 module, built with such headers and loaded by
 * Python 3.11 (where None's count is real), then took one reference from None per call,
 * until None was deallocated ("Fatal Python error: none_dealloc"). Py_INCREF is right on
 * every version (a no-op on an immortal object).
 */
static PyObject *
syncws_none(void)
{
    Py_INCREF(Py_None);
    return Py_None;
}

static PyObject *
syncws_send(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    char *buf;
    Py_ssize_t len;
    long fd, flags;
    ssize_t sent;

    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "send() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (PyLong_Check(args[0])) {
        fd = PyLong_AsLong(args[0]);
        if (fd == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    else {
        /* fileno(); a closed socket's is -1, which this call reports as ValueError. */
        fd = PyObject_AsFileDescriptor(args[0]);
        if (fd == -1) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
                return NULL;
            }
            PyErr_Clear();
        }
    }
    if (PyBytes_AsStringAndSize(args[1], &buf, &len) < 0) {
        return NULL;
    }
    flags = PyLong_AsLong(args[2]);
    if (flags == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (flags < INT_MIN || flags > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "flags out of range");
        return NULL;
    }
    if (fd < 0 || fd > INT_MAX) {
        /* A closed socket's fileno() is -1; never truncate a number into another fd. */
        return PyLong_FromLong(-1);
    }
    sent = send((int)fd, buf, (size_t)len, (int)flags | MSG_DONTWAIT | MSG_NOSIGNAL);
    return PyLong_FromSsize_t(sent);
}

/*
 * recv(sock, size, /) -> bytes | None: one recv() with MSG_DONTWAIT, the GIL held.
 *
 * For the heartbeat thread, which reads one parked socket after another: with the socket
 * module's recv(), each of them released the GIL and waited for it again, behind every
 * thread running Python (see heartbeat.py). Returns the bytes read, b"" at EOF, None if
 * nothing is available; raises OSError (the subclass for errno: ConnectionResetError, ...)
 * for any other failure, and for a closed socket.
 *
 * The bytes are read into a static buffer, then copied: the limited API cannot shrink a
 * bytes object to the size read. The GIL, held throughout, is what makes the one buffer
 * safe to share.
 */
#define SYNCWS_RECV_MAX 262144
static char syncws_recv_buffer[SYNCWS_RECV_MAX];

static PyObject *
syncws_recv(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int fd;
    Py_ssize_t size;
    ssize_t got;

    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "recv() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    fd = PyObject_AsFileDescriptor(args[0]); /* ValueError for a closed socket */
    if (fd == -1) {
        return NULL;
    }
    size = PyLong_AsSsize_t(args[1]);
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (size <= 0 || size > SYNCWS_RECV_MAX) {
        PyErr_SetString(PyExc_ValueError, "size out of range");
        return NULL;
    }
    got = recv(fd, syncws_recv_buffer, (size_t)size, MSG_DONTWAIT);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return syncws_none();
        }
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyBytes_FromStringAndSize(syncws_recv_buffer, got);
}

#ifdef __linux__
/*
 * epoll_ctl(epfd, op, fd, events, /) -> None: the system call, the GIL held.
 *
 * select.epoll's register(), modify() and unregister() release the GIL around this call,
 * which never blocks: the heartbeat thread, (un)watching sockets one after another, then
 * waited for the GIL after each. Raises OSError as select.epoll does.
 */
static PyObject *
syncws_epoll_ctl(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    long values[3];
    unsigned long events;
    struct epoll_event event;
    Py_ssize_t i;

    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "epoll_ctl() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    for (i = 0; i < 3; i++) {
        values[i] = PyLong_AsLong(args[i]);
        if (values[i] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    events = PyLong_AsUnsignedLong(args[3]);
    if (events == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (values[0] < 0 || values[0] > INT_MAX || values[1] < INT_MIN || values[1] > INT_MAX
        || values[2] < 0 || values[2] > INT_MAX || events > UINT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "argument out of range");
        return NULL;
    }
    event.events = (unsigned int)events;
    event.data.u64 = 0;
    event.data.fd = (int)values[2];
    if (epoll_ctl((int)values[0], (int)values[1], (int)values[2], &event) < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return syncws_none();
}
#endif

static PyMethodDef syncws_send_methods[] = {
    {"send", (PyCFunction)(void (*)(void))syncws_send, METH_FASTCALL,
     "send($module, sock, data, flags, /)\n--\n\n"
     "One non-blocking send() system call with the GIL held: the bytes written, or -1 if\n"
     "it failed. MSG_DONTWAIT and MSG_NOSIGNAL are always added to flags."},
    {"recv", (PyCFunction)(void (*)(void))syncws_recv, METH_FASTCALL,
     "recv($module, sock, size, /)\n--\n\n"
     "One recv() with MSG_DONTWAIT and the GIL held: the bytes read (b\"\" at EOF), or\n"
     "None if nothing is available. Raises OSError for any other failure."},
#ifdef __linux__
    {"epoll_ctl", (PyCFunction)(void (*)(void))syncws_epoll_ctl, METH_FASTCALL,
     "epoll_ctl($module, epfd, op, fd, events, /)\n--\n\n"
     "The epoll_ctl() system call with the GIL held. Raises OSError if it fails."},
#endif
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef syncws_send_module = {
    PyModuleDef_HEAD_INIT,
    "syncws.runtime._send",
    "Short socket system calls made without releasing the GIL (see _send.c).",
    0,
    syncws_send_methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__send(void)
{
    return PyModule_Create(&syncws_send_module);
}
