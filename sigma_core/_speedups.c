/* Optional C helpers, built beside the mypyc modules (setup.py): for the framer, RFC 6455 §5.3
 * unmasking, the one per-byte loop that compiled Python cannot make fast (the pure-Python
 * _framer.unmask_py is the reference; tests/test_framer.py holds the two equal); for the codec,
 * a server's Data frame from its template in one allocation (the pure-Python twin is
 * codec._fast.data_frame_py; tests/test_codec.py holds the two equal); for the memory engine, a
 * history entry taken off the cyclic GC's lists (untrack_atomic; the pure-Python build leaves it
 * tracked, which only costs collections). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* unmask(payload, mask) -> bytes: payload XOR the 4-byte masking key repeated. ``mask`` is the
 * key's 4 bytes read as a little-endian integer (byte i of the payload uses bits 8*(i%4)). */
/* dst = src XOR the masking key repeated, n bytes. */
static void
xor_mask(unsigned char *dst, const unsigned char *src, Py_ssize_t n, unsigned long long m)
{
    Py_ssize_t i = 0;
    unsigned char key[8];
    for (int k = 0; k < 8; k++) {
        key[k] = (unsigned char)(m >> (8 * (k & 3)));
    }
    uint64_t key64;
    memcpy(&key64, key, 8); /* the key repeated in memory order: no byte-order assumption */
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, src + i, 8);
        word ^= key64;
        memcpy(dst + i, &word, 8);
    }
    for (; i < n; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

static int
read_mask(PyObject *arg, unsigned long long *m)
{
    *m = PyLong_AsUnsignedLongLong(arg);
    if (*m == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    if (*m > 0xFFFFFFFFULL) {
        PyErr_SetString(PyExc_ValueError, "mask must fit in 32 bits");
        return -1;
    }
    return 0;
}

static PyObject *
unmask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "unmask() takes exactly 2 arguments (payload, mask)");
        return NULL;
    }
    unsigned long long m;
    if (read_mask(args[1], &m) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out != NULL) {
        xor_mask((unsigned char *)PyBytes_AS_STRING(out), (const unsigned char *)view.buf,
                 view.len, m);
    }
    PyBuffer_Release(&view);
    return out;
}

/* unmask_slice(data, start, stop, mask) -> bytes: unmask(data[start:stop], mask) without the
 * slice's copy (the frame's payload read straight out of the read). IndexError unless
 * 0 <= start <= stop <= len(data). */
static PyObject *
unmask_slice(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "unmask_slice() takes exactly 4 arguments (data, start, stop, mask)");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t stop = PyLong_AsSsize_t(args[2]);
    if (stop == -1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long m;
    if (read_mask(args[3], &m) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (start < 0 || stop < start || stop > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "unmask_slice(): start/stop out of range");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, stop - start);
    if (out != NULL) {
        xor_mask((unsigned char *)PyBytes_AS_STRING(out),
                 (const unsigned char *)view.buf + start, stop - start, m);
    }
    PyBuffer_Release(&view);
    return out;
}


/* data_frame(template, at, payload, timestamp_ms, epoch, offset) -> bytes: a server's Data
 * frame from its per-topic template (sigma_core/codec/_fast.py, which holds the pure-Python
 * twin data_frame_py and the layout): the template is every byte before the payload with zeros
 * where the variable fields go; one allocation, the payload copied once. Patched: the WebSocket
 * length (its class is template[1]: 0 for under 126 bytes, 126, 127), at ``at`` the u64s
 * timestamp_ms (only when non-zero: a template without it), epoch, offset (little-endian), and
 * the template's last 4 bytes, the payload vector's u32 length; then the payload and its zero
 * padding to 4. ValueError when the template cannot hold those fields or the length class does
 * not fit the frame. */
static void
put_le64(unsigned char *p, unsigned long long v)
{
    for (int k = 0; k < 8; k++) {
        p[k] = (unsigned char)(v >> (8 * k));
    }
}

static PyObject *
data_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError,
                        "data_frame() takes exactly 6 arguments "
                        "(template, at, payload, timestamp_ms, epoch, offset)");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "data_frame() template must be bytes");
        return NULL;
    }
    Py_ssize_t at = PyLong_AsSsize_t(args[1]);
    if (at == -1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long v[3];
    for (int k = 0; k < 3; k++) {
        v[k] = PyLong_AsUnsignedLongLong(args[3 + k]);
        if (v[k] == (unsigned long long)-1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    int wide = v[0] ? 3 : 2;
    const unsigned char *tmpl = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t tn = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t header = tn >= 2 ? (tmpl[1] == 127 ? 10 : tmpl[1] == 126 ? 4 : 2) : 0;
    if (tn < 2 || at < header || at + 8 * wide > tn - 4) {
        PyErr_SetString(PyExc_ValueError, "data_frame(): the template cannot hold the fields");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = view.len, tail = (-n) & 3;
    if (n > 0xFFFFFFFFLL || n > PY_SSIZE_T_MAX - tn - 3) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "data_frame(): payload too large");
        return NULL;
    }
    Py_ssize_t size = tn + n + tail, body = size - header;
    if ((header == 2 && body >= 126) || (header == 4 && (body < 126 || body > 0xFFFF))
        || (header == 10 && body <= 0xFFFF)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError,
                        "data_frame(): the template's length class does not fit the frame");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    memcpy(dst, tmpl, (size_t)tn);
    if (header == 2) {
        dst[1] = (unsigned char)body;
    } else {
        for (Py_ssize_t k = header - 1; k >= 2; k--) { /* big-endian, RFC 6455 5.2 */
            dst[k] = (unsigned char)(body & 0xFF);
            body >>= 8;
        }
    }
    unsigned char *p = dst + at;
    if (v[0]) {
        put_le64(p, v[0]);
        p += 8;
    }
    put_le64(p, v[1]);
    put_le64(p + 8, v[2]);
    for (int k = 0; k < 4; k++) {
        dst[tn - 4 + k] = (unsigned char)((unsigned long long)n >> (8 * k));
    }
    memcpy(dst + tn, view.buf, (size_t)n);
    memset(dst + tn + n, 0, (size_t)tail);
    PyBuffer_Release(&view);
    return out;
}

/* untrack_atomic(obj) -> bool: take a tuple (or a tuple subclass without a __dict__, such as a
 * NamedTuple) off the cyclic GC's lists when none of its items is tracked: ints, floats, bytes,
 * str, None, untracked tuples. Such a tuple cannot be part of a reference cycle (its type is
 * the one object it reaches besides its items, and the GC then counts that reference as coming
 * from outside: it keeps the type alive, never frees anything early), so collections need not
 * look at it. CPython does this for exact tuples when a collection first examines them
 * (_PyTuple_MaybeUntrack); a subclass instance stays tracked for life, and one that lives until
 * a client acknowledges it is examined by every young collection it survives and promoted to the
 * old generation, whose full collections then traverse it. Returns whether obj is untracked. */
static PyObject *
untrack_atomic(PyObject *module, PyObject *obj)
{
    (void)module;
    if (!PyTuple_Check(obj) || Py_TYPE(obj)->tp_dictoffset != 0) {
        return PyBool_FromLong(!PyObject_GC_IsTracked(obj));
    }
    if (PyObject_GC_IsTracked(obj)) {
        Py_ssize_t n = PyTuple_GET_SIZE(obj);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PyObject_GC_IsTracked(PyTuple_GET_ITEM(obj, i))) {
                Py_RETURN_FALSE;
            }
        }
        PyObject_GC_UnTrack(obj);
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"untrack_atomic", (PyCFunction)untrack_atomic, METH_O,
     "untrack_atomic(obj) -> bool: a tuple whose items are all untracked leaves the cyclic GC's "
     "lists; whether obj is untracked now."},
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL,
     "unmask(payload, mask) -> bytes: payload XOR the masking key (RFC 6455 5.3)."},
    {"unmask_slice", (PyCFunction)(void (*)(void))unmask_slice, METH_FASTCALL,
     "unmask_slice(data, start, stop, mask) -> bytes: unmask(data[start:stop], mask), one copy."},
    {"data_frame", (PyCFunction)(void (*)(void))data_frame, METH_FASTCALL,
     "data_frame(template, at, payload, timestamp_ms, epoch, offset) -> bytes: a server's Data "
     "frame from its template (sigma_core.codec._fast)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sigma_core._speedups", "C helpers for sigma_core._framer, sigma_core.codec._fast and sigma_core.backplane.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
