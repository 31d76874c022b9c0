/* The MMIO window's dispatcher in C (vmm/memory.py installs it when it is built).
 *
 * Unicorn calls `mmio_read`/`mmio_write` for every access to the MMIO window (everything above
 * RAM below 4 GiB that is not firmware). An access inside a range whose device has a register
 * fast path in C (fastmmio.h) is tried there first; every other access, and every access a
 * fast path declines, goes to the Python dispatcher (MemoryMap._read/_write), exactly as without
 * this module but without the ctypes callback layer in between. Accesses done in C are counted
 * per range, for telemetry. With `enabled` false (a fail-stop is under way) everything goes to
 * Python.
 *
 * The callbacks run inside the engine's run, which the binding entered without the GIL: they
 * take it for the fast paths (which work on the Python models' own attributes) and for Python.
 * map/unmap run with it, between runs (a BAR moves through a configuration write, itself an
 * exit to Python). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "fastmmio.h"

#define MAX_RANGES 16

struct range {
    uint64_t base, end;
    struct v3_fastmmio *fp;
    PyObject *owner;                    /* the device object whose capsule this is */
    uint64_t reads, writes;
};

typedef struct {
    PyObject_HEAD
    PyObject *py_read;                  /* MemoryMap._read(handle, offset, size, key) */
    PyObject *py_write;                 /* MemoryMap._write(handle, offset, size, value, key) */
    PyObject *py_fail;                  /* MemoryMap._fail(exc): a fast path's access raised */
    uint64_t window;                    /* guest-physical address of offset 0 */
    int enabled;
    int n;
    struct range ranges[MAX_RANGES];
} Dispatcher;

static struct range *find(Dispatcher *d, uint64_t addr)
{
    for (int i = 0; i < d->n; i++)
        if (addr >= d->ranges[i].base && addr < d->ranges[i].end)
            return &d->ranges[i];
    return NULL;
}

/* A fast path returned -1: its exception goes to the machine's fail-stop. */
static void failed(Dispatcher *d)
{
    PyObject *type, *value, *tb, *res = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && d->py_fail != NULL)
        res = PyObject_CallOneArg(d->py_fail, value);
    else if (value != NULL)
        PyErr_SetString(PyExc_RuntimeError, "a fast path raised and no py_fail was given");
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    if (res == NULL)
        PyErr_WriteUnraisable(d->py_fail ? d->py_fail : Py_None);
    Py_XDECREF(res);
}

static uint64_t ones(unsigned size)
{
    return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

static uint64_t mmio_read(void *uc, uint64_t offset, unsigned size, void *user)
{
    Dispatcher *d = user;
    uint64_t value = ones(size);
    PyGILState_STATE gil = PyGILState_Ensure();
    struct range *r = d->enabled ? find(d, d->window + offset) : NULL;
    int rc = r != NULL ? r->fp->read(r->fp->opaque, d->window + offset - r->base, size, &value) : 0;
    if (rc > 0) {
        r->reads++;
    } else if (rc < 0) {
        failed(d);
        value = ones(size);
    } else {
        PyObject *args[4] = {Py_None, NULL, NULL, Py_None};
        PyObject *res = NULL;
        args[1] = PyLong_FromUnsignedLongLong(offset);
        args[2] = PyLong_FromUnsignedLong(size);
        if (args[1] != NULL && args[2] != NULL)
            res = PyObject_Vectorcall(d->py_read, args, 4, NULL);
        Py_XDECREF(args[1]);
        Py_XDECREF(args[2]);
        if (res != NULL) {
            value = PyLong_AsUnsignedLongLongMask(res) & ones(size);
            Py_DECREF(res);
        }
        if (PyErr_Occurred()) {        /* MemoryMap catches the devices' errors: not expected */
            PyErr_WriteUnraisable(d->py_read);
            value = ones(size);
        }
    }
    PyGILState_Release(gil);
    return value;
}

static void mmio_write(void *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
    Dispatcher *d = user;
    PyGILState_STATE gil = PyGILState_Ensure();
    struct range *r = d->enabled ? find(d, d->window + offset) : NULL;
    int rc = r != NULL ? r->fp->write(r->fp->opaque, d->window + offset - r->base, size, value) : 0;
    if (rc > 0) {
        r->writes++;
    } else if (rc < 0) {
        r->writes++;
        failed(d);
    } else {
        PyObject *args[5] = {Py_None, NULL, NULL, NULL, Py_None};
        PyObject *res = NULL;
        args[1] = PyLong_FromUnsignedLongLong(offset);
        args[2] = PyLong_FromUnsignedLong(size);
        args[3] = PyLong_FromUnsignedLongLong(value);
        if (args[1] != NULL && args[2] != NULL && args[3] != NULL)
            res = PyObject_Vectorcall(d->py_write, args, 5, NULL);
        Py_XDECREF(args[1]);
        Py_XDECREF(args[2]);
        Py_XDECREF(args[3]);
        Py_XDECREF(res);
        if (PyErr_Occurred())
            PyErr_WriteUnraisable(d->py_write);
    }
    PyGILState_Release(gil);
}

static int Dispatcher_init(Dispatcher *self, PyObject *args, PyObject *kw)
{
    PyObject *rd, *wr, *fail = NULL;
    unsigned long long window;
    static char *names[] = {"py_read", "py_write", "window", "py_fail", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOK|O", names, &rd, &wr, &window, &fail))
        return -1;
    if (fail == Py_None)
        fail = NULL;
    Py_XINCREF(fail);
    Py_XSETREF(self->py_fail, fail);
    if (!PyCallable_Check(rd) || !PyCallable_Check(wr)) {
        PyErr_SetString(PyExc_TypeError, "py_read and py_write must be callable");
        return -1;
    }
    Py_INCREF(rd);
    Py_XSETREF(self->py_read, rd);
    Py_INCREF(wr);
    Py_XSETREF(self->py_write, wr);
    self->window = window;
    self->enabled = 1;
    return 0;
}

static int Dispatcher_traverse(Dispatcher *self, visitproc visit, void *arg)
{
    Py_VISIT(self->py_read);
    Py_VISIT(self->py_write);
    Py_VISIT(self->py_fail);
    for (int i = 0; i < self->n; i++)
        Py_VISIT(self->ranges[i].owner);
    return 0;
}

static int Dispatcher_clear(Dispatcher *self)
{
    Py_CLEAR(self->py_read);
    Py_CLEAR(self->py_write);
    Py_CLEAR(self->py_fail);
    for (int i = 0; i < self->n; i++)
        Py_CLEAR(self->ranges[i].owner);
    self->n = 0;
    return 0;
}

static void Dispatcher_dealloc(Dispatcher *self)
{
    PyObject_GC_UnTrack(self);
    Dispatcher_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Dispatcher_map(Dispatcher *self, PyObject *args)
{
    unsigned long long base, length;
    PyObject *dev, *capsule;
    struct v3_fastmmio *fp;
    if (!PyArg_ParseTuple(args, "KKO", &base, &length, &dev))
        return NULL;
    if (length == 0 || ((base ^ (base + length - 1)) & ~0xFFFULL)) {
        /* counts are reported per 4 KiB page, as the Python side counts */
        PyErr_Format(PyExc_ValueError, "MMIO fast path %#llx+%#llx must lie inside one page",
                     base, length);
        return NULL;
    }
    if (self->n == MAX_RANGES) {
        PyErr_SetString(PyExc_ValueError, "too many MMIO fast paths");
        return NULL;
    }
    for (int i = 0; i < self->n; i++) {
        if (base < self->ranges[i].end && self->ranges[i].base < base + length) {
            PyErr_Format(PyExc_ValueError, "MMIO %#llx+%#llx already has a fast path",
                         base, length);
            return NULL;
        }
    }
    capsule = PyObject_GetAttrString(dev, "_v3_fastmmio");
    if (capsule == NULL)
        return NULL;
    fp = PyCapsule_GetPointer(capsule, FASTMMIO_CAPSULE);
    Py_DECREF(capsule);
    if (fp == NULL)
        return NULL;
    Py_INCREF(dev);
    self->ranges[self->n++] = (struct range){base, base + length, fp, dev, 0, 0};
    Py_RETURN_NONE;
}

static PyObject *Dispatcher_unmap(Dispatcher *self, PyObject *args)
{
    unsigned long long base, length;
    if (!PyArg_ParseTuple(args, "KK", &base, &length))
        return NULL;
    for (int i = 0; i < self->n; i++) {
        if (self->ranges[i].base == base && self->ranges[i].end == base + length) {
            Py_CLEAR(self->ranges[i].owner);
            self->ranges[i] = self->ranges[--self->n];
            break;
        }
    }
    Py_RETURN_NONE;
}

static PyObject *Dispatcher_entry_points(Dispatcher *self, PyObject *unused)
{
    return Py_BuildValue("{sKsKsK}",
                         "read", (unsigned long long)(uintptr_t)mmio_read,
                         "write", (unsigned long long)(uintptr_t)mmio_write,
                         "user", (unsigned long long)(uintptr_t)self);
}

static PyObject *Dispatcher_counts(Dispatcher *self, PyObject *unused)
{
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (int i = 0; i < self->n; i++) {
        struct range *r = &self->ranges[i];
        if (!r->reads && !r->writes)
            continue;
        PyObject *k = PyLong_FromUnsignedLongLong(r->base & ~0xFFFULL);
        PyObject *v = Py_BuildValue("KK", (unsigned long long)r->reads,
                                    (unsigned long long)r->writes);
        if (k == NULL || v == NULL || PyDict_SetItem(out, k, v) < 0) {
            Py_XDECREF(k);
            Py_XDECREF(v);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(k);
        Py_DECREF(v);
    }
    return out;
}

static PyObject *Dispatcher_get_enabled(Dispatcher *self, void *closure)
{
    return PyBool_FromLong(self->enabled);
}

static int Dispatcher_set_enabled(Dispatcher *self, PyObject *value, void *closure)
{
    int on = value ? PyObject_IsTrue(value) : 0;
    if (on < 0)
        return -1;
    self->enabled = on;
    return 0;
}

static PyMethodDef Dispatcher_methods[] = {
    {"map", (PyCFunction)Dispatcher_map, METH_VARARGS,
     "map(base, length, device): accesses to base..base+length-1 (inside one page) try "
     "device's fast path first"},
    {"unmap", (PyCFunction)Dispatcher_unmap, METH_VARARGS,
     "unmap(base, length): that range goes to Python only"},
    {"entry_points", (PyCFunction)Dispatcher_entry_points, METH_NOARGS,
     "entry_points() -> {'read', 'write': the uc_mmio_map callbacks, 'user': their user data}"},
    {"counts", (PyCFunction)Dispatcher_counts, METH_NOARGS,
     "counts() -> {page: (reads, writes)} of the accesses done in C"},
    {NULL},
};

static PyGetSetDef Dispatcher_getset[] = {
    {"enabled", (getter)Dispatcher_get_enabled, (setter)Dispatcher_set_enabled,
     "False: every access goes to Python", NULL},
    {NULL},
};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.cpu._fastmmio.Dispatcher",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Dispatcher(py_read, py_write, window): the MMIO window's callbacks in C, with "
              "device fast paths and the Python dispatcher for the rest",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Dispatcher_init,
    .tp_dealloc = (destructor)Dispatcher_dealloc,
    .tp_traverse = (traverseproc)Dispatcher_traverse,
    .tp_clear = (inquiry)Dispatcher_clear,
    .tp_methods = Dispatcher_methods,
    .tp_getset = Dispatcher_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastmmio",
    "The MMIO window's dispatcher in C, with device fast paths (vmm/memory.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastmmio(void)
{
    PyObject *m;
    if (PyType_Ready(&DispatcherType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DispatcherType);
    if (PyModule_AddObject(m, "Dispatcher", (PyObject *)&DispatcherType) < 0) {
        Py_DECREF(&DispatcherType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
