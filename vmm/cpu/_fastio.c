/* The CPU's port I/O dispatcher in C (vmm/cpu/portio.py installs it when it is built).
 *
 * A port inside a range whose device has a register fast path in C (fastport.h) is tried there
 * first; every other access, and every access a fast path declines, goes to the Python
 * dispatcher (portio.py's on_in/on_out ctypes callbacks), exactly as without this module. On
 * the v3 engine (patch 9) the fast paths are the engine's port fast path, asked before the
 * hooks and before the engine syncs the guest PC for them, and the Python callbacks are the
 * hooks; on a stock engine this module's hook_in/hook_out are the hooks and call Python. Accesses done in C are counted per port and the last RING of
 * them are kept, for telemetry and the fail-stop diagnostic. With `enabled` false (the I/O log
 * is on, a debugger watches) everything goes to Python.
 *
 * The hooks run inside the engine's run, without the GIL; map/unmap run with it, between runs
 * (a BAR is moved by a configuration write, which is itself an exit to Python). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "fastport.h"

#define PORTS 0x10000
#define RING 32

typedef uint32_t (*py_in_fn)(void *uc, uint32_t port, int size, void *user);
typedef void (*py_out_fn)(void *uc, uint32_t port, int size, uint32_t value, void *user);

struct entry {
    struct v3_fastport *fp;
    uint32_t base;
};

struct access {
    uint64_t seq;
    uint32_t value;
    uint16_t port;
    uint8_t write;
    uint8_t size;
};

typedef struct {
    PyObject_HEAD
    py_in_fn py_in;
    py_out_fn py_out;
    int enabled;
    uint64_t seq;
    PyObject *owners;                   /* base -> the device object whose capsule is mapped */
    struct access ring[RING];
    uint32_t reads[PORTS];
    uint32_t writes[PORTS];
    struct entry table[PORTS];
} Dispatcher;

static void record(Dispatcher *d, int write, uint32_t port, int size, uint32_t value)
{
    struct access *a = &d->ring[d->seq % RING];
    a->seq = ++d->seq;
    a->port = (uint16_t)port;
    a->size = (uint8_t)size;
    a->write = (uint8_t)write;
    a->value = value;
}

/* The engine's port fast path (engine patch 9, uc_x86_set_port_fastpath): asked before the
 * hooks and before the engine syncs the guest PC for them; 0 leaves the access to the hooks,
 * which are then the Python ones. */
static int fast_in(void *user, uint32_t port, int size, uint32_t *value)
{
    Dispatcher *d = user;
    struct entry *e = &d->table[port & 0xFFFF];
    if (e->fp != NULL && d->enabled && e->fp->in(e->fp->opaque, port - e->base, size, value)) {
        d->reads[port & 0xFFFF]++;
        record(d, 0, port, size, *value);
        return 1;
    }
    return 0;
}

static int fast_out(void *user, uint32_t port, int size, uint32_t value)
{
    Dispatcher *d = user;
    struct entry *e = &d->table[port & 0xFFFF];
    if (e->fp != NULL && d->enabled && e->fp->out(e->fp->opaque, port - e->base, size, value)) {
        d->writes[port & 0xFFFF]++;
        record(d, 1, port, size, value);
        return 1;
    }
    return 0;
}

/* The same as the engine's one IN/OUT hook (a stock engine): the fast paths, then Python. */
static uint32_t hook_in(void *uc, uint32_t port, int size, void *user)
{
    Dispatcher *d = user;
    uint32_t value;
    if (fast_in(user, port, size, &value))
        return value;
    return d->py_in(uc, port, size, NULL);
}

static void hook_out(void *uc, uint32_t port, int size, uint32_t value, void *user)
{
    Dispatcher *d = user;
    if (fast_out(user, port, size, value))
        return;
    d->py_out(uc, port, size, value, NULL);
}

static int Dispatcher_init(Dispatcher *self, PyObject *args, PyObject *kw)
{
    unsigned long long in_addr, out_addr;
    static char *names[] = {"py_in", "py_out", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "KK", names, &in_addr, &out_addr))
        return -1;
    if (!in_addr || !out_addr) {
        PyErr_SetString(PyExc_ValueError, "the Python hooks' addresses must not be 0");
        return -1;
    }
    self->py_in = (py_in_fn)(uintptr_t)in_addr;
    self->py_out = (py_out_fn)(uintptr_t)out_addr;
    self->enabled = 1;
    Py_XSETREF(self->owners, PyDict_New());
    return self->owners ? 0 : -1;
}

static void Dispatcher_dealloc(Dispatcher *self)
{
    Py_XDECREF(self->owners);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check_range(unsigned long base, unsigned long length)
{
    if (length == 0 || base >= PORTS || length > PORTS - base) {
        PyErr_Format(PyExc_ValueError, "port range %#lx+%#lx is outside the port space",
                     base, length);
        return -1;
    }
    return 0;
}

static PyObject *Dispatcher_map(Dispatcher *self, PyObject *args)
{
    unsigned long base, length;
    PyObject *dev, *capsule, *key;
    struct v3_fastport *fp;
    if (!PyArg_ParseTuple(args, "kkO", &base, &length, &dev) || check_range(base, length) < 0)
        return NULL;
    capsule = PyObject_GetAttrString(dev, "_v3_fastport");
    if (capsule == NULL)
        return NULL;
    fp = PyCapsule_GetPointer(capsule, FASTPORT_CAPSULE);
    Py_DECREF(capsule);
    if (fp == NULL)
        return NULL;
    for (unsigned long p = base; p < base + length; p++) {
        if (self->table[p].fp != NULL) {
            PyErr_Format(PyExc_ValueError, "port %#lx already has a fast path", p);
            return NULL;
        }
    }
    key = PyLong_FromUnsignedLong(base);
    if (key == NULL || PyDict_SetItem(self->owners, key, dev) < 0) {
        Py_XDECREF(key);
        return NULL;
    }
    Py_DECREF(key);
    for (unsigned long p = base; p < base + length; p++) {
        self->table[p].fp = fp;
        self->table[p].base = (uint32_t)base;
    }
    Py_RETURN_NONE;
}

static PyObject *Dispatcher_unmap(Dispatcher *self, PyObject *args)
{
    unsigned long base, length;
    PyObject *key;
    if (!PyArg_ParseTuple(args, "kk", &base, &length) || check_range(base, length) < 0)
        return NULL;
    for (unsigned long p = base; p < base + length; p++)
        self->table[p].fp = NULL;
    key = PyLong_FromUnsignedLong(base);
    if (key == NULL)
        return NULL;
    if (PyDict_DelItem(self->owners, key) < 0)
        PyErr_Clear();
    Py_DECREF(key);
    Py_RETURN_NONE;
}

static PyObject *Dispatcher_entry_points(Dispatcher *self, PyObject *unused)
{
    return Py_BuildValue("{s(KK)s(KK)sK}",
                         "hooks", (unsigned long long)(uintptr_t)hook_in,
                         (unsigned long long)(uintptr_t)hook_out,
                         "fastpath", (unsigned long long)(uintptr_t)fast_in,
                         (unsigned long long)(uintptr_t)fast_out,
                         "user", (unsigned long long)(uintptr_t)self);
}

static PyObject *Dispatcher_counts(Dispatcher *self, PyObject *unused)
{
    PyObject *out = PyDict_New();
    if (out == NULL)
        return NULL;
    for (long p = 0; p < PORTS; p++) {
        if (self->reads[p] || self->writes[p]) {
            PyObject *k = PyLong_FromLong(p);
            PyObject *v = Py_BuildValue("kk", (unsigned long)self->reads[p],
                                        (unsigned long)self->writes[p]);
            if (k == NULL || v == NULL || PyDict_SetItem(out, k, v) < 0) {
                Py_XDECREF(k);
                Py_XDECREF(v);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(k);
            Py_DECREF(v);
        }
    }
    return out;
}

static PyObject *Dispatcher_total(Dispatcher *self, PyObject *unused)
{
    unsigned long long n = 0;
    for (long p = 0; p < PORTS; p++)
        n += self->reads[p] + (unsigned long long)self->writes[p];
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *Dispatcher_recent(Dispatcher *self, PyObject *unused)
{
    uint64_t first = self->seq > RING ? self->seq - RING + 1 : 1;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (uint64_t s = first; s <= self->seq; s++) {
        struct access *a = &self->ring[(s - 1) % RING];
        PyObject *t = Py_BuildValue("(sIiI)", a->write ? "out" : "in", (unsigned)a->port,
                                    (int)a->size, (unsigned)a->value);
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
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
     "map(base, length, device): ports base..base+length-1 try device's fast path first"},
    {"unmap", (PyCFunction)Dispatcher_unmap, METH_VARARGS,
     "unmap(base, length): those ports go to Python only"},
    {"entry_points", (PyCFunction)Dispatcher_entry_points, METH_NOARGS,
     "entry_points() -> {'hooks': (IN, OUT) for uc_hook_add, 'fastpath': (in, out) for the "
     "engine's uc_x86_set_port_fastpath, 'user': the user data / opaque address of both}"},
    {"counts", (PyCFunction)Dispatcher_counts, METH_NOARGS,
     "counts() -> {port: (reads, writes)} of the accesses done in C"},
    {"total", (PyCFunction)Dispatcher_total, METH_NOARGS,
     "total() -> the number of accesses done in C"},
    {"recent", (PyCFunction)Dispatcher_recent, METH_NOARGS,
     "recent() -> the last accesses done in C, oldest first: (\"in\"|\"out\", port, size, value)"},
    {NULL},
};

static PyGetSetDef Dispatcher_getset[] = {
    {"enabled", (getter)Dispatcher_get_enabled, (setter)Dispatcher_set_enabled,
     "False: every access goes to Python", NULL},
    {NULL},
};

static PyTypeObject DispatcherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.cpu._fastio.Dispatcher",
    .tp_basicsize = sizeof(Dispatcher),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Dispatcher(py_in, py_out): the engine's IN/OUT hooks in C, with per-port fast "
              "paths and the Python hooks (addresses of ctypes callbacks) for the rest",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Dispatcher_init,
    .tp_dealloc = (destructor)Dispatcher_dealloc,
    .tp_methods = Dispatcher_methods,
    .tp_getset = Dispatcher_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastio",
    "The CPU's port I/O dispatcher in C, with device fast paths (vmm/cpu/portio.py).", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastio(void)
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
    if (PyModule_AddIntConstant(m, "RING", RING) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
