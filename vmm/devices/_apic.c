/* Register fast paths in C for the LAPIC and the IOAPIC (vmm/devices/lapic.py, ioapic.py),
 * behind the MMIO dispatcher (vmm/cpu/_fastmmio.c, contract vmm/cpu/fastmmio.h).
 *
 * Linux touches these registers several times for every device interrupt: the LAPIC's EOI and
 * its TMR, and, when an interrupt arrives inside a disable_irq() window, the IOAPIC's index and
 * data registers to mask and unmask the pin. Each was a Python call of a few microseconds.
 *
 * The fast paths work on the Python models' own attributes (their instance dictionaries; the
 * dispatcher holds the GIL): there is one state and one model. They do the plain register reads,
 * the LAPIC's EOI when it uncovers nothing (no other request in IRR, no ExtINT through LINT0, no
 * IOAPIC pin to deliver again), and the IOAPIC's index writes and redirection-entry writes that
 * deliver nothing. Everything else they decline, changing nothing, and the Python model does it
 * with its logging, its deliveries and its fail-stops: so also whenever the device's debug log
 * is on. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "fastmmio.h"

/* LAPIC (Intel SDM vol. 3A, 10.4-10.8) */
#define LAPIC_VERSION (0x14 | (5 << 16))  /* integrated xAPIC, 6 LVT entries */
#define LVT_LINT0 0x350
#define LVT_MASKED (1u << 16)
#define DM_EXTINT 7
/* IOAPIC (82093AA datasheet) */
#define PINS 24
#define IOAPIC_VERSION (0x11 | ((PINS - 1) << 16))
#define MASKED (1u << 16)
#define LEVEL (1u << 15)
#define REMOTE_IRR (1u << 14)
#define WRITABLE_LOW 0x1AFFFu

static PyObject *s_isr, *s_irr, *s_tmr, *s_tpr, *s_apic_id, *s_ldr, *s_dfr, *s_svr, *s_log,
    *s_on, *s_eoi_count, *s_ioapic, *s_extint_source, *s_lvt, *s_redir, *s_dest, *s_levels,
    *s_ioregsel;

/* -- helpers on the models' attributes ----------------------------------------------------- */
static PyObject *attr(PyObject *dict, PyObject *name)     /* borrowed; NULL: decline */
{
    PyObject *v = PyDict_GetItemWithError(dict, name);
    if (v == NULL)
        PyErr_Clear();
    return v;
}

static int get_u64(PyObject *dict, PyObject *name, uint64_t *out)
{
    PyObject *v = attr(dict, name);
    if (v == NULL || !PyLong_Check(v))
        return 0;
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
    return rc;
}

/* a 256-bit mask (IRR/ISR/TMR) as eight 32-bit words, least significant first */
static int get_bits(PyObject *dict, PyObject *name, uint32_t w[8])
{
    PyObject *v = attr(dict, name);
    int rc;
    if (v == NULL || !PyLong_Check(v))
        return 0;
#if PY_VERSION_HEX >= 0x030D0000
    rc = _PyLong_AsByteArray((PyLongObject *)v, (unsigned char *)w, 32, 1, 0, 1);
#else
    rc = _PyLong_AsByteArray((PyLongObject *)v, (unsigned char *)w, 32, 1, 0);
#endif
    if (rc < 0) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static PyObject *bits_object(const uint32_t w[8])
{
    return _PyLong_FromByteArray((const unsigned char *)w, 32, 1, 0);
}

static int highest(const uint32_t w[8])          /* the highest set bit, or -1 */
{
    for (int i = 7; i >= 0; i--)
        if (w[i])
            return 32 * i + 31 - __builtin_clz(w[i]);
    return -1;
}

static int empty(const uint32_t w[8])
{
    return highest(w) < 0;
}

static int log_on(PyObject *dict)                 /* the device's debug log; -1: decline */
{
    PyObject *log = attr(dict, s_log), *on;
    int rc;
    if (log == NULL)
        return -1;
    if (log == Py_None)
        return 0;
    on = PyObject_GetAttr(log, s_on);
    if (on == NULL) {
        PyErr_Clear();
        return -1;
    }
    rc = PyObject_IsTrue(on);
    Py_DECREF(on);
    if (rc < 0)
        PyErr_Clear();
    return rc;
}

static PyObject *instance_dict(PyObject *obj)
{
    PyObject *d = PyObject_GenericGetDict(obj, NULL);
    if (d != NULL && !PyDict_Check(d)) {
        Py_DECREF(d);
        PyErr_SetString(PyExc_TypeError, "the model's __dict__ is not a dict");
        return NULL;
    }
    return d;
}

/* -- the object type shared by both fast paths ---------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *model;                     /* the Python device */
    PyObject *dict;                      /* its instance dictionary */
    struct v3_fastmmio fp;
} Fast;

static int Fast_traverse(Fast *self, visitproc visit, void *arg)
{
    Py_VISIT(self->model);
    Py_VISIT(self->dict);
    return 0;
}

static int Fast_clear(Fast *self)
{
    Py_CLEAR(self->model);
    Py_CLEAR(self->dict);
    return 0;
}

static void Fast_dealloc(Fast *self)
{
    PyObject_GC_UnTrack(self);
    Fast_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- LAPIC ----------------------------------------------------------------------------------- */
static int lapic_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    Fast *f = opaque;
    PyObject *d = f->dict;
    uint64_t v, tpr;
    uint32_t w[8];
    if (d == NULL || size != 4 || (offset & 0xF) || offset >= 0x1000)
        return 0;
    switch (offset) {
    case 0x020:
        if (!get_u64(d, s_apic_id, &v))
            return 0;
        *value = (v << 24) & 0xFFFFFFFF;
        return 1;
    case 0x030:
        *value = LAPIC_VERSION;
        return 1;
    case 0x080:
        if (!get_u64(d, s_tpr, &v))
            return 0;
        *value = v & 0xFFFFFFFF;
        return 1;
    case 0x090: case 0x0B0: case 0x0C0:
        *value = 0;
        return 1;
    case 0x0A0: {                         /* PPR: the higher of TPR and the in-service class */
        int isrv;
        if (!get_u64(d, s_tpr, &tpr) || !get_bits(d, s_isr, w))
            return 0;
        isrv = highest(w);
        if (isrv < 0)
            isrv = 0;
        *value = (tpr >> 4) >= (uint64_t)(isrv >> 4) ? (tpr & 0xFF) : (uint64_t)(isrv & 0xF0);
        return 1;
    }
    case 0x0D0:
        if (!get_u64(d, s_ldr, &v))
            return 0;
        *value = v & 0xFFFFFFFF;
        return 1;
    case 0x0E0:
        if (!get_u64(d, s_dfr, &v))
            return 0;
        *value = v & 0xFFFFFFFF;
        return 1;
    case 0x0F0:
        if (!get_u64(d, s_svr, &v))
            return 0;
        *value = v & 0xFFFFFFFF;
        return 1;
    }
    if (offset >= 0x100 && offset < 0x280) {    /* ISR, TMR, IRR: eight words each */
        PyObject *which[3] = {s_isr, s_tmr, s_irr};
        if (!get_bits(d, which[(offset - 0x100) / 0x80], w))
            return 0;
        *value = w[((offset - 0x100) % 0x80) / 16];
        return 1;
    }
    return 0;
}

/* EOI: retire the highest in-service vector; for a level-triggered one (TMR) the IOAPIC clears
 * the remote IRR of the pins with that vector. Done here only when that uncovers nothing to
 * deliver: no request waits in IRR (one might now be above the priority), LINT0 is not an
 * unmasked ExtINT input (the 8259A could be asking), and no pin it clears is still asserted and
 * unmasked (the IOAPIC would send it again). */
static int lapic_eoi(Fast *f)
{
    PyObject *d = f->dict, *ioapic, *iod = NULL, *redir = NULL, *levels = NULL;
    uint32_t isr[8], irr[8], tmr[8];
    uint64_t count;
    int v, pins[PINS], npins = 0, ok = 0;
    if (log_on(d) != 0 || !get_u64(d, s_eoi_count, &count) || !get_bits(d, s_isr, isr))
        return 0;
    v = highest(isr);
    if (v < 0)
        return set_u64(d, s_eoi_count, count + 1);   /* nothing in service: only counted */
    if (!get_bits(d, s_irr, irr) || !empty(irr) || !get_bits(d, s_tmr, tmr))
        return 0;
    {
        PyObject *src = attr(d, s_extint_source), *lvt, *key, *lint0;
        uint64_t l0;
        if (src == NULL)
            return 0;
        if (src != Py_None) {
            lvt = attr(d, s_lvt);
            if (lvt == NULL || !PyDict_Check(lvt))
                return 0;
            key = PyLong_FromLong(LVT_LINT0);
            if (key == NULL) {
                PyErr_Clear();
                return 0;
            }
            lint0 = PyDict_GetItemWithError(lvt, key);
            Py_DECREF(key);
            if (lint0 == NULL || !PyLong_Check(lint0)) {
                PyErr_Clear();
                return 0;
            }
            l0 = PyLong_AsUnsignedLongLongMask(lint0);
            if (!(l0 & LVT_MASKED) && ((l0 >> 8) & 7) == DM_EXTINT)
                return 0;
        }
    }
    ioapic = attr(d, s_ioapic);
    if (ioapic == NULL)
        return 0;
    if ((tmr[v / 32] >> (v % 32)) & 1 && ioapic != Py_None) {
        uint32_t want = LEVEL | REMOTE_IRR | (uint32_t)v;
        iod = instance_dict(ioapic);
        if (iod == NULL) {
            PyErr_Clear();
            return 0;
        }
        redir = attr(iod, s_redir);
        levels = attr(iod, s_levels);
        if (redir == NULL || levels == NULL || !PyList_Check(redir) || !PyList_Check(levels) ||
                PyList_GET_SIZE(redir) != PINS || PyList_GET_SIZE(levels) != PINS)
            goto out;
        for (int pin = 0; pin < PINS; pin++) {
            uint64_t entry = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(redir, pin));
            if ((entry & (LEVEL | REMOTE_IRR | 0xFF)) != want)
                continue;
            int asserted = PyObject_IsTrue(PyList_GET_ITEM(levels, pin));
            if (asserted != 0 && !(entry & MASKED))
                goto out;                      /* delivered again: the model does it */
            pins[npins++] = pin;
        }
        if (PyErr_Occurred())
            goto out;
    }
    isr[v / 32] &= ~(1u << (v % 32));
    {
        PyObject *nisr = bits_object(isr);
        if (nisr == NULL)
            goto out;
        /* from here on nothing can decline: commit everything */
        PyDict_SetItem(d, s_isr, nisr);
        Py_DECREF(nisr);
    }
    set_u64(d, s_eoi_count, count + 1);
    for (int i = 0; i < npins; i++) {
        PyObject *item = PyList_GET_ITEM(redir, pins[i]);
        uint64_t entry = PyLong_AsUnsignedLongLongMask(item);
        PyObject *n = PyLong_FromUnsignedLongLong(entry & ~(uint64_t)REMOTE_IRR);
        if (n != NULL)
            PyList_SetItem(redir, pins[i], n);
    }
    ok = 1;
out:
    if (PyErr_Occurred())
        PyErr_Clear();
    Py_XDECREF(iod);
    return ok;
}

static int lapic_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    Fast *f = opaque;
    if (f->dict == NULL || size != 4 || offset != 0x0B0)
        return 0;
    return lapic_eoi(f);
}

/* -- IOAPIC ---------------------------------------------------------------------------------- */
static int ioapic_read(void *opaque, uint64_t offset, unsigned size, uint64_t *value)
{
    Fast *f = opaque;
    PyObject *d = f->dict, *list;
    uint64_t sel, v;
    if (d == NULL || size != 4 || !get_u64(d, s_ioregsel, &sel))
        return 0;
    if (offset == 0x00) {
        *value = sel & 0xFFFFFFFF;
        return 1;
    }
    if (offset != 0x10)
        return 0;
    if (sel == 0 || sel == 2) {                 /* ID; arbitration ID */
        if (!get_u64(d, s_apic_id, &v))
            return 0;
        *value = (v & 0xF) << 24;
        return 1;
    }
    if (sel == 1) {
        *value = IOAPIC_VERSION;
        return 1;
    }
    if (sel < 0x10 || sel >= 0x10 + 2 * PINS)
        return 0;
    list = attr(d, (sel & 1) ? s_dest : s_redir);
    if (list == NULL || !PyList_Check(list) || PyList_GET_SIZE(list) != PINS)
        return 0;
    v = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(list, (sel - 0x10) / 2));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *value = v & 0xFFFFFFFF;
    return 1;
}

static int ioapic_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
    Fast *f = opaque;
    PyObject *d = f->dict, *list, *levels, *n;
    uint64_t sel, old, new, mode;
    int pin;
    if (d == NULL || size != 4)
        return 0;
    value &= 0xFFFFFFFF;
    if (offset == 0x00)
        return set_u64(d, s_ioregsel, value & 0xFF);
    if (offset != 0x10 || log_on(d) != 0 || !get_u64(d, s_ioregsel, &sel))
        return 0;
    if (sel == 0)
        return set_u64(d, s_apic_id, (value >> 24) & 0xF);
    if (sel < 0x10 || sel >= 0x10 + 2 * PINS)
        return 0;                               /* read-only or absent: the model fail-stops */
    pin = (int)(sel - 0x10) / 2;
    list = attr(d, (sel & 1) ? s_dest : s_redir);
    levels = attr(d, s_levels);
    if (list == NULL || levels == NULL || !PyList_Check(list) || !PyList_Check(levels) ||
            PyList_GET_SIZE(list) != PINS || PyList_GET_SIZE(levels) != PINS)
        return 0;
    if (sel & 1) {
        new = value & 0xFF000000;
    } else {
        mode = (value >> 8) & 7;
        if (mode == 3 || mode == 6)
            return 0;                           /* reserved delivery mode */
        old = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(list, pin));
        if (PyErr_Occurred()) {
            PyErr_Clear();
            return 0;
        }
        new = (value & WRITABLE_LOW) | (old & REMOTE_IRR);
        if (!(new & LEVEL))
            new &= ~(uint64_t)REMOTE_IRR;       /* no remote IRR on an edge pin */
        if (!(new & MASKED) && (new & 0xFF) < 16 && mode <= 1)
            return 0;                           /* illegal vector */
        if ((old & MASKED) && !(new & MASKED) && (new & LEVEL) && !(new & REMOTE_IRR)) {
            int asserted = PyObject_IsTrue(PyList_GET_ITEM(levels, pin));
            if (asserted != 0) {
                PyErr_Clear();
                return 0;                       /* unmasking an asserted pin delivers it */
            }
        }
    }
    n = PyLong_FromUnsignedLongLong(new);
    if (n == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyList_SetItem(list, pin, n);
    return 1;
}

/* -- Python interface ------------------------------------------------------------------------ */
static int Fast_init_common(Fast *self, PyObject *args, int lapic)
{
    PyObject *model, *dict;
    if (!PyArg_ParseTuple(args, "O", &model))
        return -1;
    dict = instance_dict(model);
    if (dict == NULL)
        return -1;
    Py_INCREF(model);
    Py_XSETREF(self->model, model);
    Py_XSETREF(self->dict, dict);
    self->fp.read = lapic ? lapic_read : ioapic_read;
    self->fp.write = lapic ? lapic_write : ioapic_write;
    self->fp.opaque = self;
    return 0;
}

/* `_v3_fastmmio`: the capsule the MMIO dispatcher takes (it keeps this object alive while the
 * range is mapped) */
static PyObject *Fast_capsule(Fast *self, void *closure)
{
    return PyCapsule_New(&self->fp, FASTMMIO_CAPSULE, NULL);
}

static PyGetSetDef Fast_getset[] = {
    {"_v3_fastmmio", (getter)Fast_capsule, NULL, "the fast path for the MMIO dispatcher", NULL},
    {NULL},
};

static int Lapic_init(Fast *self, PyObject *args, PyObject *kw)
{
    return Fast_init_common(self, args, 1);
}

static int Ioapic_init(Fast *self, PyObject *args, PyObject *kw)
{
    return Fast_init_common(self, args, 0);
}

/* read(offset, size) -> value, or None when declined; write(offset, size, value) -> whether
 * it was done: the fast path alone, for the tests */
static PyObject *Fast_read(Fast *self, PyObject *args)
{
    unsigned long long offset, value = 0;
    unsigned size;
    if (!PyArg_ParseTuple(args, "KI", &offset, &size))
        return NULL;
    if (!self->fp.read(self, offset, size, (uint64_t *)&value))
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(value);
}

static PyObject *Fast_write(Fast *self, PyObject *args)
{
    unsigned long long offset, value;
    unsigned size;
    if (!PyArg_ParseTuple(args, "KIK", &offset, &size, &value))
        return NULL;
    return PyBool_FromLong(self->fp.write(self, offset, size, value));
}

static PyMethodDef Fast_methods[] = {
    {"read", (PyCFunction)Fast_read, METH_VARARGS,
     "read(offset, size) -> the value, or None when the fast path declines"},
    {"write", (PyCFunction)Fast_write, METH_VARARGS,
     "write(offset, size, value) -> True when the fast path did it, False when it declines"},
    {NULL},
};

#define FAST_TYPE(NAME, INIT, DOC)                                                        \
    static PyTypeObject NAME##Type = {                                                    \
        PyVarObject_HEAD_INIT(NULL, 0)                                                    \
        .tp_name = "vmm.devices._apic." #NAME,                                            \
        .tp_basicsize = sizeof(Fast),                                                     \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,                              \
        .tp_doc = DOC,                                                                    \
        .tp_new = PyType_GenericNew,                                                      \
        .tp_init = (initproc)INIT,                                                        \
        .tp_dealloc = (destructor)Fast_dealloc,                                           \
        .tp_traverse = (traverseproc)Fast_traverse,                                       \
        .tp_clear = (inquiry)Fast_clear,                                                  \
        .tp_methods = Fast_methods,                                                       \
        .tp_getset = Fast_getset,                                                         \
    }

FAST_TYPE(LapicFast, Lapic_init,
          "LapicFast(lapic): register reads and the EOI that uncovers nothing, in C, on the "
          "LocalAPIC model's own attributes; `_v3_fastmmio` is its capsule (fastmmio.h)");
FAST_TYPE(IoapicFast, Ioapic_init,
          "IoapicFast(ioapic): index and data register reads, index writes and redirection "
          "writes that deliver nothing, in C, on the IOAPIC model's own attributes");

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_apic",
    "Register fast paths in C for the LAPIC and the IOAPIC (vmm/devices/lapic.py, ioapic.py).",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__apic(void)
{
    PyObject *m;
    struct { PyObject **slot; const char *name; } names[] = {
        {&s_isr, "isr"}, {&s_irr, "irr"}, {&s_tmr, "tmr"}, {&s_tpr, "tpr"},
        {&s_apic_id, "apic_id"}, {&s_ldr, "ldr"}, {&s_dfr, "dfr"}, {&s_svr, "svr"},
        {&s_log, "log"}, {&s_on, "on"}, {&s_eoi_count, "eoi_count"}, {&s_ioapic, "ioapic"},
        {&s_extint_source, "extint_source"}, {&s_lvt, "lvt"}, {&s_redir, "redir"},
        {&s_dest, "dest"}, {&s_levels, "levels"}, {&s_ioregsel, "ioregsel"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (*names[i].slot == NULL)
            return NULL;
    }
    if (PyType_Ready(&LapicFastType) < 0 || PyType_Ready(&IoapicFastType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&LapicFastType);
    Py_INCREF(&IoapicFastType);
    if (PyModule_AddObject(m, "LapicFast", (PyObject *)&LapicFastType) < 0 ||
            PyModule_AddObject(m, "IoapicFast", (PyObject *)&IoapicFastType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
