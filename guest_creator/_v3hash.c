/* The v1 guest-image file hash (Palacios' v3_hash_buffer), streamed.
 *
 * Per byte at absolute position i: h = (h << 4) + byte + i; t = h & 0xF0000000;
 * if t: h ^= t >> 24; h &= ~t -- with h a 64-bit unsigned long, so carries past bit 31
 * survive and move up.
 *
 * Speed: bits 0..31 of h never depend on bits 32..63, so the bulk of a buffer runs a
 * 32-bit recurrence (4 dependent ops per byte). Bits 32..63 are only the carries of the
 * last 8 steps (older ones are shifted out of 64 bits), so the last 8 bytes of a buffer
 * are redone with the full 64-bit step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static uint64_t step64(uint64_t h, const unsigned char *p, size_t n, uint64_t pos)
{
    for (size_t k = 0; k < n; k++) {
        uint64_t t;
        h = (h << 4) + p[k] + (pos + k);
        t = h & 0xF0000000u;
        if (t)
            h ^= t >> 24;
        h &= ~t;
    }
    return h;
}

uint64_t v3hash_update(uint64_t h, uint64_t pos, const unsigned char *p, size_t n)
{
    if (n <= 8)
        return step64(h, p, n, pos);

    /* Work on y, the low 32 bits of h *before* its top nibble is folded: the next y is
     * ((y << 4) ^ (top nibble of y moved to bits 8..11)) + byte + i, the uint32 shift
     * dropping the nibble that h &= ~t clears. 4 dependent operations per byte. */
    size_t bulk = n - 8, k;
    uint32_t idx = (uint32_t)pos;
    uint32_t y = ((uint32_t)h << 4) + p[0] + idx;   /* bits 28..31 of a stored h are clear */
    for (k = 1; k < bulk; k++) {
        uint32_t add = p[k] + idx + (uint32_t)k;
        y = ((y << 4) ^ ((y >> 20) & 0xF00u)) + add;
    }
    uint32_t low = (y & 0x0FFFFFFFu) ^ ((y >> 24) & 0xF0u);
    /* bits >= 32 of the old state are shifted past bit 63 by the last 8 steps */
    return step64((uint64_t)low, p + bulk, 8, pos + bulk);
}

static PyObject *py_update(PyObject *self, PyObject *args)
{
    unsigned long long h, pos;
    Py_buffer view;
    uint64_t out;

    if (!PyArg_ParseTuple(args, "KKy*:update", &h, &pos, &view))
        return NULL;
    if (view.len > (1 << 16)) {
        Py_BEGIN_ALLOW_THREADS
        out = v3hash_update(h, pos, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    } else {
        out = v3hash_update(h, pos, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(out);
}

static PyMethodDef methods[] = {
    {"update", py_update, METH_VARARGS,
     "update(state, position, buffer) -> new state: the v1 file hash continued over buffer, "
     "whose first byte is at absolute file position `position`."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_v3hash", "Fast path of guest_creator.hashing.", -1, methods,
};

PyMODINIT_FUNC PyInit__v3hash(void)
{
    return PyModule_Create(&module);
}
