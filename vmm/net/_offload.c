/* The transmit offloads' arithmetic in C (vmm/net/offload.py uses it when it is built).
 *
 * - ones_sum(data): the folded 16-bit ones'-complement sum of big-endian words (RFC 1071), an
 *   odd length padded with a zero byte; 0 only when every byte is zero.
 * - tso(frame, ip, l4, thl, length, mss): TCP segmentation of a TCP/IPv4 frame whose headers
 *   offload.tso_segments has already checked (IPv4 header at `ip`, TCP header of `thl` bytes at
 *   `l4`, `length` bytes of TCP segment, MSS > 0): the frames it would build, as bytes.
 *
 * Both give exactly what the Python code gives (tests/vmm/net/test_offload.py compares them). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include "wordsum.h"

#define PROTO_TCP 6
#define TCP_FIN 0x01
#define TCP_PSH 0x08
#define TCP_CWR 0x80

static unsigned fold(uint64_t s)
{
    while (s >> 16)
        s = (s & 0xFFFF) + (s >> 16);
    return (unsigned)s;
}

/* the checksum field for a block whose words sum to `s`: as offload.py computes it, a
 * remainder of 0 standing for 0xFFFF (so the field is never 0xFFFF) */
static unsigned field(uint64_t s)
{
    unsigned f = fold(s);
    if (f == 0)
        f = 0xFFFF;
    return ~f & 0xFFFF;
}

static PyObject *ones_sum(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    unsigned s;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    s = fold(word_sum(b.buf, b.len));
    PyBuffer_Release(&b);
    return PyLong_FromUnsignedLong(s);
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static PyObject *tso(PyObject *self, PyObject *args)
{
    Py_buffer fb;
    Py_ssize_t ip, l4, thl, length, mss, ihl, plen, count, i;
    PyObject *out = NULL;
    if (!PyArg_ParseTuple(args, "y*nnnnn", &fb, &ip, &l4, &thl, &length, &mss))
        return NULL;
    ihl = l4 - ip;
    plen = length - thl;
    if (ip < 0 || ihl < 20 || thl < 20 || plen < 0 || mss <= 0 || l4 + length > fb.len) {
        PyErr_SetString(PyExc_ValueError, "tso: headers outside the frame (not checked?)");
        goto done;
    }
    {
        const uint8_t *f = fb.buf, *tcp = f + l4, *payload = f + l4 + thl;
        unsigned ident = (unsigned)f[ip + 4] << 8 | f[ip + 5];
        uint32_t seq = (uint32_t)tcp[4] << 24 | (uint32_t)tcp[5] << 16 |
                       (uint32_t)tcp[6] << 8 | tcp[7];
        uint8_t flags = tcp[13];
        uint64_t pseudo = word_sum(f + ip + 12, 8) + PROTO_TCP;
        count = plen ? (plen + mss - 1) / mss : 1;
        out = PyList_New(count);
        if (out == NULL)
            goto done;
        for (i = 0; i < count; i++) {
            Py_ssize_t clen = plen - i * mss < mss ? plen - i * mss : mss;
            PyObject *seg = PyBytes_FromStringAndSize(NULL, ip + ihl + thl + clen);
            uint8_t *p, *iph, *tcph;
            uint32_t s;
            uint8_t fl = flags;
            if (seg == NULL) {
                Py_CLEAR(out);
                goto done;
            }
            p = (uint8_t *)PyBytes_AS_STRING(seg);
            memcpy(p, f, ip + ihl);                       /* Ethernet and IPv4 headers */
            memcpy(p + ip + ihl, tcp, thl);
            memcpy(p + ip + ihl + thl, payload + i * mss, clen);
            iph = p + ip;
            tcph = iph + ihl;
            put16(iph + 2, (unsigned)(ihl + thl + clen));
            put16(iph + 4, (ident + (unsigned)i) & 0xFFFF);
            put16(iph + 10, 0);
            put16(iph + 10, field(word_sum(iph, ihl)));
            s = seq + (uint32_t)(i * mss);
            tcph[4] = (uint8_t)(s >> 24);
            tcph[5] = (uint8_t)(s >> 16);
            tcph[6] = (uint8_t)(s >> 8);
            tcph[7] = (uint8_t)s;
            if (i != count - 1)
                fl &= (uint8_t)~(TCP_FIN | TCP_PSH);
            if (i != 0)
                fl &= (uint8_t)~TCP_CWR;
            tcph[13] = fl;
            put16(tcph + 16, 0);
            put16(tcph + 16, field(pseudo + (uint64_t)(thl + clen) + word_sum(tcph, thl) +
                                   word_sum(tcph + thl, clen)));
            PyList_SET_ITEM(out, i, seg);
        }
    }
done:
    PyBuffer_Release(&fb);
    return out;
}

static PyMethodDef methods[] = {
    {"ones_sum", ones_sum, METH_O,
     "ones_sum(data) -> the folded 16-bit ones'-complement sum of data's big-endian words"},
    {"tso", tso, METH_VARARGS,
     "tso(frame, ip, l4, thl, length, mss) -> [bytes]: the TCP segments of a checked TCP/IPv4 "
     "frame, as offload.tso_segments builds them"},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_offload",
    "The transmit offloads' arithmetic in C (vmm/net/offload.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__offload(void)
{
    return PyModule_Create(&module);
}
