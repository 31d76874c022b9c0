/* What the devices' fast paths in C (vmm/devices/_apic.c, _rtl8139.c) share to work on their
 * Python models' own attributes: the model's instance dictionary is the device's one state, so
 * a fast path reads and writes its entries in place (with the GIL held).
 *
 * get/set return 1 when done and 0 when the attribute is missing or not an int (the fast path
 * then declines, with no Python exception left set). count_up adds one to an int in a dict the
 * model keeps (its `stats`). intern_names makes the attribute names, once, at module
 * initialisation. */
#ifndef V3_MODELATTRS_H
#define V3_MODELATTRS_H
#include <Python.h>
#include <stdint.h>

struct model_name {
    PyObject **slot;
    const char *name;
};

static inline int intern_names(const struct model_name *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *names[i].slot = PyUnicode_InternFromString(names[i].name);
        if (*names[i].slot == NULL)
            return -1;
    }
    return 0;
}

static inline PyObject *attr(PyObject *dict, PyObject *name)     /* borrowed; NULL: decline */
{
    PyObject *v = PyDict_GetItemWithError(dict, name);
    if (v == NULL)
        PyErr_Clear();
    return v;
}

static inline int get_u64(PyObject *dict, PyObject *name, uint64_t *out)
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

static inline int set_u64(PyObject *dict, PyObject *name, uint64_t value)
{
    PyObject *v = PyLong_FromUnsignedLongLong(value);
    int rc = v != NULL && PyDict_SetItem(dict, name, v) == 0;
    Py_XDECREF(v);
    if (!rc)
        PyErr_Clear();
    return rc;
}

/* dict[name][key] += 1 (a model's counters, such as stats["rx"]): 1, or 0 with no exception set */
static inline int count_up(PyObject *dict, PyObject *name, PyObject *key)
{
    PyObject *counters = attr(dict, name), *v, *n;
    long long value;
    int rc;
    if (counters == NULL || !PyDict_Check(counters) || (v = attr(counters, key)) == NULL ||
            !PyLong_Check(v))
        return 0;
    value = PyLong_AsLongLong(v);
    n = value == -1 && PyErr_Occurred() ? NULL : PyLong_FromLongLong(value + 1);
    rc = n != NULL && PyDict_SetItem(counters, key, n) == 0;
    Py_XDECREF(n);
    if (!rc)
        PyErr_Clear();
    return rc;
}

#endif
