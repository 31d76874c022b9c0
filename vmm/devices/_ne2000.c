/* The NE2000's register fast path in C (see vmm/cpu/fastport.h): the 8390 register reads, the
 * register writes that only store a value, the command register when it starts no transmit and
 * no start/stop, and remote DMA through the data port inside the packet memory. These are the
 * ~50 port accesses a frame costs (Linux's 8390 driver).
 *
 * vmm/devices/ne2000.py is the device: it owns the state, in two bytearrays this module reads
 * and writes in place (`regs`, laid out as LAYOUT says, and `mem`, the packet memory), and it
 * does everything else. An access is declined, with nothing changed, when it would change the
 * card's interrupt line, transmit, start or stop the card, touch the receive ring's bounds, let
 * frames waiting in the FIFO in (BNRY while some wait), page 2 or 3, the PROM or the reset port, or reach outside the packet memory: the Python
 * model then does it (and fail-stops where it must). So both paths give the same state for the
 * same accesses; tests/vmm/devices/test_ne2000.py checks that on random access sequences. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "fastport.h"
#include "framepath.h"
#include "modelattrs.h"

/* regs[] layout (ne2000.py's REG_LAYOUT must be the same; a test compares them) */
enum {
    R_CR = 0, R_PSTART = 1, R_PSTOP = 2, R_BNRY = 3, R_TPSR = 4, R_TBCR = 5, /* 5-6 */
    R_ISR = 7, R_RSAR = 8, /* 8-9 */ R_RBCR = 10, /* 10-11 */ R_RCR = 12, R_TCR = 13,
    R_DCR = 14, R_IMR = 15, R_CURR = 16, R_TSR = 17, R_RSR = 18,
    R_LEVEL = 19,               /* the interrupt line's level as the Python model last set it */
    R_PAR = 20, /* 20-25 */ R_MAR = 26, /* 26-33 */ R_PAGE3 = 34, /* 34-49 */
    R_FIFO = 50,                /* non-zero: frames wait in the model's FIFO */
    REGS_SIZE = 64,
};

#define DATA_PORT 0x10
#define MEM_START 0x4000
#define MEM_END 0xC000
#define CR_STP 0x01
#define CR_STA 0x02
#define CR_TXP 0x04
#define ISR_RDC 0x40
#define ISR_PRX 0x01
#define DCR_WTS 0x01
#define RCR_AB 0x04
#define RCR_AM 0x08
#define RCR_PRO 0x10
#define RCR_MON 0x20
#define RSR_PRX 0x01
#define RSR_PHY 0x20
#define MAX_FRAME 1514

typedef struct {
    PyObject_HEAD
    Py_buffer regs_view;
    Py_buffer mem_view;
    uint8_t *r;
    uint8_t *mem;
    struct v3_fastport fp;
    PyObject *capsule;
    PyObject *model;            /* set_model: the device, for frames (stats, _update_irq) */
    struct v3_frame_rx rx;
    unsigned long long frames_stored;
} Ne2000Fast;

static PyObject *s_stats, *s_rx, *s_update_irq;

static inline unsigned get16(const uint8_t *r, int i) { return r[i] | (r[i + 1] << 8); }
static inline void put16(uint8_t *r, int i, unsigned v) { r[i] = v & 0xFF; r[i + 1] = (v >> 8) & 0xFF; }
static inline int level(unsigned isr, unsigned imr) { return (isr & imr & 0x7F) != 0; }

/* An n-byte step of remote DMA inside the packet memory that does not cross PSTOP: RSAR,
 * RBCR and ISR move on, and the step's packet-memory address is returned; or -1, nothing
 * changed (declined: the Python model steps through it). */
static long dma_step(uint8_t *r, unsigned n)
{
    unsigned a = get16(r, R_RSAR), stop = r[R_PSTOP] << 8, count = get16(r, R_RBCR);
    unsigned isr = r[R_ISR];
    if (a < MEM_START || a + n > MEM_END || (a < stop && stop < a + n))
        return -1;
    if (count <= n)
        isr |= ISR_RDC;
    if (level(isr, r[R_IMR]) != r[R_LEVEL])
        return -1;
    put16(r, R_RSAR, (a + n == stop) ? (unsigned)r[R_PSTART] << 8 : a + n);
    put16(r, R_RBCR, count <= n ? 0 : count - n);
    r[R_ISR] = isr;
    return a;
}

static int ne_in(void *opaque, unsigned off, int size, uint32_t *value)
{
    Ne2000Fast *self = opaque;
    uint8_t *r = self->r;
    if (off == DATA_PORT) {
        unsigned n = (size == 1 && (r[R_DCR] & DCR_WTS)) ? 2 : (unsigned)size;
        long a = dma_step(r, n);
        uint32_t v = 0;
        if (a < 0)
            return 0;
        for (int i = size - 1; i >= 0; i--)
            v = (v << 8) | self->mem[a + i];
        *value = v;
        return 1;
    }
    if (off > 0x0F || size != 1)
        return 0;
    if (off == 0) {
        *value = r[R_CR];
        return 1;
    }
    switch (r[R_CR] >> 6) {
    case 0:
        switch (off) {
        case 1: *value = 0; return 1;                   /* CLDA0: the receive point's page */
        case 2: *value = r[R_CURR]; return 1;           /* CLDA1 */
        case 3: *value = r[R_BNRY]; return 1;
        case 4: *value = r[R_TSR]; return 1;
        case 7: *value = r[R_ISR]; return 1;
        case 8: *value = r[R_RSAR]; return 1;
        case 9: *value = r[R_RSAR + 1]; return 1;
        case 10: *value = 0x50; return 1;               /* RTL8029 ID */
        case 11: *value = 0x43; return 1;
        case 12: *value = r[R_RSR]; return 1;
        default: *value = 0; return 1;                  /* NCR, FIFO, CNTR0-2 */
        }
    case 1:
        if (off <= 6)
            *value = r[R_PAR + off - 1];
        else if (off == 7)
            *value = r[R_CURR];
        else
            *value = r[R_MAR + off - 8];
        return 1;
    default:
        return 0;
    }
}

static int ne_command(uint8_t *r, unsigned v)
{
    unsigned cr = r[R_CR], rd = (v >> 3) & 7, isr = r[R_ISR];
    if (v & (CR_STP | CR_TXP))
        return 0;                                       /* stop, transmit */
    if ((v & CR_STA) && !(cr & CR_STA))
        return 0;                                       /* start */
    if (!(rd & 4)) {
        if (rd == 3)
            return 0;                                   /* "send packet" (not modelled) */
        if ((rd == 1 || rd == 2) && get16(r, R_RBCR) == 0)
            isr |= ISR_RDC;
    }
    if (level(isr, r[R_IMR]) != r[R_LEVEL])
        return 0;
    r[R_CR] = (v & ~(CR_STP | CR_STA | CR_TXP)) | (cr & (CR_STP | CR_STA | CR_TXP));
    r[R_ISR] = isr;
    return 1;
}

static int ne_out(void *opaque, unsigned off, int size, uint32_t value)
{
    Ne2000Fast *self = opaque;
    uint8_t *r = self->r;
    unsigned v;
    if (off == DATA_PORT) {
        unsigned n = (size == 1 && (r[R_DCR] & DCR_WTS)) ? 2 : (unsigned)size;
        long a = dma_step(r, n);
        if (a < 0)
            return 0;
        if (size < 4)
            value &= (1u << (8 * size)) - 1;
        for (unsigned i = 0; i < n; i++)
            self->mem[a + i] = i < 4 ? (value >> (8 * i)) & 0xFF : 0;
        return 1;
    }
    if (off > 0x0F || size != 1)
        return 0;
    v = value & 0xFF;
    if (off == 0)
        return ne_command(r, v);
    switch (r[R_CR] >> 6) {
    case 0:
        switch (off) {
        case 3:
            if (r[R_FIFO])
                return 0;                               /* BNRY lets waiting frames in */
            r[R_BNRY] = v;
            return 1;
        case 4: r[R_TPSR] = v; return 1;
        case 5: r[R_TBCR] = v; return 1;
        case 6: r[R_TBCR + 1] = v; return 1;
        case 7: {
            unsigned isr = r[R_ISR] & ~(v & 0x7F);
            if (level(isr, r[R_IMR]) != r[R_LEVEL])
                return 0;
            r[R_ISR] = isr;
            return 1;
        }
        case 8: r[R_RSAR] = v; return 1;
        case 9: r[R_RSAR + 1] = v; return 1;
        case 10: r[R_RBCR] = v; return 1;
        case 11: r[R_RBCR + 1] = v; return 1;
        case 12: r[R_RCR] = v & 0x3F; return 1;
        case 13: r[R_TCR] = v & 0x1F; return 1;
        case 14: r[R_DCR] = v & 0x7F; return 1;
        case 15:
            if (level(r[R_ISR], v & 0x7F) != r[R_LEVEL])
                return 0;
            r[R_IMR] = v & 0x7F;
            return 1;
        default:
            return 0;                                   /* PSTART, PSTOP */
        }
    case 1:
        if (off == 7)
            return 0;                                   /* CURR: checked by the model */
        if (off <= 6)
            r[R_PAR + off - 1] = v;
        else
            r[R_MAR + off - 8] = v;
        return 1;
    default:
        return 0;
    }
}


/* -- frames from the backend's C half (vmm/net/framepath.h) ------------------------------ */
/* The model's receive and _store for a frame it would store at once: the card started, the
 * frame accepted (RCR), no frame waiting in the FIFO, room between CURR and BNRY in a ring
 * CURR lies in. Anything else is declined to the model (drops, filtering, the FIFO,
 * fail-stops). A stored frame sets PRX; a line that must change is the model's _update_irq. */
static int ne_receive(void *opaque, const uint8_t *frame, size_t len)
{
    Ne2000Fast *self = opaque;
    uint8_t *r = self->r, *mem = self->mem, hdr[4];
    unsigned rcr, kind, start, stop, curr, bnry, count, need, nxt, addr, end, isr;
    int pages, free;
    size_t n = len < 60 ? 60 : len, first, total;
    if (self->model == NULL || !(r[R_CR] & CR_STA) || (r[R_CR] & CR_STP) || len > MAX_FRAME ||
            len < 6 || r[R_FIFO])
        return 0;
    rcr = r[R_RCR];
    if (rcr & RCR_MON)
        return 0;
    if (memcmp(frame, "\xff\xff\xff\xff\xff\xff", 6) == 0) {
        if (!(rcr & (RCR_AB | RCR_PRO)))
            return 0;
        kind = RSR_PHY;
    } else if (frame[0] & 1) {
        if (!(rcr & (RCR_AM | RCR_PRO)))
            return 0;
        kind = RSR_PHY;
    } else if (memcmp(frame, r + R_PAR, 6) == 0 || (rcr & RCR_PRO)) {
        kind = 0;
    } else {
        return 0;
    }
    start = r[R_PSTART];
    stop = r[R_PSTOP];
    curr = r[R_CURR];
    bnry = r[R_BNRY];
    pages = (int)stop - (int)start;
    if (pages <= 0 || curr < start || curr >= stop || (stop << 8) > MEM_END)
        return 0;
    count = n + 4;
    need = (count + 255) >> 8;
    free = ((int)bnry - (int)curr) % pages;
    if (free < 0)
        free += pages;
    if ((int)need > free)
        return 0;                                   /* the model queues it in the FIFO */
    nxt = curr + need;
    if (nxt >= stop)
        nxt -= pages;
    hdr[0] = RSR_PRX | kind;
    hdr[1] = nxt;
    hdr[2] = count & 0xFF;
    hdr[3] = count >> 8;
    addr = curr << 8;
    end = stop << 8;
    total = 4 + n;
    /* the record (header, frame, its padding) from CURR, wrapping at PSTOP to PSTART */
    {
        uint8_t rec[4 + MAX_FRAME];
        memcpy(rec, hdr, 4);
        memcpy(rec + 4, frame, len);
        memset(rec + 4 + len, 0, n - len);
        first = total < end - addr ? total : end - addr;
        memcpy(mem + addr, rec, first);
        if (first < total)
            memcpy(mem + (start << 8), rec + first, total - first);
    }
    r[R_CURR] = nxt;
    r[R_RSR] = RSR_PRX | kind;
    isr = r[R_ISR] | ISR_PRX;
    r[R_ISR] = isr;
    self->frames_stored++;
    {
        PyObject *d = PyObject_GenericGetDict(self->model, NULL), *res;
        int ok = d != NULL && PyDict_Check(d) && count_up(d, s_stats, s_rx);
        Py_XDECREF(d);
        if (!ok) {
            PyErr_Clear();
            PyErr_SetString(PyExc_RuntimeError, "NE2000 fast path: the model has no stats");
            return -1;
        }
        if (level(isr, r[R_IMR]) != r[R_LEVEL]) {
            res = PyObject_CallMethodNoArgs(self->model, s_update_irq);
            if (res == NULL)
                return -1;
            Py_DECREF(res);
        }
    }
    return 1;
}

static int Ne2000Fast_init(Ne2000Fast *self, PyObject *args, PyObject *kw)
{
    PyObject *regs, *mem;
    static char *names[] = {"regs", "mem", NULL};
    if (self->capsule != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Ne2000Fast is already initialised");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO", names, &regs, &mem))
        return -1;
    if (!PyByteArray_Check(regs) || !PyByteArray_Check(mem)) {
        PyErr_SetString(PyExc_TypeError, "regs and mem must be bytearrays");
        return -1;
    }
    if (PyObject_GetBuffer(regs, &self->regs_view, PyBUF_WRITABLE) < 0)
        return -1;
    if (PyObject_GetBuffer(mem, &self->mem_view, PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&self->regs_view);
        return -1;
    }
    if (self->regs_view.len != REGS_SIZE || self->mem_view.len != MEM_END) {
        PyBuffer_Release(&self->regs_view);
        PyBuffer_Release(&self->mem_view);
        PyErr_Format(PyExc_ValueError, "regs must be %d bytes and mem %d bytes", REGS_SIZE,
                     MEM_END);
        return -1;
    }
    self->r = self->regs_view.buf;
    self->mem = self->mem_view.buf;
    self->fp.in = ne_in;
    self->fp.out = ne_out;
    self->fp.opaque = self;
    self->rx.receive = ne_receive;
    self->rx.opaque = self;
    self->capsule = PyCapsule_New(&self->fp, FASTPORT_CAPSULE, NULL);
    if (self->capsule == NULL) {
        PyBuffer_Release(&self->regs_view);
        PyBuffer_Release(&self->mem_view);
        return -1;
    }
    return 0;
}

static int Ne2000Fast_traverse(Ne2000Fast *self, visitproc visit, void *arg)
{
    Py_VISIT(self->model);
    return 0;
}

static int Ne2000Fast_clear(Ne2000Fast *self)
{
    Py_CLEAR(self->model);
    return 0;
}

static void Ne2000Fast_dealloc(Ne2000Fast *self)
{
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->model);
    if (self->capsule != NULL) {
        Py_DECREF(self->capsule);
        PyBuffer_Release(&self->regs_view);
        PyBuffer_Release(&self->mem_view);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int ready(Ne2000Fast *self)
{
    if (self->capsule == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Ne2000Fast is not initialised");
        return 0;
    }
    return 1;
}

static PyObject *Ne2000Fast_capsule(Ne2000Fast *self, void *closure)
{
    if (!ready(self))
        return NULL;
    Py_INCREF(self->capsule);
    return self->capsule;
}

/* in(offset, size) / out(offset, size, value): the fast path called directly, for tests.
 * in returns the value or None when declined; out returns True or False. */
static PyObject *Ne2000Fast_in(Ne2000Fast *self, PyObject *args)
{
    unsigned off;
    int size;
    uint32_t value;
    if (!PyArg_ParseTuple(args, "Ii", &off, &size) || !ready(self))
        return NULL;
    if (!ne_in(self, off, size, &value))
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(value);
}

static PyObject *Ne2000Fast_out(Ne2000Fast *self, PyObject *args)
{
    unsigned off, value;
    int size;
    if (!PyArg_ParseTuple(args, "IiI", &off, &size, &value) || !ready(self))
        return NULL;
    return PyBool_FromLong(ne_out(self, off, size, value));
}

/* set_model(nic): frames may be stored here (the model keeps the stats and the line) */
static PyObject *Ne2000Fast_set_model(Ne2000Fast *self, PyObject *model)
{
    if (!ready(self))
        return NULL;
    Py_INCREF(model);
    Py_XSETREF(self->model, model == Py_None ? (Py_DECREF(model), NULL) : model);
    Py_RETURN_NONE;
}

/* receive(frame) -> 1 stored here, 0 declined: the receive half alone, for tests */
static PyObject *Ne2000Fast_receive(Ne2000Fast *self, PyObject *arg)
{
    Py_buffer b;
    int rc;
    if (!ready(self) || PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    rc = ne_receive(self, b.buf, b.len);
    PyBuffer_Release(&b);
    if (rc < 0)
        return NULL;
    return PyLong_FromLong(rc);
}

static PyObject *Ne2000Fast_rx_capsule(Ne2000Fast *self, void *closure)
{
    if (!ready(self))
        return NULL;
    return PyCapsule_New(&self->rx, FRAME_RX_CAPSULE, NULL);
}

static PyObject *Ne2000Fast_frames_stored(Ne2000Fast *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->frames_stored);
}

static PyMethodDef Ne2000Fast_methods[] = {
    {"set_model", (PyCFunction)Ne2000Fast_set_model, METH_O,
     "set_model(nic): frames are stored here from now on (None: not any more)"},
    {"receive", (PyCFunction)Ne2000Fast_receive, METH_O,
     "receive(frame) -> 1 when stored here, 0 when declined (the model's receive then)"},
    {"port_in", (PyCFunction)Ne2000Fast_in, METH_VARARGS,
     "port_in(offset, size) -> value, or None when the fast path declines"},
    {"port_out", (PyCFunction)Ne2000Fast_out, METH_VARARGS,
     "port_out(offset, size, value) -> whether the fast path did it"},
    {NULL},
};

static PyGetSetDef Ne2000Fast_getset[] = {
    {"_v3_fastport", (getter)Ne2000Fast_capsule, NULL, "the fast path for the dispatcher", NULL},
    {"_v3_frame_rx", (getter)Ne2000Fast_rx_capsule, NULL, "the card's receive half (framepath.h)",
     NULL},
    {"frames_stored", (getter)Ne2000Fast_frames_stored, NULL, "frames received here", NULL},
    {NULL},
};

static PyTypeObject Ne2000FastType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.devices._ne2000.Ne2000Fast",
    .tp_basicsize = sizeof(Ne2000Fast),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Ne2000Fast(regs, mem): the NE2000's register fast path over the device's buffers, "
              "and (set_model) its receive of frames",
    .tp_traverse = (traverseproc)Ne2000Fast_traverse,
    .tp_clear = (inquiry)Ne2000Fast_clear,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ne2000Fast_init,
    .tp_dealloc = (destructor)Ne2000Fast_dealloc,
    .tp_methods = Ne2000Fast_methods,
    .tp_getset = Ne2000Fast_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ne2000",
    "The NE2000's register fast path in C (vmm/devices/ne2000.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__ne2000(void)
{
    PyObject *m, *layout;
    static const struct model_name names[] = {
        {&s_stats, "stats"}, {&s_rx, "rx"}, {&s_update_irq, "_update_irq"},
    };
    if (intern_names(names, sizeof(names) / sizeof(names[0])) < 0 ||
            PyType_Ready(&Ne2000FastType) < 0)
        return NULL;
    /* the snapshot code treats it as wiring: the state is in the device's bytearrays */
    if (PyDict_SetItemString(Ne2000FastType.tp_dict, "SNAPSHOT_WIRING", Py_True) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    layout = Py_BuildValue(
        "{si si si si si si si si si si si si si si si si si si si si si si si si}",
        "CR", R_CR, "PSTART", R_PSTART, "PSTOP", R_PSTOP, "BNRY", R_BNRY, "TPSR", R_TPSR,
        "TBCR", R_TBCR, "ISR", R_ISR, "RSAR", R_RSAR, "RBCR", R_RBCR, "RCR", R_RCR,
        "TCR", R_TCR, "DCR", R_DCR, "IMR", R_IMR, "CURR", R_CURR, "TSR", R_TSR, "RSR", R_RSR,
        "LEVEL", R_LEVEL, "PAR", R_PAR, "MAR", R_MAR, "PAGE3", R_PAGE3, "FIFO", R_FIFO,
        "SIZE", REGS_SIZE,
        "MEM_SIZE", MEM_END, "DATA_PORT", DATA_PORT);
    if (layout == NULL || PyModule_AddObject(m, "LAYOUT", layout) < 0) {
        Py_XDECREF(layout);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&Ne2000FastType);
    if (PyModule_AddObject(m, "Ne2000Fast", (PyObject *)&Ne2000FastType) < 0) {
        Py_DECREF(&Ne2000FastType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
