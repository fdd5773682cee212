/*
 * syncws.runtime._send: one non-blocking send() made WITHOUT releasing the GIL.
 *
 *     send(sock, data, flags, /) -> int
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
 * For a short write with MSG_DONTWAIT, which never blocks, keeping the GIL is cheaper. The
 *
 * It uses the limited C API of Python 3.11 (one abi3 build for every later version), and
 * builds on POSIX systems only; without it, syncws uses socket.send(). The module uses
 * single-phase initialisation, so subinterpreters with their own GIL refuse to import it:
 * syncws then uses socket.send() there too.
 */

#define Py_LIMITED_API 0x030B0000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

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

static PyMethodDef syncws_send_methods[] = {
    {"send", (PyCFunction)(void (*)(void))syncws_send, METH_FASTCALL,
     "send($module, sock, data, flags, /)\n--\n\n"
     "One non-blocking send() system call with the GIL held: the bytes written, or -1 if\n"
     "it failed. MSG_DONTWAIT and MSG_NOSIGNAL are always added to flags."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef syncws_send_module = {
    PyModuleDef_HEAD_INIT,
    "syncws.runtime._send",
    "A send() system call made without releasing the GIL (see _send.c).",
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
