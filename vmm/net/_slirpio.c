/* libslirp's per-frame glue in C (vmm/net/slirp.py uses it when it is built).
 *
 * `SlirpGlue` carries the frames between libslirp and a network card without Python calls
 * (vmm/net/framepath.h):
 * - towards the guest: its `send_packet` is libslirp's send_packet callback (SlirpBackend puts
 *   its address in SlirpCb and the glue object's address as slirp_new's opaque). A frame goes
 *   to the connected card's `_v3_frame_rx` receiver; a frame the receiver declines, or every
 *   frame when no receiver is connected, goes to the Python `deliver(frame)` (the Port).
 *   An exception (from the receiver or from `deliver`) is handed to `on_error(exc)`, which keeps
 *   it as the backend's pending error; libslirp is told the frame was sent, as the Python
 *   callback does.
 * - from the guest: `_v3_frame_tx` (the card's half) and `send(frame)` (the Python path) call
 *   slirp_input directly through its address, then `check()`, which raises the backend's
 *   pending error if there is one.
 *
 * libslirp calls send_packet from inside slirp_input (with the GIL held: the calls above hold
 * it) and from slirp_pollfds_poll and its timers, which ctypes calls without it: send_packet
 * therefore takes the GIL itself. libslirp is not thread-safe; everything runs on the run
 * loop's thread.
 *
 * `Recorder` is test support only (tests/vmm/net/test_slirpio.py): a card receiver in C that
 * keeps the frames it takes in a list, or declines them, or fails; and a card transmitter
 * that calls another object's `_v3_frame_tx`. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <sys/types.h>
#include "framepath.h"

typedef void (*slirp_input_fn)(void *slirp, const uint8_t *pkt, int pkt_len);

typedef struct {
    PyObject_HEAD
    PyObject *deliver;                  /* callable(frame): the Python path to the card */
    PyObject *check;                    /* callable(): raises the backend's pending error */
    PyObject *on_error;                 /* callable(exc): keeps exc as the pending error */
    PyObject *rx_owner;                 /* the card object whose `_v3_frame_rx` is used */
    PyObject *rx_capsule;
    struct v3_frame_rx *rx;             /* NULL: every frame goes to `deliver` */
    void *slirp;                        /* NULL: no Slirp open */
    slirp_input_fn input;
    struct v3_frame_tx tx;              /* `_v3_frame_tx` points here */
    unsigned long long rx_fast, rx_python, tx_fast, tx_python;
} Glue;

/* Hand the exception being raised to on_error (with its traceback), leaving none set. */
static void pass_error(Glue *g)
{
    PyObject *type, *value, *tb, *res;
    if (!PyErr_Occurred())              /* a receiver returned -1 without an exception */
        PyErr_SetString(PyExc_SystemError, "a frame receiver failed without an exception");
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL)
        return;
    res = g->on_error != NULL ? PyObject_CallOneArg(g->on_error, value) : NULL;
    if (res == NULL)                    /* on_error itself failed: nowhere left to go */
        PyErr_WriteUnraisable(g->on_error ? g->on_error : (PyObject *)g);
    Py_XDECREF(res);
    Py_DECREF(value);
}

/* libslirp's send_packet: a frame for the guest */
static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
    Glue *g = opaque;
    PyGILState_STATE gil = PyGILState_Ensure();
    int done = 0;
    Py_INCREF(g);
    if (g->rx != NULL) {
        /* the receiver may disconnect itself (a Python call inside): keep it alive */
        PyObject *owner = g->rx_owner, *capsule = g->rx_capsule;
        struct v3_frame_rx *rx = g->rx;
        Py_INCREF(owner);
        Py_INCREF(capsule);
        done = rx->receive(rx->opaque, buf, len);
        Py_DECREF(capsule);
        Py_DECREF(owner);
    }
    if (done == 1) {
        g->rx_fast++;
    } else if (done == 0) {
        PyObject *frame = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len), *res = NULL;
        g->rx_python++;
        if (frame != NULL && g->deliver != NULL)
            res = PyObject_CallOneArg(g->deliver, frame);
        else if (frame != NULL)
            res = Py_NewRef(Py_None);
        Py_XDECREF(frame);
        if (res == NULL)
            pass_error(g);
        Py_XDECREF(res);
    } else {
        pass_error(g);
    }
    Py_DECREF(g);
    PyGILState_Release(gil);
    return (ssize_t)len;
}

/* slirp_input, then check(): 1 sent, -1 with an exception set. The GIL is held. */
static int input(Glue *g, const uint8_t *frame, size_t len)
{
    PyObject *res;
    if (len > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "frame too long for slirp_input");
        return -1;
    }
    Py_INCREF(g);
    g->input(g->slirp, frame, (int)len);
    res = g->check != NULL ? PyObject_CallNoArgs(g->check) : Py_NewRef(Py_None);
    Py_DECREF(g);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 1;
}

/* the backend's half of framepath.h: a frame the card transmits */
static int tx_send(void *opaque, const uint8_t *frame, size_t len)
{
    Glue *g = opaque;
    if (g->slirp == NULL)
        return 0;
    g->tx_fast++;
    return input(g, frame, len);
}

/* -- SlirpGlue: Python interface ------------------------------------------------------------ */
static int check_callable(PyObject *o, const char *what)
{
    if (!PyCallable_Check(o)) {
        PyErr_Format(PyExc_TypeError, "SlirpGlue: %s must be callable", what);
        return 0;
    }
    return 1;
}

static int Glue_init(Glue *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"deliver", "check", "on_error", NULL};
    PyObject *deliver, *check, *on_error;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOO", names, &deliver, &check, &on_error))
        return -1;
    if (!check_callable(deliver, "deliver") || !check_callable(check, "check")
            || !check_callable(on_error, "on_error"))
        return -1;
    Py_XSETREF(self->deliver, Py_NewRef(deliver));
    Py_XSETREF(self->check, Py_NewRef(check));
    Py_XSETREF(self->on_error, Py_NewRef(on_error));
    self->tx.send = tx_send;
    self->tx.opaque = self;
    return 0;
}

static int Glue_traverse(Glue *self, visitproc visit, void *arg)
{
    Py_VISIT(self->deliver);
    Py_VISIT(self->check);
    Py_VISIT(self->on_error);
    Py_VISIT(self->rx_owner);
    Py_VISIT(self->rx_capsule);
    return 0;
}

static int Glue_clear(Glue *self)
{
    self->rx = NULL;
    Py_CLEAR(self->deliver);
    Py_CLEAR(self->check);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->rx_owner);
    Py_CLEAR(self->rx_capsule);
    return 0;
}

static void Glue_dealloc(Glue *self)
{
    PyObject_GC_UnTrack(self);
    Glue_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Glue_connect(Glue *self, PyObject *obj)
{
    PyObject *capsule;
    struct v3_frame_rx *rx;
    if (obj == Py_None) {
        self->rx = NULL;
        Py_CLEAR(self->rx_owner);
        Py_CLEAR(self->rx_capsule);
        Py_RETURN_NONE;
    }
    capsule = PyObject_GetAttrString(obj, "_v3_frame_rx");
    if (capsule == NULL)
        return NULL;
    rx = PyCapsule_GetPointer(capsule, FRAME_RX_CAPSULE);
    if (rx == NULL) {
        Py_DECREF(capsule);
        return NULL;
    }
    self->rx = rx;
    Py_XSETREF(self->rx_owner, Py_NewRef(obj));
    Py_XSETREF(self->rx_capsule, capsule);
    Py_RETURN_NONE;
}

static PyObject *Glue_set_slirp(Glue *self, PyObject *args)
{
    unsigned long long slirp, fn = 0;
    if (!PyArg_ParseTuple(args, "K|K", &slirp, &fn))
        return NULL;
    if (slirp != 0 && fn == 0) {
        PyErr_SetString(PyExc_ValueError, "set_slirp: an open Slirp needs slirp_input's address");
        return NULL;
    }
    self->slirp = (void *)(uintptr_t)slirp;
    self->input = slirp ? (slirp_input_fn)(uintptr_t)fn : NULL;
    Py_RETURN_NONE;
}

static PyObject *Glue_send(Glue *self, PyObject *arg)
{
    Py_buffer b;
    int rc;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    if (self->slirp == NULL) {
        PyBuffer_Release(&b);
        Py_RETURN_FALSE;
    }
    self->tx_python++;
    rc = input(self, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    if (rc < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static PyObject *Glue_entry_points(Glue *self, PyObject *unused)
{
    return Py_BuildValue("{sKsK}",
                         "send_packet", (unsigned long long)(uintptr_t)send_packet,
                         "opaque", (unsigned long long)(uintptr_t)self);
}

static PyObject *Glue_counts(Glue *self, PyObject *unused)
{
    return Py_BuildValue("{sKsKsKsK}", "rx_fast", self->rx_fast, "rx_python", self->rx_python,
                         "tx_fast", self->tx_fast, "tx_python", self->tx_python);
}

static PyObject *Glue_tx_capsule(Glue *self, void *closure)
{
    return PyCapsule_New(&self->tx, FRAME_TX_CAPSULE, NULL);
}

static PyObject *Glue_get_deliver(Glue *self, void *closure)
{
    return Py_NewRef(self->deliver ? self->deliver : Py_None);
}

static int Glue_set_deliver(Glue *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_TypeError, "SlirpGlue: deliver cannot be deleted");
        return -1;
    }
    if (!check_callable(value, "deliver"))
        return -1;
    Py_XSETREF(self->deliver, Py_NewRef(value));
    return 0;
}

static PyObject *Glue_get_receiver(Glue *self, void *closure)
{
    return Py_NewRef(self->rx_owner ? self->rx_owner : Py_None);
}

static PyObject *Glue_get_is_open(Glue *self, void *closure)
{
    return PyBool_FromLong(self->slirp != NULL);
}

static PyMethodDef Glue_methods[] = {
    {"connect", (PyCFunction)Glue_connect, METH_O,
     "connect(card or None): frames for the guest go to card's `_v3_frame_rx` first "
     "(None: all to deliver)"},
    {"set_slirp", (PyCFunction)Glue_set_slirp, METH_VARARGS,
     "set_slirp(slirp, slirp_input=0): the Slirp* from slirp_new and slirp_input's address; "
     "set_slirp(0) once slirp_cleanup ran"},
    {"send", (PyCFunction)Glue_send, METH_O,
     "send(frame) -> False when no Slirp is open, else slirp_input then check(): True"},
    {"entry_points", (PyCFunction)Glue_entry_points, METH_NOARGS,
     "entry_points() -> {'send_packet': the SlirpCb callback, 'opaque': slirp_new's opaque}"},
    {"counts", (PyCFunction)Glue_counts, METH_NOARGS,
     "counts() -> {'rx_fast', 'rx_python', 'tx_fast', 'tx_python'}: frames for the guest taken "
     "by the card in C / given to deliver; frames from the card's C path / from send()"},
    {NULL},
};

static PyGetSetDef Glue_getset[] = {
    {"_v3_frame_tx", (getter)Glue_tx_capsule, NULL,
     "the backend's half of vmm/net/framepath.h, for a card's C transmit path", NULL},
    {"deliver", (getter)Glue_get_deliver, (setter)Glue_set_deliver,
     "callable(frame): the Python path towards the card", NULL},
    {"receiver", (getter)Glue_get_receiver, NULL, "the connected card object, or None", NULL},
    {"is_open", (getter)Glue_get_is_open, NULL, "whether a Slirp is set", NULL},
    {NULL},
};

static PyTypeObject GlueType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.net._slirpio.SlirpGlue",
    .tp_basicsize = sizeof(Glue),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "SlirpGlue(deliver, check, on_error): libslirp's send_packet callback and "
              "slirp_input in C, joined to a card's C frame paths (vmm/net/framepath.h)",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Glue_init,
    .tp_dealloc = (destructor)Glue_dealloc,
    .tp_traverse = (traverseproc)Glue_traverse,
    .tp_clear = (inquiry)Glue_clear,
    .tp_methods = Glue_methods,
    .tp_getset = Glue_getset,
};

/* -- Recorder: test support ----------------------------------------------------------------- */
typedef struct {
    PyObject_HEAD
    PyObject *frames;                   /* list of the frames taken, as bytes */
    int answer;                         /* what receive returns: 1 take, 0 decline, -1 fail */
    struct v3_frame_rx rx;
} Recorder;

static int rec_receive(void *opaque, const uint8_t *frame, size_t len)
{
    Recorder *r = opaque;
    PyObject *b;
    if (r->answer == 0)
        return 0;
    if (r->answer < 0) {
        PyErr_SetString(PyExc_RuntimeError, "Recorder: told to fail");
        return -1;
    }
    b = PyBytes_FromStringAndSize((const char *)frame, (Py_ssize_t)len);
    if (b == NULL || PyList_Append(r->frames, b) < 0) {
        Py_XDECREF(b);
        return -1;
    }
    Py_DECREF(b);
    return 1;
}

static int Recorder_init(Recorder *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"answer", NULL};
    int answer = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|i", names, &answer))
        return -1;
    if (answer < -1 || answer > 1) {
        PyErr_SetString(PyExc_ValueError, "answer is 1 (take), 0 (decline) or -1 (fail)");
        return -1;
    }
    Py_XSETREF(self->frames, PyList_New(0));
    if (self->frames == NULL)
        return -1;
    self->answer = answer;
    self->rx.receive = rec_receive;
    self->rx.opaque = self;
    return 0;
}

static int Recorder_traverse(Recorder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->frames);
    return 0;
}

static int Recorder_clear(Recorder *self)
{
    Py_CLEAR(self->frames);
    return 0;
}

static void Recorder_dealloc(Recorder *self)
{
    PyObject_GC_UnTrack(self);
    Recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Recorder_rx_capsule(Recorder *self, void *closure)
{
    return PyCapsule_New(&self->rx, FRAME_RX_CAPSULE, NULL);
}

static PyObject *Recorder_get_frames(Recorder *self, void *closure)
{
    return Py_NewRef(self->frames);
}

static PyObject *Recorder_get_answer(Recorder *self, void *closure)
{
    return PyLong_FromLong(self->answer);
}

static int Recorder_set_answer(Recorder *self, PyObject *value, void *closure)
{
    long v = value ? PyLong_AsLong(value) : -2;
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < -1 || v > 1) {
        PyErr_SetString(PyExc_ValueError, "answer is 1 (take), 0 (decline) or -1 (fail)");
        return -1;
    }
    self->answer = (int)v;
    return 0;
}

/* send(holder, frame) -> what holder's `_v3_frame_tx` send returned (1 or 0); -1 raises */
static PyObject *Recorder_send(Recorder *self, PyObject *args)
{
    PyObject *holder, *capsule;
    Py_buffer b;
    struct v3_frame_tx *tx;
    int rc;
    if (!PyArg_ParseTuple(args, "Oy*", &holder, &b))
        return NULL;
    capsule = PyObject_GetAttrString(holder, "_v3_frame_tx");
    tx = capsule ? PyCapsule_GetPointer(capsule, FRAME_TX_CAPSULE) : NULL;
    if (tx == NULL) {
        Py_XDECREF(capsule);
        PyBuffer_Release(&b);
        return NULL;
    }
    Py_INCREF(holder);
    rc = tx->send(tx->opaque, b.buf, (size_t)b.len);
    Py_DECREF(holder);
    Py_DECREF(capsule);
    PyBuffer_Release(&b);
    if (rc < 0)
        return NULL;
    return PyLong_FromLong(rc);
}

static PyMethodDef Recorder_methods[] = {
    {"send", (PyCFunction)Recorder_send, METH_VARARGS,
     "send(holder, frame) -> 1 sent or 0 declined, through holder's `_v3_frame_tx` (-1 raises)"},
    {NULL},
};

static PyGetSetDef Recorder_getset[] = {
    {"_v3_frame_rx", (getter)Recorder_rx_capsule, NULL, "the card's half of framepath.h", NULL},
    {"frames", (getter)Recorder_get_frames, NULL, "the frames taken, as bytes", NULL},
    {"answer", (getter)Recorder_get_answer, (setter)Recorder_set_answer,
     "what the receiver returns: 1 take (append to frames), 0 decline, -1 fail (RuntimeError)",
     NULL},
    {NULL},
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vmm.net._slirpio.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Recorder(answer=1): test support, a card's frame paths in C "
              "(vmm/net/framepath.h) that record what they receive",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Recorder_init,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_traverse = (traverseproc)Recorder_traverse,
    .tp_clear = (inquiry)Recorder_clear,
    .tp_methods = Recorder_methods,
    .tp_getset = Recorder_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_slirpio",
    "libslirp's per-frame glue in C, joined to the cards' C frame paths (vmm/net/slirp.py).",
    -1, NULL,
};

static int add_type(PyObject *m, const char *name, PyTypeObject *type)
{
    if (PyType_Ready(type) < 0)
        return -1;
    Py_INCREF(type);
    if (PyModule_AddObject(m, name, (PyObject *)type) < 0) {
        Py_DECREF(type);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__slirpio(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (add_type(m, "SlirpGlue", &GlueType) < 0 || add_type(m, "Recorder", &RecorderType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
