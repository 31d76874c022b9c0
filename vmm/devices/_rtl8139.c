/* The RTL8139's register fast path in C for its classic mode (vmm/devices/rtl8139.py), behind
 * the MMIO dispatcher (vmm/cpu/_fastmmio.c, contract vmm/cpu/fastmmio.h).
 *
 * Linux's 8139too touches the card's registers seven or eight times for every frame: it reads
 * ISR and the four TSDs in its interrupt and poll routines, reads CR to see whether the receive
 * ring is empty, writes CAPR after each received frame, and writes ISR and IMR to acknowledge
 * and to mask the card's interrupt while it polls. Each was a Python call of a few
 * microseconds; only the TSD write (a transmit) has work to do beyond a register.
 *
 * The fast path works on the Python model's own attributes (its instance dictionary; the
 * dispatcher holds the GIL): one state, one model. It does the register reads that have no
 * side effect, the TSAD and RBSTART writes, the ISR and IMR writes that leave the interrupt
 * line as it is, and the CAPR write when no frame waits in the card's FIFO. Everything else it
 * declines, changing nothing, and the model does it (transmits, line changes, the FIFO's
 * drain, the EEPROM, the PHY, fail-stops). The C+ mode has its own register handlers and no
 * fast path. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "fastmmio.h"

/* register offsets (RTL8139C datasheet; rtl8139.py names them the same) */
#define TSD0 0x10
#define TSAD0 0x20
#define RBSTART 0x30
#define CR 0x37
#define CAPR 0x38
#define CBR 0x3A
#define IMR 0x3C
#define ISR 0x3E
#define TCR 0x40
#define RCR 0x44
#define TSC 0x48
#define MPC 0x4C
#define TIMERINT 0x54
#define CR_RE 0x08
#define CR_BUFE 0x01
#define ISR_MASK 0xE07F

static PyObject *s_tsd, *s_tsad, *s_rbstart, *s_tcr, *s_rcr, *s_mpc, *s_isr, *s_imr,
    *s_read_ptr, *s_cbr, *s_cr, *s_fifo, *s_irq, *s_level, *s_cp;

/* -- the model's attributes ------------------------------------------------------------------ */
static int get_u64(PyObject *dict, PyObject *name, uint64_t *out)   /* 0: decline */
{
    PyObject *v = PyDict_GetItemWithError(dict, name);
    if (v == NULL || !PyLong_Check(v)) {
        PyErr_Clear();
        return 0;
    }
    *out = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static int set_u64(PyObject *dict, PyObject *name, uint64_t value)
{
    PyObject *v = PyLong_FromUnsignedLongLong(value);
    int rc = v != NULL && PyDict_SetItem(dict, name, v) == 0;
    Py_XDECREF(v);
    if (!rc)
        PyErr_Clear();
    return rc;
}

/* item n of the list attribute `name` (TSD, TSAD) */
static int get_item(PyObject *dict, PyObject *name, Py_ssize_t n, uint64_t *out)
{
    PyObject *list = PyDict_GetItemWithError(dict, name), *v;
    if (list == NULL || !PyList_Check(list) || PyList_GET_SIZE(list) != 4) {
        PyErr_Clear();
        return 0;
    }
    v = PyList_GET_ITEM(list, n);
    if (!PyLong_Check(v))
        return 0;
    *out = PyLong_AsUnsignedLongLong(v);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static int set_item(PyObject *dict, PyObject *name, Py_ssize_t n, uint64_t value)
{
    PyObject *list = PyDict_GetItemWithError(dict, name), *v;
    if (list == NULL || !PyList_Check(list) || PyList_GET_SIZE(list) != 4) {
        PyErr_Clear();
        return 0;
    }
    v = PyLong_FromUnsignedLongLong(value);
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyList_SetItem(list, n, v);             /* steals v */
    return 1;
}

/* The level the model last put on INTA# (its IntxLine's), or -1 when unknown. No line yet
 * (a card not attached): the model drives nothing, any level is "unchanged". */
static int line_level(PyObject *dict)
{
    PyObject *irq = PyDict_GetItemWithError(dict, s_irq), *v;
    long level;
    if (irq == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (irq == Py_None)
        return 2;
    v = PyObject_GetAttr(irq, s_level);
    if (v == NULL) {
        PyErr_Clear();
        return -1;
    }
    level = PyLong_Check(v) ? PyLong_AsLong(v) : -1;
    Py_DECREF(v);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    return level == 0 || level == 1 ? (int)level : -1;
}

/* Whether ISR & IMR gives the level the line already has: only then may a write to either
 * skip the model (whose _update_irq would then change nothing). */
static int same_level(PyObject *dict, uint64_t isr, uint64_t imr)
{
    int level = line_level(dict);
    if (level == 2)
        return 1;
    return level >= 0 && level == ((isr & imr) != 0);
}

static int is_classic(PyObject *dict)       /* the C+ mode's registers are not ours */
{
    PyObject *cp = PyDict_GetItemWithError(dict, s_cp);
    if (cp == NULL)
        PyErr_Clear();
    return cp == Py_None;
}

/* -- the object ------------------------------------------------------------------------------ */
typedef struct {
    PyObject_HEAD
    PyObject *model;                     /* the Python device */
    PyObject *dict;                      /* its instance dictionary */
    struct v3_fastmmio fp;
    unsigned long long done;             /* accesses done here */
} Rtl8139Fast;

static int regs_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    PyObject *d = ((Rtl8139Fast *)opaque)->dict;
    uint64_t v, w;
    if (d == NULL || !is_classic(d))
        return 0;
    if (size == 4) {
        if (off >= TSD0 && off < TSD0 + 16 && !(off & 3))
            return get_item(d, s_tsd, (off - TSD0) >> 2, value);
        if (off >= TSAD0 && off < TSAD0 + 16 && !(off & 3))
            return get_item(d, s_tsad, (off - TSAD0) >> 2, value);
        switch (off) {
        case RBSTART: return get_u64(d, s_rbstart, value);
        case TCR: return get_u64(d, s_tcr, value);
        case RCR: return get_u64(d, s_rcr, value);
        case MPC: return get_u64(d, s_mpc, value);
        case TSC: case TIMERINT: *value = 0; return 1;
        }
        return 0;
    }
    if (size == 2) {
        switch (off) {
        case ISR: return get_u64(d, s_isr, value);
        case IMR: return get_u64(d, s_imr, value);
        case CBR: return get_u64(d, s_cbr, value);
        case CAPR:
            if (!get_u64(d, s_read_ptr, &v))
                return 0;
            *value = (v - 16) & 0xFFFF;
            return 1;
        }
        return 0;
    }
    if (size == 1) {
        switch (off) {
        case ISR: case ISR + 1:
            if (!get_u64(d, s_isr, &v))
                return 0;
            *value = off == ISR ? v & 0xFF : v >> 8;
            return 1;
        case IMR: case IMR + 1:
            if (!get_u64(d, s_imr, &v))
                return 0;
            *value = off == IMR ? v & 0xFF : v >> 8;
            return 1;
        case CR: {
            uint64_t cbr, rp, rcr;
            if (!get_u64(d, s_cr, &v) || !get_u64(d, s_cbr, &cbr) ||
                    !get_u64(d, s_read_ptr, &rp) || !get_u64(d, s_rcr, &rcr))
                return 0;
            w = 8192u << ((rcr >> 11) & 3);          /* the ring's length */
            *value = v | (cbr == rp % w ? CR_BUFE : 0);
            return 1;
        }
        }
    }
    return 0;
}

static int regs_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    PyObject *d = ((Rtl8139Fast *)opaque)->dict;
    uint64_t isr, imr, cr;
    if (d == NULL || !is_classic(d))
        return 0;
    if (size == 4) {
        if (off >= TSAD0 && off < TSAD0 + 16 && !(off & 3))
            return set_item(d, s_tsad, (off - TSAD0) >> 2, value & 0xFFFFFFFF);
        if (off == RBSTART)
            return set_u64(d, s_rbstart, value & 0xFFFFFFFF);
        return 0;
    }
    if (size != 2)
        return 0;
    switch (off) {
    case ISR:                                   /* write 1 to clear */
        if (!get_u64(d, s_isr, &isr) || !get_u64(d, s_imr, &imr))
            return 0;
        isr &= ~value & 0xFFFF;
        return same_level(d, isr, imr) && set_u64(d, s_isr, isr);
    case IMR:
        if (!get_u64(d, s_isr, &isr))
            return 0;
        imr = value & ISR_MASK;
        return same_level(d, isr, imr) && set_u64(d, s_imr, imr);
    case CAPR: {
        /* frames waiting in the FIFO go into the space this frees: the model's drain */
        PyObject *fifo = PyDict_GetItemWithError(d, s_fifo);
        Py_ssize_t waiting;
        if (fifo == NULL || !get_u64(d, s_cr, &cr)) {
            PyErr_Clear();
            return 0;
        }
        waiting = PyObject_Length(fifo);
        if (waiting < 0) {
            PyErr_Clear();
            return 0;
        }
        if (waiting && (cr & CR_RE))
            return 0;
        return set_u64(d, s_read_ptr, (value + 16) & 0xFFFF);
    }
    }
    return 0;
}

static int rtl_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    int done = regs_read(opaque, off, size, value);
    ((Rtl8139Fast *)opaque)->done += done;
    return done;
}

static int rtl_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    int done = regs_write(opaque, off, size, value);
    ((Rtl8139Fast *)opaque)->done += done;
    return done;
}

/* -- Python interface ------------------------------------------------------------------------ */
static int Fast_traverse(Rtl8139Fast *self, visitproc visit, void *arg)
{
    Py_VISIT(self->model);
    Py_VISIT(self->dict);
    return 0;
}

static int Fast_clear(Rtl8139Fast *self)
{
    Py_CLEAR(self->model);
    Py_CLEAR(self->dict);
    return 0;
}

static void Fast_dealloc(Rtl8139Fast *self)
{
    PyObject_GC_UnTrack(self);
    Fast_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Fast_init(Rtl8139Fast *self, PyObject *args, PyObject *kw)
{
    PyObject *model, *dict;
    if (!PyArg_ParseTuple(args, "O", &model))
        return -1;
    dict = PyObject_GenericGetDict(model, NULL);
    if (dict == NULL)
        return -1;
    if (!PyDict_Check(dict)) {
        Py_DECREF(dict);
        PyErr_SetString(PyExc_TypeError, "the model's __dict__ is not a dict");
        return -1;
    }
    Py_INCREF(model);
    Py_XSETREF(self->model, model);
    Py_XSETREF(self->dict, dict);
    self->fp.read = rtl_read;
    self->fp.write = rtl_write;
    self->fp.opaque = self;
    return 0;
}

/* `_v3_fastmmio`: the capsule the MMIO dispatcher takes (it keeps this object alive while the
 * range is mapped) */
static PyObject *Fast_capsule(Rtl8139Fast *self, void *closure)
{
    return PyCapsule_New(&self->fp, FASTMMIO_CAPSULE, NULL);
}

/* read(offset, size) -> value, or None when declined; write(offset, size, value) -> whether
 * it was done: the fast path alone, for the tests */
static PyObject *Fast_read(Rtl8139Fast *self, PyObject *args)
{
    unsigned long long offset, value = 0;
    unsigned size;
    if (!PyArg_ParseTuple(args, "KI", &offset, &size))
        return NULL;
    if (!rtl_read(self, offset, size, (uint64_t *)&value))
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(value);
}

static PyObject *Fast_write(Rtl8139Fast *self, PyObject *args)
{
    unsigned long long offset, value;
    unsigned size;
    if (!PyArg_ParseTuple(args, "KIK", &offset, &size, &value))
        return NULL;
    return PyBool_FromLong(rtl_write(self, offset, size, value));
}

static PyObject *Fast_done(Rtl8139Fast *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->done);
}

static PyGetSetDef Fast_getset[] = {
    {"_v3_fastmmio", (getter)Fast_capsule, NULL, "the fast path for the MMIO dispatcher", NULL},
    {"done", (getter)Fast_done, NULL, "how many accesses the fast path did", NULL},
    {NULL},
};

static PyMethodDef Fast_methods[] = {
    {"read", (PyCFunction)Fast_read, METH_VARARGS,
     "read(offset, size) -> the value, or None when the fast path declines"},
    {"write", (PyCFunction)Fast_write, METH_VARARGS,
     "write(offset, size, value) -> True when the fast path did it, False when it declines"},
    {NULL},
};

static PyTypeObject Rtl8139FastType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.devices._rtl8139.Rtl8139Fast",
    .tp_basicsize = sizeof(Rtl8139Fast),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Rtl8139Fast(rtl8139): the classic mode's register reads, and the writes that "
              "only store, in C, on the RTL8139 model's own attributes; `_v3_fastmmio` is its "
              "capsule (fastmmio.h)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Fast_init,
    .tp_dealloc = (destructor)Fast_dealloc,
    .tp_traverse = (traverseproc)Fast_traverse,
    .tp_clear = (inquiry)Fast_clear,
    .tp_methods = Fast_methods,
    .tp_getset = Fast_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rtl8139",
    "The RTL8139's classic-mode register fast path in C (vmm/devices/rtl8139.py).",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__rtl8139(void)
{
    PyObject *m;
    struct { PyObject **slot; const char *name; } names[] = {
        {&s_tsd, "tsd"}, {&s_tsad, "tsad"}, {&s_rbstart, "rbstart"}, {&s_tcr, "tcr"},
        {&s_rcr, "rcr"}, {&s_mpc, "mpc"}, {&s_isr, "isr"}, {&s_imr, "imr"},
        {&s_read_ptr, "read_ptr"}, {&s_cbr, "cbr"}, {&s_cr, "cr"}, {&s_fifo, "fifo"},
        {&s_irq, "irq"}, {&s_level, "level"}, {&s_cp, "cp"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (*names[i].slot == NULL)
            return NULL;
    }
    if (PyType_Ready(&Rtl8139FastType) < 0)
        return NULL;
    /* wiring, not state: a snapshot never saves it (vmm/debug/snapshot.py) */
    if (PyDict_SetItemString(Rtl8139FastType.tp_dict, "SNAPSHOT_WIRING", Py_True) < 0)
        return NULL;
    PyType_Modified(&Rtl8139FastType);
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&Rtl8139FastType);
    if (PyModule_AddObject(m, "Rtl8139Fast", (PyObject *)&Rtl8139FastType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
