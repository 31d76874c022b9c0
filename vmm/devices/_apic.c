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
#include "modelattrs.h"

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
#define LOGICAL (1u << 11)

static PyObject *s_isr, *s_irr, *s_tmr, *s_tpr, *s_apic_id, *s_ldr, *s_dfr, *s_svr, *s_log,
    *s_on, *s_eoi_count, *s_ioapic, *s_extint_source, *s_lvt, *s_redir, *s_dest, *s_levels,
    *s_ioregsel, *s_lapic, *s_ctx, *s_stop_requested, *s_sources, *s_sent, *s_hw_disabled,
    *s_intc, *s_level, *s_taken;

/* -- helpers on the models' attributes ----------------------------------------------------- */
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

/* The processor priority (SDM vol. 3A 10.8.3.1): TPR, or the in-service vector's class if that
 * is higher. */
static uint64_t ppr(const uint32_t isr[8], uint64_t tpr)
{
    int s = highest(isr);
    if (s < 0)
        s = 0;
    return (tpr >> 4) >= (uint64_t)(s >> 4) ? (tpr & 0xFF) : (uint64_t)(s & 0xF0);
}

/* Whether the highest IRR vector's class is above the processor priority's. */
static int deliverable(const uint32_t irr[8], const uint32_t isr[8], uint64_t tpr)
{
    int v = highest(irr);
    return v >= 0 && (uint64_t)(v >> 4) > ppr(isr, tpr) >> 4;
}

/* LINT0 an unmasked ExtINT input with an 8259A behind it: the model asks the 8259A. -1: unknown */
static int extint_possible(PyObject *ld)
{
    PyObject *src = attr(ld, s_extint_source), *lvt, *key, *lint0;
    uint64_t l0;
    if (src == NULL)
        return -1;
    if (src == Py_None)
        return 0;
    lvt = attr(ld, s_lvt);
    if (lvt == NULL || !PyDict_Check(lvt))
        return -1;
    key = PyLong_FromLong(LVT_LINT0);
    if (key == NULL) {
        PyErr_Clear();
        return -1;
    }
    lint0 = PyDict_GetItemWithError(lvt, key);
    Py_DECREF(key);
    if (lint0 == NULL || !PyLong_Check(lint0)) {
        PyErr_Clear();
        return -1;
    }
    l0 = PyLong_AsUnsignedLongLongMask(lint0);
    return !(l0 & LVT_MASKED) && ((l0 >> 8) & 7) == DM_EXTINT;
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
    case 0x0A0:
        if (!get_u64(d, s_tpr, &tpr) || !get_bits(d, s_isr, w))
            return 0;
        *value = ppr(w, tpr);
        return 1;
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
    if (extint_possible(d) != 0)
        return 0;
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

/* Whether the LAPIC (instance dict `ld`) would accept a fixed message as the model does, with
 * nothing to log: software- and hardware-enabled, a legal vector, its debug log off. */
static int lapic_can_accept(PyObject *ld, int vector)
{
    uint64_t svr;
    PyObject *hw = attr(ld, s_hw_disabled);
    if (hw == NULL || PyObject_IsTrue(hw) != 0 || !get_u64(ld, s_svr, &svr) || !(svr & 0x100))
        return 0;
    return vector >= 16 && log_on(ld) == 0;
}

/* LocalAPIC.accept(vector, level, source=None) once lapic_can_accept() said yes: IRR (and TMR)
 * set, no ISA source. Returns 1 when the vector is now deliverable (the caller then asks the
 * board for the CPU's attention), 0 when not, -1 on an error (nothing changed). */
static int lapic_accept(PyObject *ld, int vector, int level)
{
    uint32_t irr[8], isr[8], tmr[8];
    uint64_t tpr;
    PyObject *nirr, *ntmr, *sources, *key;
    if (!get_bits(ld, s_irr, irr) || !get_bits(ld, s_isr, isr) || !get_bits(ld, s_tmr, tmr) ||
            !get_u64(ld, s_tpr, &tpr))
        return -1;
    sources = attr(ld, s_sources);
    if (sources == NULL || !PyDict_Check(sources))
        return -1;
    irr[vector / 32] |= 1u << (vector % 32);
    if (level)
        tmr[vector / 32] |= 1u << (vector % 32);
    else
        tmr[vector / 32] &= ~(1u << (vector % 32));
    nirr = bits_object(irr);
    ntmr = bits_object(tmr);
    key = PyLong_FromLong(vector);
    if (nirr == NULL || ntmr == NULL || key == NULL || PyDict_SetItem(ld, s_irr, nirr) < 0 ||
            PyDict_SetItem(ld, s_tmr, ntmr) < 0) {
        Py_XDECREF(nirr);
        Py_XDECREF(ntmr);
        Py_XDECREF(key);
        PyErr_Clear();
        return -1;
    }
    Py_DECREF(nirr);
    Py_DECREF(ntmr);
    if (PyDict_Contains(sources, key) == 1)
        PyDict_DelItem(sources, key);
    Py_DECREF(key);
    PyErr_Clear();
    return deliverable(irr, isr, tpr);
}

/* The board's "the CPU's attention, please" (ctx.stop_requested), as LocalAPIC.accept calls it
 * when a vector became deliverable. */
static int request_attention(PyObject *ld)
{
    PyObject *ctx = attr(ld, s_ctx), *fn, *res;
    if (ctx == NULL || ctx == Py_None)
        return 0;
    fn = PyObject_GetAttr(ctx, s_stop_requested);
    if (fn == NULL)
        return -1;
    if (fn == Py_None) {
        Py_DECREF(fn);
        return 0;
    }
    res = PyObject_CallNoArgs(fn);
    Py_DECREF(fn);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

/* -- IOAPIC ---------------------------------------------------------------------------------- */
/* IOAPIC._send(pin) for a PCI pin (16-23; the ISA pins carry ack listeners: the model's): a
 * fixed or lowest-priority message to the one LAPIC. `commit` 0 only says whether it can be done
 * here (1) or must be the model's (0); `commit` 1 does it and returns 1, or -1 when the board's
 * stop request failed (the message is delivered). */
static int ioapic_send(PyObject *iod, int pin, int commit)
{
    PyObject *redir = attr(iod, s_redir), *dest = attr(iod, s_dest), *sent = attr(iod, s_sent);
    PyObject *lapic = attr(iod, s_lapic), *ld, *n;
    uint64_t entry, d, lapic_id, ldr, dfr;
    int vector, level, match, rc = 0;
    if (pin < 16 || pin >= PINS || redir == NULL || dest == NULL || sent == NULL ||
            lapic == NULL || lapic == Py_None || !PyList_Check(redir) || !PyList_Check(dest) ||
            !PyList_Check(sent) || PyList_GET_SIZE(redir) != PINS ||
            PyList_GET_SIZE(dest) != PINS || PyList_GET_SIZE(sent) != PINS)
        return 0;
    entry = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(redir, pin));
    d = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(dest, pin)) >> 24;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (((entry >> 8) & 7) > 1)
        return 0;                              /* SMI, NMI, INIT, ExtINT: the model's fail-stop */
    vector = (int)(entry & 0xFF);
    level = (entry & LEVEL) != 0;
    ld = instance_dict(lapic);
    if (ld == NULL) {
        PyErr_Clear();
        return 0;
    }
    /* LocalAPIC.matches */
    if (!get_u64(ld, s_apic_id, &lapic_id) || !get_u64(ld, s_ldr, &ldr) ||
            !get_u64(ld, s_dfr, &dfr))
        goto out;
    d &= 0xFF;
    if (!(entry & LOGICAL))
        match = d == 0xFF || d == lapic_id;
    else if (d == 0xFF)
        match = 1;
    else if ((dfr >> 28) == 0xF)
        match = (d & (ldr >> 24)) != 0;
    else
        match = (d >> 4) == ((ldr >> 24) >> 4) && (d & (ldr >> 24) & 0xF) != 0;
    if (!match || !lapic_can_accept(ld, vector))
        goto out;                              /* dropped and logged, refused: the model's */
    if (!commit) {
        rc = 1;
        goto out;
    }
    {
        int now = lapic_accept(ld, vector, level);
        uint64_t count;
        if (now < 0)
            goto out;                          /* cannot happen after the checks above */
        count = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(sent, pin));
        n = PyLong_FromUnsignedLongLong(count + 1);
        if (n != NULL)
            PyList_SetItem(sent, pin, n);
        if (level) {
            n = PyLong_FromUnsignedLongLong(entry | REMOTE_IRR);
            if (n != NULL)
                PyList_SetItem(redir, pin, n);
        }
        PyErr_Clear();
        rc = 1;
        if (now && request_attention(ld) < 0)
            rc = -1;
    }
out:
    Py_DECREF(ld);
    return rc;
}

/* IOAPIC.set_pin(pin, level) when whatever it delivers can be sent here (a PCI pin's message;
 * an ISA pin only when it delivers nothing, masked or without a new edge). Returns 1 (done), 0
 * (declined, nothing changed) or -1 (done, the stop request raised). */
static int ioapic_set_pin(PyObject *iod, int pin, int level)
{
    PyObject *levels = attr(iod, s_levels), *redir = attr(iod, s_redir), *n;
    uint64_t entry;
    int was, send = 0;
    if (pin < 0 || pin >= PINS || levels == NULL || redir == NULL || !PyList_Check(levels) ||
            !PyList_Check(redir) || PyList_GET_SIZE(levels) != PINS ||
            PyList_GET_SIZE(redir) != PINS || log_on(iod) != 0)
        return 0;
    was = PyObject_IsTrue(PyList_GET_ITEM(levels, pin));
    entry = PyLong_AsUnsignedLongLongMask(PyList_GET_ITEM(redir, pin));
    if (was < 0 || PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (!(entry & MASKED)) {
        if (entry & LEVEL)
            send = level && !(entry & REMOTE_IRR);
        else
            send = level && !was;
    }
    if (send && !ioapic_send(iod, pin, 0))
        return 0;
    n = PyLong_FromLong(level);
    if (n == NULL) {
        PyErr_Clear();
        return 0;
    }
    PyList_SetItem(levels, pin, n);
    return send ? ioapic_send(iod, pin, 1) : 1;
}

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
    int pin, send = 0;
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
            if (asserted < 0) {
                PyErr_Clear();
                return 0;
            }
            send = asserted;                    /* unmasking an asserted pin delivers it */
        }
    }
    n = PyLong_FromUnsignedLongLong(new);
    if (n == NULL) {
        PyErr_Clear();
        return 0;
    }
    if (send) {
        /* whether it can be sent here is asked with the new entry in place */
        PyObject *keep = PyList_GET_ITEM(list, pin);
        Py_INCREF(keep);
        Py_INCREF(n);
        PyList_SetItem(list, pin, n);
        if (!ioapic_send(d, pin, 0)) {
            PyList_SetItem(list, pin, keep);   /* the model does it all */
            Py_DECREF(n);
            return 0;
        }
        Py_DECREF(keep);
        Py_DECREF(n);
        if (ioapic_send(d, pin, 1) < 0)
            PyErr_WriteUnraisable(f->model);
        return 1;
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

static PyObject *Fast_set_pin(Fast *self, PyObject *args)
{
    int pin, level, rc;
    if (!PyArg_ParseTuple(args, "ii", &pin, &level))
        return NULL;
    if (self->dict == NULL)
        Py_RETURN_FALSE;                        /* not initialised: the model does it */
    if (self->fp.read != ioapic_read) {
        PyErr_SetString(PyExc_TypeError, "set_pin is the IOAPIC's");
        return NULL;
    }
    rc = ioapic_set_pin(self->dict, pin, level ? 1 : 0);
    if (rc < 0)
        return NULL;                            /* the board's stop request raised */
    return PyBool_FromLong(rc);
}

static PyMethodDef Fast_methods[] = {
    {"set_pin", (PyCFunction)Fast_set_pin, METH_VARARGS,
     "set_pin(pin, level) -> True when done here (a PCI pin, whatever it delivers sent to the "
     "LAPIC), False when declined (nothing changed): IoapicFast only"},
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

/* -- the engine's acknowledge cycle (vmm/cpu/intr.py) ---------------------------------------- */
/* EngineInterrupts._ack for the common case: the LAPIC is the CPU's interrupt controller, its
 * highest IRR vector is above the processor priority and came from no ISA line (no ack
 * listener), and no 8259A can be asking through LINT0. The vector moves from IRR to ISR, is
 * counted through the CPU's `noted` (telemetry, interrupt log), and is returned. After it
 * nothing else can be deliverable (every other request is of a lower vector than the one now in
 * service), so INTR stays down. Anything else is the Python _ack's. */
typedef struct {
    PyObject_HEAD
    PyObject *eng, *eng_dict, *lapic, *ld, *ctx, *py_ack, *noted, *on_failure;
    unsigned long long done;             /* acknowledges done here */
} Ack;

static int ack_here(Ack *a)
{
    PyObject *ld = a->ld, *intc, *sources, *key, *nirr, *nisr, *res;
    uint32_t irr[8], isr[8];
    uint64_t tpr, taken;
    int v, has;
    intc = PyObject_GetAttr(a->ctx, s_intc);
    if (intc == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_DECREF(intc);
    if (intc != a->lapic || log_on(ld) != 0 || extint_possible(ld) != 0 ||
            !get_bits(ld, s_irr, irr) || !get_bits(ld, s_isr, isr) || !get_u64(ld, s_tpr, &tpr) ||
            !deliverable(irr, isr, tpr) || !get_u64(a->eng_dict, s_taken, &taken))
        return -1;
    v = highest(irr);
    sources = attr(ld, s_sources);
    if (sources == NULL || !PyDict_Check(sources))
        return -1;
    key = PyLong_FromLong(v);
    if (key == NULL) {
        PyErr_Clear();
        return -1;
    }
    has = PyDict_Contains(sources, key);
    Py_DECREF(key);
    if (has != 0) {
        PyErr_Clear();
        return -1;                              /* an ISA line's: its ack listeners run */
    }
    irr[v / 32] &= ~(1u << (v % 32));
    isr[v / 32] |= 1u << (v % 32);
    nirr = bits_object(irr);
    nisr = bits_object(isr);
    if (nirr == NULL || nisr == NULL) {
        Py_XDECREF(nirr);
        Py_XDECREF(nisr);
        PyErr_Clear();
        return -1;
    }
    /* commit: the engine dropped INTR before asking; the vector is in service */
    set_u64(a->eng_dict, s_level, 0);
    PyDict_SetItem(ld, s_irr, nirr);
    PyDict_SetItem(ld, s_isr, nisr);
    Py_DECREF(nirr);
    Py_DECREF(nisr);
    set_u64(a->eng_dict, s_taken, taken + 1);
    PyErr_Clear();
    if (a->noted != Py_None) {
        PyObject *vec = PyLong_FromLong(v);
        res = vec ? PyObject_CallOneArg(a->noted, vec) : NULL;
        Py_XDECREF(vec);
        if (res == NULL) {                      /* as _ack does: the run ends with it */
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb);
            PyErr_NormalizeException(&type, &value, &tb);
            if (value != NULL && tb != NULL)
                PyException_SetTraceback(value, tb);
            res = PyObject_CallOneArg(a->on_failure, value ? value : Py_None);
            Py_XDECREF(res);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            if (PyErr_Occurred())
                PyErr_WriteUnraisable(a->on_failure);
            return -2;
        }
        Py_DECREF(res);
    }
    return v;
}

static int engine_ack(void *opaque)
{
    Ack *a = opaque;
    PyGILState_STATE gil = PyGILState_Ensure();
    int v = ack_here(a);
    if (v >= 0 || v == -2)
        a->done++;
    if (v == -2) {
        v = -1;
    } else if (v < 0) {
        PyObject *res = PyObject_CallOneArg(a->py_ack, Py_None);
        if (res != NULL) {
            v = (int)PyLong_AsLong(res);
            Py_DECREF(res);
        }
        if (PyErr_Occurred()) {                 /* _ack catches everything: not expected */
            PyErr_WriteUnraisable(a->py_ack);
            v = -1;
        }
    }
    PyGILState_Release(gil);
    return v;
}

static int Ack_init(Ack *self, PyObject *args, PyObject *kw)
{
    PyObject *eng, *lapic, *ctx, *noted, *ed, *ld, *py_ack, *fail;
    if (!PyArg_ParseTuple(args, "OOOO", &eng, &lapic, &ctx, &noted))
        return -1;
    ed = instance_dict(eng);
    if (ed == NULL)
        return -1;
    ld = instance_dict(lapic);
    if (ld == NULL) {
        Py_DECREF(ed);
        return -1;
    }
    py_ack = PyObject_GetAttrString(eng, "_ack");
    fail = PyObject_GetAttrString(eng, "_on_failure");
    if (py_ack == NULL || fail == NULL) {
        Py_XDECREF(py_ack);
        Py_XDECREF(fail);
        Py_DECREF(ed);
        Py_DECREF(ld);
        return -1;
    }
    Py_INCREF(eng);
    Py_XSETREF(self->eng, eng);
    Py_XSETREF(self->eng_dict, ed);
    Py_INCREF(lapic);
    Py_XSETREF(self->lapic, lapic);
    Py_XSETREF(self->ld, ld);
    Py_INCREF(ctx);
    Py_XSETREF(self->ctx, ctx);
    Py_XSETREF(self->py_ack, py_ack);
    Py_INCREF(noted);
    Py_XSETREF(self->noted, noted);
    Py_XSETREF(self->on_failure, fail);
    return 0;
}

static int Ack_traverse(Ack *self, visitproc visit, void *arg)
{
    Py_VISIT(self->eng);
    Py_VISIT(self->eng_dict);
    Py_VISIT(self->lapic);
    Py_VISIT(self->ld);
    Py_VISIT(self->ctx);
    Py_VISIT(self->py_ack);
    Py_VISIT(self->noted);
    Py_VISIT(self->on_failure);
    return 0;
}

static int Ack_clear(Ack *self)
{
    Py_CLEAR(self->eng);
    Py_CLEAR(self->eng_dict);
    Py_CLEAR(self->lapic);
    Py_CLEAR(self->ld);
    Py_CLEAR(self->ctx);
    Py_CLEAR(self->py_ack);
    Py_CLEAR(self->noted);
    Py_CLEAR(self->on_failure);
    return 0;
}

static void Ack_dealloc(Ack *self)
{
    PyObject_GC_UnTrack(self);
    Ack_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Ack_entry_points(Ack *self, PyObject *unused)
{
    return Py_BuildValue("{sKsK}", "ack", (unsigned long long)(uintptr_t)engine_ack,
                         "opaque", (unsigned long long)(uintptr_t)self);
}

static PyObject *Ack_call(Ack *self, PyObject *unused)
{
    return PyLong_FromLong(engine_ack(self));
}

static PyMethodDef Ack_methods[] = {
    {"entry_points", (PyCFunction)Ack_entry_points, METH_NOARGS,
     "entry_points() -> {'ack': the C function for uc_x86_set_intr_ack, 'opaque': its data}"},
    {"ack", (PyCFunction)Ack_call, METH_NOARGS,
     "ack() -> the vector, or -1: the acknowledge cycle as the engine runs it (for the tests)"},
    {NULL},
};

static PyObject *Ack_get_done(Ack *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->done);
}

static PyGetSetDef Ack_getset[] = {
    {"done", (getter)Ack_get_done, NULL, "the acknowledges done in C", NULL},
    {NULL},
};

static PyTypeObject AckFastType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.devices._apic.AckFast",
    .tp_basicsize = sizeof(Ack),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "AckFast(engine_interrupts, lapic, ctx, noted): the engine's acknowledge cycle "
              "in C for a LAPIC vector, EngineInterrupts._ack for the rest",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Ack_init,
    .tp_dealloc = (destructor)Ack_dealloc,
    .tp_traverse = (traverseproc)Ack_traverse,
    .tp_clear = (inquiry)Ack_clear,
    .tp_methods = Ack_methods,
    .tp_getset = Ack_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_apic",
    "Register fast paths in C for the LAPIC and the IOAPIC (vmm/devices/lapic.py, ioapic.py).",
    -1, NULL,
};

PyMODINIT_FUNC PyInit__apic(void)
{
    PyObject *m;
    static const struct model_name names[] = {
        {&s_isr, "isr"}, {&s_irr, "irr"}, {&s_tmr, "tmr"}, {&s_tpr, "tpr"},
        {&s_apic_id, "apic_id"}, {&s_ldr, "ldr"}, {&s_dfr, "dfr"}, {&s_svr, "svr"},
        {&s_log, "log"}, {&s_on, "on"}, {&s_eoi_count, "eoi_count"}, {&s_ioapic, "ioapic"},
        {&s_extint_source, "extint_source"}, {&s_lvt, "lvt"}, {&s_redir, "redir"},
        {&s_dest, "dest"}, {&s_levels, "levels"}, {&s_ioregsel, "ioregsel"},
        {&s_lapic, "lapic"}, {&s_ctx, "ctx"}, {&s_stop_requested, "stop_requested"},
        {&s_sources, "_sources"}, {&s_sent, "sent"}, {&s_hw_disabled, "hw_disabled"},
        {&s_intc, "intc"}, {&s_level, "level"}, {&s_taken, "taken"},
    };
    if (intern_names(names, sizeof(names) / sizeof(names[0])) < 0)
        return NULL;
    if (PyType_Ready(&LapicFastType) < 0 || PyType_Ready(&IoapicFastType) < 0 ||
            PyType_Ready(&AckFastType) < 0)
        return NULL;
    /* wiring, not state: a snapshot never saves them (vmm/debug/snapshot.py) */
    if (PyDict_SetItemString(LapicFastType.tp_dict, "SNAPSHOT_WIRING", Py_True) < 0 ||
            PyDict_SetItemString(IoapicFastType.tp_dict, "SNAPSHOT_WIRING", Py_True) < 0 ||
            PyDict_SetItemString(AckFastType.tp_dict, "SNAPSHOT_WIRING", Py_True) < 0)
        return NULL;
    PyType_Modified(&LapicFastType);
    PyType_Modified(&IoapicFastType);
    PyType_Modified(&AckFastType);
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&LapicFastType);
    Py_INCREF(&IoapicFastType);
    Py_INCREF(&AckFastType);
    if (PyModule_AddObject(m, "LapicFast", (PyObject *)&LapicFastType) < 0 ||
            PyModule_AddObject(m, "IoapicFast", (PyObject *)&IoapicFastType) < 0 ||
            PyModule_AddObject(m, "AckFast", (PyObject *)&AckFastType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
