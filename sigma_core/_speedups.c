/* Optional C helpers, built beside the mypyc modules (setup.py): for the framer, RFC 6455 §5.3
 * unmasking, the one per-byte loop that compiled Python cannot make fast (the pure-Python
 * _framer.unmask_py is the reference; tests/test_framer.py holds the two equal); for the codec,
 * a server's Data frame from its template in one allocation (the pure-Python twin is
 * codec._fast.data_frame_py; tests/test_codec.py holds the two equal); for the memory engine, a
 * history entry taken off the cyclic GC's lists (untrack_atomic; the pure-Python build leaves it
 * tracked, which only costs collections); and an instance of a tuple subclass built from its
 * items (new_tuple; the twin is tuple.__new__, backplane._new_tuple_py, tests/test_session_memory.py
 * holds the two equal). */
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
    const unsigned char key[4] = {(unsigned char)m, (unsigned char)(m >> 8),
                                  (unsigned char)(m >> 16), (unsigned char)(m >> 24)};
    uint32_t key32;
    memcpy(&key32, key, 4); /* the key in memory order: no byte-order assumption */
    Py_ssize_t i = 0;
#if defined(__GNUC__)
    /* 64 bytes a step, four 16-byte vectors (SSE2 on x86-64, NEON on arm64): a 1 KiB payload
     * is 16 steps, where the compiler's own vectorisation of the 8-byte loop below made 64. */
    typedef uint32_t v4 __attribute__((vector_size(16)));
    const v4 kv = {key32, key32, key32, key32};
    for (; i + 64 <= n; i += 64) {
        v4 a, b, c, d;
        memcpy(&a, src + i, 16);
        memcpy(&b, src + i + 16, 16);
        memcpy(&c, src + i + 32, 16);
        memcpy(&d, src + i + 48, 16);
        a ^= kv;
        b ^= kv;
        c ^= kv;
        d ^= kv;
        memcpy(dst + i, &a, 16);
        memcpy(dst + i + 16, &b, 16);
        memcpy(dst + i + 32, &c, 16);
        memcpy(dst + i + 48, &d, 16);
    }
#endif
    /* (the key twice: the same in either byte order) */
    const uint64_t key64 = (uint64_t)key32 << 32 | key32;
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

/* *out = PyLong_AsUnsignedLongLong(o), raising as it does (TypeError, OverflowError for a
 * negative or too large int). On CPython before 3.12 that function converts every int of two
 * or more 30-bit digits through _PyLong_AsByteArray (~170 instructions; a millisecond
 * timestamp, a masking key and most positions have two): an int of at most two digits, which
 * is non-negative and below 2**60, is read by PyLong_AsUnsignedLongLongMask (a digit loop),
 * exactly. */
static int
as_u64(PyObject *o, unsigned long long *out)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyLong_Check(o) && Py_SIZE(o) >= 0 && Py_SIZE(o) <= 2) {
        *out = PyLong_AsUnsignedLongLongMask(o);
        return 0;
    }
#endif
    *out = PyLong_AsUnsignedLongLong(o);
    return *out == (unsigned long long)-1 && PyErr_Occurred() ? -1 : 0;
}

static int
read_mask(PyObject *arg, unsigned long long *m)
{
    if (as_u64(arg, m) < 0) {
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

/* The (start, stop) of a call's args[1] and args[2] as Py_ssize_t: 0, or -1 with the error set
 * (unmask_slice and read_client_frame; each checks the range against its data). */
static int
as_range(PyObject *const *args, Py_ssize_t *start, Py_ssize_t *stop)
{
    *start = PyLong_AsSsize_t(args[1]);
    if (*start == -1 && PyErr_Occurred()) {
        return -1;
    }
    *stop = PyLong_AsSsize_t(args[2]);
    if (*stop == -1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
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
    Py_ssize_t start, stop;
    if (as_range(args, &start, &stop) < 0) {
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

/* The arguments data_frame and data_envelope share, (template, at, payload, timestamp_ms,
 * epoch, offset): the count, the template's type, ``at`` and the three u64 fields into ``v``.
 * -1 with the exception set (named after ``name``). */
static int
patch_args(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *at,
           unsigned long long v[3])
{
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError,
                     "%s() takes exactly 6 arguments "
                     "(template, at, payload, timestamp_ms, epoch, offset)", name);
        return -1;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s() template must be bytes", name);
        return -1;
    }
    *at = PyLong_AsSsize_t(args[1]);
    if (*at == -1 && PyErr_Occurred()) {
        return -1;
    }
    for (int k = 0; k < 3; k++) {
        if (as_u64(args[3 + k], &v[k]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Patch the fields (``v``: timestamp_ms when non-zero, epoch, offset) at ``at`` and the
 * payload's length into the last 4 bytes of the template already copied to ``dst`` (``tn``
 * bytes), then the payload and its padding to 4 bytes after it. */
static void
patch_fields(unsigned char *dst, Py_ssize_t at, const unsigned long long v[3], Py_ssize_t tn,
             const Py_buffer *view, Py_ssize_t tail)
{
    Py_ssize_t n = view->len;
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
    memcpy(dst + tn, view->buf, (size_t)n);
    memset(dst + tn + n, 0, (size_t)tail);
}

static PyObject *
data_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t at;
    unsigned long long v[3];
    if (patch_args("data_frame", args, nargs, &at, v) < 0) {
        return NULL;
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
    patch_fields(dst, at, v, tn, &view, tail);
    PyBuffer_Release(&view);
    return out;
}

/* data_envelope(template, at, payload, timestamp_ms, epoch, offset) -> bytes: data_frame's
 * envelope alone, for a frame sent as its WebSocket header and this envelope in two pieces (the
 * envelope is then the very object history keeps: no second copy of the payload). ``template``
 * is the envelope's bytes before the payload (a frame template without its header), patched and
 * joined with the payload as data_frame does (the pure-Python twin is
 * codec._fast.data_envelope_py). ValueError when the template cannot hold the fields. */
static PyObject *
data_envelope(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    Py_ssize_t at;
    unsigned long long v[3];
    if (patch_args("data_envelope", args, nargs, &at, v) < 0) {
        return NULL;
    }
    int wide = v[0] ? 3 : 2;
    const unsigned char *tmpl = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t tn = PyBytes_GET_SIZE(args[0]);
    if (at < 0 || at + 8 * wide > tn - 4) {
        PyErr_SetString(PyExc_ValueError,
                        "data_envelope(): the template cannot hold the fields");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[2], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t n = view.len, tail = (-n) & 3;
    if (n > 0xFFFFFFFFLL || n > PY_SSIZE_T_MAX - tn - 3) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "data_envelope(): payload too large");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, tn + n + tail);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    memcpy(dst, tmpl, (size_t)tn);
    patch_fields(dst, at, v, tn, &view, tail);
    PyBuffer_Release(&view);
    return out;
}

/* -- a client's Data read straight out of the masked frame (sigma_core/codec/_readers.py)
 *
 * set_client_layouts(layouts): the fixed layouts of a client's Data envelope as the codec's
 * encoders write them (codec._readers._client_layouts), each (prefix, has_topic, has_timestamp,
 * at): the 52-byte constant prefix, whether a topic string follows the values, whether the
 * values hold a timestamp, where the topic string's length starts. Until it is called no
 * layout matches.
 *
 * read_client_frame(data, start, stop) -> (seq, topic, payload, timestamp_ms) | bytes: a masked
 * frame's payload data[start:stop], its masking key the 4 bytes before it (RFC 6455 5.2):
 * read_client_data(unmask_slice(data, start, stop, mask)) or, when that is None, the unmasked
 * bytes themselves (the pure-Python twin is codec._readers.read_client_frame_py): the envelope's
 * head is unmasked into a small buffer and checked exactly as read_client_data checks it, and
 * the payload is unmasked straight into its own bytes object (one copy of it, where the
 * unmasked envelope and then the payload sliced out of it were two). */
#define CLIENT_PREFIX 52
#define MAX_LAYOUTS 16

typedef struct {
    unsigned char prefix[CLIENT_PREFIX];
    int has_topic, has_ts;
    Py_ssize_t at;
} client_layout;

static client_layout layouts[MAX_LAYOUTS];
static int n_layouts = 0;

static PyObject *
set_client_layouts(PyObject *module, PyObject *arg)
{
    PyObject *seq = PySequence_Fast(arg, "set_client_layouts() needs a sequence");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_LAYOUTS) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "set_client_layouts(): too many layouts");
        return NULL;
    }
    client_layout fresh[MAX_LAYOUTS];
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *prefix;
        Py_ssize_t plen, at;
        int has_topic, has_ts;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "y#ppn", &prefix, &plen,
                              &has_topic, &has_ts, &at)) {
            Py_DECREF(seq);
            return NULL;
        }
        if (plen != CLIENT_PREFIX || at < CLIENT_PREFIX + 12 || at > CLIENT_PREFIX + 24) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "set_client_layouts(): not a client Data layout");
            return NULL;
        }
        memcpy(fresh[i].prefix, prefix, CLIENT_PREFIX);
        fresh[i].has_topic = has_topic;
        fresh[i].has_ts = has_ts;
        fresh[i].at = at;
    }
    Py_DECREF(seq);
    memcpy(layouts, fresh, sizeof(client_layout) * (size_t)n);
    n_layouts = (int)n;
    Py_RETURN_NONE;
}

/* dst = src XOR the masking key, where src is the frame payload's bytes from ``offset`` on. */
static void
xor_mask_at(unsigned char *dst, const unsigned char *src, Py_ssize_t n, unsigned long long m,
            Py_ssize_t offset)
{
    int r = (int)(offset & 3);
    if (r) {
        m = ((m >> (8 * r)) | (m << (8 * (4 - r)))) & 0xFFFFFFFFULL;
    }
    xor_mask(dst, src, n, m);
}

static unsigned long long
le64(const unsigned char *p)
{
    unsigned long long v = 0;
    for (int k = 7; k >= 0; k--) {
        v = v << 8 | p[k];
    }
    return v;
}

static Py_ssize_t
le32(const unsigned char *p)
{
    return (Py_ssize_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                        | (uint32_t)p[3] << 24);
}

/* The client Data read out of src (n masked bytes, key m), or NULL without an exception when
 * it is not one (or with one on a memory error). */
static PyObject *
read_masked_data(const unsigned char *src, Py_ssize_t n, unsigned long long m)
{
    unsigned char head[CLIENT_PREFIX + 24 + 4];
    if (n < CLIENT_PREFIX) {
        return NULL;
    }
    xor_mask(head, src, CLIENT_PREFIX, m);
    const client_layout *lay = NULL;
    for (int i = 0; i < n_layouts; i++) {
        if (memcmp(head, layouts[i].prefix, CLIENT_PREFIX) == 0) {
            lay = &layouts[i];
            break;
        }
    }
    Py_ssize_t at = lay ? lay->at : 0;
    if (lay == NULL || at > n) {
        return NULL;
    }
    /* The values (and the topic's length, when it is there: right behind them). */
    Py_ssize_t head_len = lay->has_topic && at + 4 <= n ? at + 4 : at;
    xor_mask_at(head + CLIENT_PREFIX, src + CLIENT_PREFIX, head_len - CLIENT_PREFIX, m,
                CLIENT_PREFIX);
    Py_ssize_t payload_rel = le32(head + CLIENT_PREFIX);
    unsigned long long seq = le64(head + CLIENT_PREFIX + 4);
    unsigned long long ts = lay->has_ts ? le64(head + CLIENT_PREFIX + 12) : 0;
    PyObject *topic = NULL;
    if (lay->has_topic) {
        if (at + 4 > n) {
            return NULL;
        }
        Py_ssize_t tlen = le32(head + at);
        Py_ssize_t tend = at + 4 + tlen;
        if (tend >= n) {
            return NULL;
        }
        /* the string and its NUL, unmasked */
        unsigned char small[256];
        unsigned char *tbuf = tlen + 1 <= (Py_ssize_t)sizeof(small) ? small
                                                                      : PyMem_Malloc((size_t)tlen + 1);
        if (tbuf == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        xor_mask_at(tbuf, src + at + 4, tlen + 1, m, at + 4);
        if (tbuf[tlen] == 0) {
            topic = PyUnicode_DecodeUTF8((const char *)tbuf, tlen, NULL);
        }
        if (tbuf != small) {
            PyMem_Free(tbuf);
        }
        if (topic == NULL) {
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    return NULL; /* a memory error: raised */
                }
                PyErr_Clear();
            }
            return NULL;
        }
    } else {
        topic = PyUnicode_FromStringAndSize("", 0);
        if (topic == NULL) {
            return NULL;
        }
    }
    /* The payload's uoffset is the first value. */
    Py_ssize_t pstart = CLIENT_PREFIX + payload_rel + 4;
    if (pstart > n) {
        Py_DECREF(topic);
        return NULL;
    }
    unsigned char lenb[4];
    xor_mask_at(lenb, src + pstart - 4, 4, m, pstart - 4);
    Py_ssize_t pend = pstart + le32(lenb);
    if (pend > n) {
        Py_DECREF(topic);
        return NULL;
    }
    PyObject *payload = PyBytes_FromStringAndSize(NULL, pend - pstart);
    if (payload == NULL) {
        Py_DECREF(topic);
        return NULL;
    }
    xor_mask_at((unsigned char *)PyBytes_AS_STRING(payload), src + pstart, pend - pstart, m,
                pstart);
    PyObject *seq_obj = PyLong_FromUnsignedLongLong(seq);
    PyObject *ts_obj = seq_obj ? PyLong_FromUnsignedLongLong(ts) : NULL;
    if (ts_obj == NULL) {
        Py_XDECREF(seq_obj);
        Py_DECREF(topic);
        Py_DECREF(payload);
        return NULL;
    }
    PyObject *out = PyTuple_New(4);
    if (out == NULL) {
        Py_DECREF(seq_obj);
        Py_DECREF(ts_obj);
        Py_DECREF(topic);
        Py_DECREF(payload);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, seq_obj);
    PyTuple_SET_ITEM(out, 1, topic);
    PyTuple_SET_ITEM(out, 2, payload);
    PyTuple_SET_ITEM(out, 3, ts_obj);
    return out;
}

static PyObject *
read_client_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "read_client_frame() takes exactly 3 arguments (data, start, stop)");
        return NULL;
    }
    Py_ssize_t start, stop;
    if (as_range(args, &start, &stop) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (start < 4 || stop < start || stop > view.len) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "read_client_frame(): start/stop out of range");
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)view.buf + start;
    /* the masking key: the 4 bytes before the payload, read little-endian (as unmask takes it) */
    unsigned long long m = (unsigned long long)le32(src - 4);
    PyObject *out = read_masked_data(src, stop - start, m);
    if (out == NULL && !PyErr_Occurred()) {
        out = PyBytes_FromStringAndSize(NULL, stop - start);
        if (out != NULL) {
            xor_mask((unsigned char *)PyBytes_AS_STRING(out), src, stop - start, m);
        }
    }
    PyBuffer_Release(&view);
    return out;
}

/* read_client_frames(data, pos, limit, items) -> int: the run of frames at data[pos:] that the
 * frame parser would hand, one by one, to read_client_frame and get a client Data's fields back
 * from, read in one call (sigma_core/_framer.py, FrameParser.receive; the pure-Python twin is
 * codec._readers.read_client_frames_py): each a whole, unfragmented, masked binary frame (first
 * byte 0x82, the mask bit set, its length in the fewest bytes, at most ``limit``, all of it in
 * ``data``) whose payload is a client Data of a known layout. The fields' tuples, in order, are
 * appended to ``items`` as one list (nothing is appended when there are none); the return value
 * is where the first frame not read starts: anything else (another opcode, a fragment, an
 * incomplete frame, a length over the limit or not minimal, another message) is left to the
 * parser's general path, which accepts or refuses it as before. IndexError unless
 * 0 <= pos <= len(data); TypeError unless items is a list. */
static PyObject *
read_client_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "read_client_frames() takes exactly 4 arguments (data, pos, limit, items)");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *items = args[3];
    if (!PyList_Check(items)) {
        PyErr_SetString(PyExc_TypeError, "read_client_frames(): items must be a list");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    Py_ssize_t end = view.len;
    if (pos < 0 || pos > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "read_client_frames(): pos out of range");
        return NULL;
    }
    const unsigned char *p = (const unsigned char *)view.buf;
    PyObject *batch = NULL;
    while (end - pos >= 2 && p[pos] == 0x82 && (p[pos + 1] & 0x80)) {
        Py_ssize_t length = p[pos + 1] & 0x7F, start;
        if (length < 126) {
            start = pos + 2;
        } else if (length == 126) {
            if (end - pos < 4) {
                break;
            }
            length = (Py_ssize_t)p[pos + 2] << 8 | p[pos + 3];
            if (length < 126) {
                break; /* not minimal: the parser fails it (1002) */
            }
            start = pos + 4;
        } else {
            if (end - pos < 10) {
                break;
            }
            unsigned long long wide = 0;
            for (int k = 0; k < 8; k++) {
                wide = wide << 8 | p[pos + 2 + k];
            }
            if (wide < 65536 || wide > (unsigned long long)limit) {
                break; /* not minimal, or over the limit: the parser fails it */
            }
            length = (Py_ssize_t)wide;
            start = pos + 10;
        }
        if (length > limit || end - start < 4 || length > end - start - 4) {
            break; /* over the limit (1009), or not all here yet */
        }
        start += 4;
        PyObject *fields = read_masked_data(p + start, length, (unsigned long long)le32(p + start - 4));
        if (fields == NULL) {
            if (PyErr_Occurred()) {
                goto error;
            }
            break; /* another message: the parser's reader hands it on as bytes */
        }
        if (batch == NULL) {
            batch = PyList_New(0);
            if (batch == NULL) {
                Py_DECREF(fields);
                goto error;
            }
        }
        int failed = PyList_Append(batch, fields);
        Py_DECREF(fields);
        if (failed < 0) {
            goto error;
        }
        pos = start + length;
    }
    PyBuffer_Release(&view);
    if (batch != NULL) {
        int failed = PyList_Append(items, batch);
        Py_DECREF(batch);
        if (failed < 0) {
            return NULL;
        }
    }
    return PyLong_FromSsize_t(pos);
error:
    Py_XDECREF(batch);
    PyBuffer_Release(&view);
    return NULL;
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

/* new_tuple(cls, *items) -> cls: tuple.__new__(cls, items) without the intermediate tuple
 * (tuple.__new__ of a subclass builds an exact tuple from the iterable, then copies it into the
 * subclass's instance: ~850 instructions a call through the compiled hub, for a history entry
 * and a position per message). ``cls`` is tuple or a subclass that adds no C fields (a
 * NamedTuple); like tuple.__new__, the subclass's own __new__ is not run. */
static PyObject *
new_tuple(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs < 1 || !PyType_Check(args[0])
            || !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "new_tuple(cls, *items): cls must be tuple or a "
                        "subclass of it");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    Py_ssize_t n = nargs - 1;
    if (cls->tp_basicsize != PyTuple_Type.tp_basicsize
            || cls->tp_itemsize != PyTuple_Type.tp_itemsize) {
        PyErr_Format(PyExc_TypeError, "new_tuple: %s adds fields to tuple", cls->tp_name);
        return NULL;
    }
    PyObject *out = cls == &PyTuple_Type ? PyTuple_New(n) : cls->tp_alloc(cls, n);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(args[i + 1]);
        PyTuple_SET_ITEM(out, i, args[i + 1]);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"new_tuple", (PyCFunction)(void (*)(void))new_tuple, METH_FASTCALL,
     "new_tuple(cls, *items) -> cls: tuple.__new__(cls, items), without the intermediate "
     "tuple (sigma_core.backplane)."},
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
    {"data_envelope", (PyCFunction)(void (*)(void))data_envelope, METH_FASTCALL,
     "data_envelope(template, at, payload, timestamp_ms, epoch, offset) -> bytes: data_frame's "
     "envelope alone, from a template without the WebSocket header (sigma_core.codec._fast)."},
    {"set_client_layouts", (PyCFunction)set_client_layouts, METH_O,
     "set_client_layouts(layouts): the client Data layouts read_client_frame recognises "
     "(sigma_core.codec._readers)."},
    {"read_client_frame", (PyCFunction)(void (*)(void))read_client_frame, METH_FASTCALL,
     "read_client_frame(data, start, stop) -> (seq, topic, payload, timestamp_ms) | bytes: "
     "a client's Data read out of a masked frame (the key at data[start-4:start]), or the "
     "unmasked bytes when it is not one."},
    {"read_client_frames", (PyCFunction)(void (*)(void))read_client_frames, METH_FASTCALL,
     "read_client_frames(data, pos, limit, items) -> int: the run of whole masked binary frames "
     "at data[pos:] that carry a client's Data, read as one list appended to items; where the "
     "first frame not read starts."},
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
