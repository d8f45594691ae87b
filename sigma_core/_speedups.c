/* Optional C helper for the framer, built beside the mypyc modules (setup.py): RFC 6455 §5.3
 * unmasking, the one per-byte loop that compiled Python cannot make fast. The pure-Python
 * _framer.unmask is the reference; tests/test_framer.py holds the two equal. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* unmask(payload, mask) -> bytes: payload XOR the 4-byte masking key repeated. ``mask`` is the
 * key's 4 bytes read as a little-endian integer (byte i of the payload uses bits 8*(i%4)). */
static PyObject *
unmask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "unmask() takes exactly 2 arguments (payload, mask)");
        return NULL;
    }
    unsigned long long m = PyLong_AsUnsignedLongLong(args[1]);
    if (m == (unsigned long long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (m > 0xFFFFFFFFULL) {
        PyErr_SetString(PyExc_ValueError, "mask must fit in 32 bits");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, view.len);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)view.buf;
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_ssize_t n = view.len, i = 0;
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
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"unmask", (PyCFunction)(void (*)(void))unmask, METH_FASTCALL,
     "unmask(payload, mask) -> bytes: payload XOR the masking key (RFC 6455 5.3)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sigma_core._speedups", "C helpers for sigma_core._framer.", -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
