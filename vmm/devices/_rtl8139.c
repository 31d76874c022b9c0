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
 * declines, changing nothing, and the model does it (line changes, the FIFO's drain, the
 * EEPROM, the PHY, fail-stops). The C+ mode has its own register handlers and no fast path.
 *
 * The frame paths (vmm/net/framepath.h), once the model has given guest memory
 * (`set_memory`): a TSD write transmits here (the buffer read from guest RAM, the frame handed
 * to the backend's C half, or to the Python port when there is none), and a frame from the
 * backend's C half that the model would store in the receive ring at once is stored here
 * (ring writes go through the engine's uc_mem_write, which drops code translated from the
 * range). A frame that is filtered, dropped, waits in the FIFO or is multicast goes to the
 * model's receive; an interrupt line that must change is the model's _update_irq. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "fastmmio.h"
#include "modelattrs.h"
#include "framepath.h"
#include "wordsum.h"

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
#define CR_TE 0x04
#define CR_BUFE 0x01
#define ISR_MASK 0xE07F
#define ISR_ROK 0x01
#define ISR_TOK 0x04
#define TSD_OWN 0x2000
#define TSD_TOK 0x8000
#define TSD_SIZE 0x1FFF
#define TSD_WRITABLE 0x003F1FFF
#define MAX_TX 1792
#define MAX_RX 1514
#define RCR_AAP 0x01
#define RCR_APM 0x02
#define RCR_AB 0x08
#define RCR_WRAP 0x80
#define RX_ROK 0x0001
#define RX_BAR 0x2000
#define RX_PAM 0x4000
#define RX_SPARE (16 + 2048)
/* C+ receive (vmm/devices/rtl8139_cplus.py) */
#define CP_RX_ON 0x02
#define CP_RX_CHKSUM 0x20
#define CP_RX_VLAN 0x40
#define MAX_PACKET 4096
#define DESC_OWN (1u << 31)
#define DESC_RING_END (1u << 30)
#define DESC_FIRST (1u << 29)
#define DESC_LAST (1u << 28)
#define RX_LEN_MASK 0x1FFF
#define CP_RX_BAR (1u << 24)
#define CP_RX_PAM (1u << 25)
#define RX_PROTO_TCP (1u << 16)
#define RX_PROTO_UDP (2u << 16)
#define RX_PROTO_IP (3u << 16)
#define RX_IP_FAIL (1u << 15)
#define RX_UDP_FAIL (1u << 14)
#define RX_TCP_FAIL (1u << 13)

static PyObject *s_tsd, *s_tsad, *s_rbstart, *s_tcr, *s_rcr, *s_mpc, *s_isr, *s_imr,
    *s_read_ptr, *s_cbr, *s_cr, *s_fifo, *s_irq, *s_level, *s_cp, *s_idr, *s_stats, *s_tx,
    *s_rx, *s_port, *s_send, *s_update_irq, *s_cpcmd, *s_rx_ring, *s_rx_index;

/* -- the model's attributes (modelattrs.h for single values) ---------------------------- */
/* item n of the list attribute `name` (TSD, TSAD) */
static int get_item(PyObject *dict, PyObject *name, Py_ssize_t n, uint64_t *out)
{
    PyObject *list = attr(dict, name), *v;
    if (list == NULL || !PyList_Check(list) || PyList_GET_SIZE(list) != 4)
        return 0;
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
    PyObject *list = attr(dict, name), *v;
    if (list == NULL || !PyList_Check(list) || PyList_GET_SIZE(list) != 4)
        return 0;
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
    PyObject *irq = attr(dict, s_irq), *v;
    long level;
    if (irq == NULL)
        return -1;
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
    return attr(dict, s_cp) == Py_None;
}

/* How many frames wait in the card's FIFO for room in the ring, or -1 when unknown. */
static Py_ssize_t fifo_len(PyObject *dict)
{
    PyObject *fifo = attr(dict, s_fifo);
    Py_ssize_t n = fifo != NULL ? PyObject_Length(fifo) : -1;
    if (n < 0)
        PyErr_Clear();
    return n;
}

static uint64_t ring_len(uint64_t rcr)      /* the classic receive ring's length (RCR.RBLEN) */
{
    return 8192u << ((rcr >> 11) & 3);
}

/* -- the object ------------------------------------------------------------------------------ */
typedef int (*mem_write_fn)(void *uc, uint64_t address, const void *bytes, uint64_t size);

typedef struct {
    PyObject_HEAD
    PyObject *model;                     /* the Python device */
    PyObject *dict;                      /* its instance dictionary */
    struct v3_fastmmio fp;
    unsigned long long done;             /* accesses done here */
    /* guest memory for the frame paths (set_memory) */
    Py_buffer ram;                       /* RAM, read in place (and written, without write_fn) */
    int have_ram;
    uint64_t mem_limit;                  /* the guest's memory size (ctx.memory_size) */
    mem_write_fn write_fn;               /* the engine's uc_mem_write, or NULL */
    void *uc;
    /* the backend's C half (connect), and ours */
    PyObject *tx_owner;
    struct v3_frame_tx *tx;
    struct v3_frame_rx rx;
    unsigned long long frames_sent, frames_stored;
} Rtl8139Fast;

static int regs_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    PyObject *d = ((Rtl8139Fast *)opaque)->dict;
    uint64_t v;
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
            *value = v | (cbr == rp % ring_len(rcr) ? CR_BUFE : 0);
            return 1;
        }
        }
    }
    return 0;
}


/* -- the frame paths ---------------------------------------------------------------------- */
/* The model's _update_irq when ISR & IMR no longer gives the line's level: 1, or -1 with the
 * exception (a stop request that raised) set. */
static int follow_line(Rtl8139Fast *self)
{
    PyObject *d = self->dict, *res;
    uint64_t isr, imr;
    if (get_u64(d, s_isr, &isr) && get_u64(d, s_imr, &imr) && same_level(d, isr, imr))
        return 1;
    res = PyObject_CallMethodNoArgs(self->model, s_update_irq);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 1;
}

static int ram_write(Rtl8139Fast *self, uint64_t addr, const uint8_t *data, size_t n)
{
    if (self->write_fn != NULL)
        return self->write_fn(self->uc, addr, data, n) == 0;
    memcpy((uint8_t *)self->ram.buf + addr, data, n);
    return 1;
}

/* The Ethernet FCS (CRC-32, IEEE 802.3, reflected), as zlib.crc32 computes it. */
static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_fcs(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* A TSD write while the transmitter is on (the model's _transmit): 1 done, 0 declined (nothing
 * changed), -1 exception set (the backend reported an error: the frame went out, TOK is not
 * raised, as when the model's port.send raises). */
static int transmit(Rtl8139Fast *self, unsigned n, uint64_t value)
{
    PyObject *d = self->dict, *port;
    uint64_t cr, addr, size = value & TSD_SIZE;
    int rc;
    if (!self->have_ram || !get_u64(d, s_cr, &cr) || !(cr & CR_TE) || size > MAX_TX ||
            !get_item(d, s_tsad, n, &addr) || addr + size > self->mem_limit ||
            addr + size > (uint64_t)self->ram.len)
        return 0;                     /* the model: OWN stays clear, or a fail-stop */
    port = attr(d, s_port);
    if (port == NULL)
        return 0;
    if (!set_item(d, s_tsd, n, (value & TSD_WRITABLE) | TSD_OWN | TSD_TOK) ||
            !count_up(d, s_stats, s_tx)) {
        PyErr_Clear();
        return 0;
    }
    {
        const uint8_t *frame = (const uint8_t *)self->ram.buf + addr;
        rc = 0;
        if (port != Py_None) {
            Py_INCREF(port);
            if (self->tx != NULL)
                rc = self->tx->send(self->tx->opaque, frame, size);
            if (rc == 0) {                /* no C half, or it declined: the Python port */
                PyObject *bytes = PyBytes_FromStringAndSize((const char *)frame, size), *res;
                res = bytes ? PyObject_CallMethodOneArg(port, s_send, bytes) : NULL;
                Py_XDECREF(bytes);
                rc = res != NULL ? 1 : -1;
                Py_XDECREF(res);
            }
            Py_DECREF(port);
            if (rc < 0)
                return -1;
        }
    }
    self->frames_sent++;
    /* the reply libslirp may have given inside send went through receive: read ISR afresh */
    {
        uint64_t isr;
        if (!get_u64(d, s_isr, &isr) || !set_u64(d, s_isr, isr | ISR_TOK)) {
            PyErr_SetString(PyExc_RuntimeError, "RTL8139 fast path: ISR is not an int");
            return -1;
        }
    }
    return follow_line(self);
}

/* C+ receive checksum status bits of a received frame (offload.rx_checksum_status): the
 * protocol of an IPv4 packet and whether its IP header and TCP/UDP checksums are right. Sums
 * are compared modulo 0xFFFF, which is what a ones'-complement sum of 0xFFFF means. */
static uint32_t rx_checksum_bits(const uint8_t *f, size_t n)
{
    size_t off = 14, ihl, total, l4, length;
    unsigned ethertype, proto;
    int ip_ok;
    uint64_t sum;
    if (n < 14 + 20)
        return 0;
    ethertype = f[12] << 8 | f[13];
    if (ethertype == 0x8100) {
        ethertype = f[16] << 8 | f[17];
        off += 4;
    }
    if (ethertype != 0x0800 || f[off] >> 4 != 4)
        return 0;
    ihl = (f[off] & 0x0F) * 4;
    total = f[off + 2] << 8 | f[off + 3];
    if (ihl < 20 || total < ihl || off + total > n)
        return 0;
    proto = f[off + 9];
    ip_ok = word_sum(f + off, ihl) % 0xFFFF == 0;
    if ((f[off + 6] & 0x3F) || f[off + 7] || (proto != 6 && proto != 17))
        return RX_PROTO_IP | (ip_ok ? 0 : RX_IP_FAIL);
    l4 = off + ihl;
    length = total - ihl;
    if (proto == 17 && length >= 8 && f[l4 + 6] == 0 && f[l4 + 7] == 0)
        return RX_PROTO_UDP | (ip_ok ? 0 : RX_IP_FAIL);
    sum = word_sum(f + off + 12, 8) + proto + length + word_sum(f + l4, length);
    if (proto == 6)
        return RX_PROTO_TCP | (ip_ok ? 0 : RX_IP_FAIL) | (sum % 0xFFFF ? RX_TCP_FAIL : 0);
    return RX_PROTO_UDP | (ip_ok ? 0 : RX_IP_FAIL) | (sum % 0xFFFF ? RX_UDP_FAIL : 0);
}

static uint32_t get32(const uint8_t *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (v >> (8 * i)) & 0xFF;
}

/* The classic ring (the model's _store): `rec` holds the padded frame at rec + 4, `n` bytes,
 * and room for the header and the FCS. */
static int store_classic(Rtl8139Fast *self, uint8_t *rec, size_t n, uint64_t kind, uint64_t rcr)
{
    PyObject *d = self->dict;
    uint64_t cbr, rp, rbstart, ring, length, need, free, isr, end;
    if (!get_u64(d, s_cbr, &cbr) || !get_u64(d, s_read_ptr, &rp) ||
            !get_u64(d, s_rbstart, &rbstart))
        return 0;
    ring = ring_len(rcr);
    length = n + 4;
    need = (length + 4 + 3) & ~3ull;
    if (cbr >= ring)
        return 0;
    free = (rp + ring - cbr) % ring;
    if (free == 0)
        free = ring;
    if (need >= free)
        return 0;                                  /* the model queues it in the FIFO */
    end = rbstart + ring + ((rcr & RCR_WRAP) ? RX_SPARE : 0);
    if (end > self->mem_limit || end > (uint64_t)self->ram.len)
        return 0;                                  /* the model's fail-stop */
    rec[0] = (RX_ROK | kind) & 0xFF;
    rec[1] = (RX_ROK | kind) >> 8;
    rec[2] = length & 0xFF;
    rec[3] = length >> 8;
    put32(rec + 4 + n, crc32_fcs(rec + 4, n));
    if ((rcr & RCR_WRAP) || cbr + n + 8 <= ring) {
        if (!ram_write(self, rbstart + cbr, rec, n + 8))
            return 0;
    } else {
        size_t first = ring - cbr;
        if (!ram_write(self, rbstart + cbr, rec, first) ||
                !ram_write(self, rbstart, rec + first, n + 8 - first))
            return 0;
    }
    if (!set_u64(d, s_cbr, (cbr + need) % ring) || !count_up(d, s_stats, s_rx) ||
            !get_u64(d, s_isr, &isr) || !set_u64(d, s_isr, isr | ISR_ROK)) {
        PyErr_SetString(PyExc_RuntimeError, "RTL8139 fast path: the model's state is not ints");
        return -1;
    }
    self->frames_stored++;
    return follow_line(self);
}

/* C+ receive into the next RX descriptor when it is the card's and its buffer holds the frame
 * (CPlusMode._store's common case); a VLAN tag to strip, a long packet or a frame that needs
 * several descriptors is the model's. */
static int store_cplus(Rtl8139Fast *self, PyObject *cp, uint8_t *frame, size_t n, uint64_t kind)
{
    PyObject *d = self->dict, *cd = PyObject_GenericGetDict(cp, NULL);
    uint64_t cpcmd, ring, i, addr, buf, isr;
    uint32_t status, opts1;
    size_t len = n + 4;
    int rc = 0;
    uint8_t desc[8];
    if (cd == NULL || !PyDict_Check(cd)) {
        PyErr_Clear();
        Py_XDECREF(cd);
        return 0;
    }
    if (!get_u64(cd, s_cpcmd, &cpcmd) || !(cpcmd & CP_RX_ON) || n > MAX_PACKET ||
            ((cpcmd & CP_RX_VLAN) && frame[12] == 0x81 && frame[13] == 0x00) ||
            !get_u64(cd, s_rx_ring, &ring) || !get_u64(cd, s_rx_index, &i))
        goto out;
    addr = ring + 16 * i;
    if (addr + 16 > self->mem_limit || addr + 16 > (uint64_t)self->ram.len)
        goto out;
    opts1 = get32((const uint8_t *)self->ram.buf + addr);
    buf = get32((const uint8_t *)self->ram.buf + addr + 8) |
          (uint64_t)get32((const uint8_t *)self->ram.buf + addr + 12) << 32;
    if (!(opts1 & DESC_OWN) || (opts1 & RX_LEN_MASK) < len || buf + len > self->mem_limit ||
            buf + len > (uint64_t)self->ram.len)
        goto out;
    status = DESC_FIRST | (kind == RX_BAR ? CP_RX_BAR : kind == RX_PAM ? CP_RX_PAM : 0);
    if (cpcmd & CP_RX_CHKSUM)
        status |= rx_checksum_bits(frame, n);
    put32(frame + n, crc32_fcs(frame, n));
    put32(desc, (opts1 & DESC_RING_END) | status | DESC_LAST | (uint32_t)len);
    put32(desc + 4, 0);
    if (!ram_write(self, buf, frame, len) || !ram_write(self, addr, desc, 8))
        goto out;
    if (!set_u64(cd, s_rx_index, (opts1 & DESC_RING_END) ? 0 : i + 1) ||
            !count_up(d, s_stats, s_rx) || !get_u64(d, s_isr, &isr) || !set_u64(d, s_isr, isr | ISR_ROK)) {
        PyErr_SetString(PyExc_RuntimeError, "RTL8139 fast path: the model's state is not ints");
        rc = -1;
        goto out;
    }
    self->frames_stored++;
    rc = follow_line(self);
out:
    Py_DECREF(cd);
    return rc;
}

/* A frame from the backend's C half (the model's receive): stored here when the model would
 * store it at once (receiver on, nothing waiting in the FIFO, a broadcast or a frame for our
 * MAC that the RCR accepts, or any frame in promiscuous mode, room in the ring or the next
 * descriptor); everything else is declined to the model (filtered frames, multicast, drops,
 * the FIFO, fail-stops). */
static int rx_receive(void *opaque, const uint8_t *frame, size_t len)
{
    Rtl8139Fast *self = opaque;
    PyObject *d = self->dict, *idr, *cp;
    uint64_t cr, rcr, kind;
    uint8_t rec[4 + MAX_PACKET + 4];
    size_t n = len < 60 ? 60 : len;
    if (d == NULL || !self->have_ram || len > MAX_PACKET || len < 6)
        return 0;
    cp = attr(d, s_cp);
    if (cp == NULL)
        return 0;
    if (cp == Py_None && len > MAX_RX)
        return 0;
    if (!get_u64(d, s_cr, &cr) || !(cr & CR_RE) || !get_u64(d, s_rcr, &rcr))
        return 0;
    if (fifo_len(d) != 0)
        return 0;                                  /* the model queues it behind those */
    /* the receive filter (the model's _accepts), multicast left to the model */
    if (memcmp(frame, "\xff\xff\xff\xff\xff\xff", 6) == 0) {
        if (!(rcr & (RCR_AB | RCR_AAP)))
            return 0;
        kind = RX_BAR;
    } else if (frame[0] & 1) {
        return 0;
    } else {
        idr = attr(d, s_idr);
        if (idr == NULL || !PyByteArray_Check(idr) || PyByteArray_GET_SIZE(idr) < 6)
            return 0;
        if (memcmp(frame, PyByteArray_AS_STRING(idr), 6) == 0) {
            if (!(rcr & (RCR_APM | RCR_AAP)))
                return 0;
            kind = RX_PAM;
        } else {
            if (!(rcr & RCR_AAP))
                return 0;
            kind = 0;
        }
    }
    memcpy(rec + 4, frame, len);
    memset(rec + 4 + len, 0, n - len);             /* padded to 60 bytes, as the model does */
    if (cp == Py_None)
        return store_classic(self, rec, n, kind, rcr);
    return store_cplus(self, cp, rec + 4, n, kind);
}

static int regs_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    PyObject *d = ((Rtl8139Fast *)opaque)->dict;
    uint64_t isr, imr, cr;
    if (d == NULL || !is_classic(d))
        return 0;
    if (size == 4) {
        if (off >= TSD0 && off < TSD0 + 16 && !(off & 3))
            return transmit((Rtl8139Fast *)opaque, (off - TSD0) >> 2, value & 0xFFFFFFFF);
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
        Py_ssize_t waiting = fifo_len(d);
        if (waiting < 0 || !get_u64(d, s_cr, &cr) || (waiting && (cr & CR_RE)))
            return 0;
        return set_u64(d, s_read_ptr, (value + 16) & 0xFFFF);
    }
    }
    return 0;
}

static int rtl_read(void *opaque, uint64_t off, unsigned size, uint64_t *value)
{
    int done = regs_read(opaque, off, size, value);
    if (done > 0)
        ((Rtl8139Fast *)opaque)->done++;
    return done;
}

static int rtl_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
    int done = regs_write(opaque, off, size, value);
    if (done > 0)
        ((Rtl8139Fast *)opaque)->done++;
    return done;
}

/* -- Python interface ------------------------------------------------------------------------ */
static int Fast_traverse(Rtl8139Fast *self, visitproc visit, void *arg)
{
    Py_VISIT(self->model);
    Py_VISIT(self->dict);
    Py_VISIT(self->tx_owner);
    if (self->have_ram)
        Py_VISIT(self->ram.obj);
    return 0;
}

static void release_ram(Rtl8139Fast *self)
{
    if (self->have_ram) {
        self->have_ram = 0;
        PyBuffer_Release(&self->ram);
    }
}

static int Fast_clear(Rtl8139Fast *self)
{
    Py_CLEAR(self->model);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->tx_owner);
    self->tx = NULL;
    release_ram(self);
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
    self->rx.receive = rx_receive;
    self->rx.opaque = self;
    return 0;
}

/* set_memory(ram, limit, write_fn=0, uc=0): guest RAM as a writable buffer from physical address
 * 0, the guest's memory size, and the engine's uc_mem_write with its handle (writes then go
 * through it, so that code translated from a written range is dropped); set_memory(None) turns
 * the frame paths off. */
static PyObject *Fast_set_memory(Rtl8139Fast *self, PyObject *args)
{
    PyObject *ram;
    unsigned long long limit = 0, write_fn = 0, uc = 0;
    if (!PyArg_ParseTuple(args, "O|KKK", &ram, &limit, &write_fn, &uc))
        return NULL;
    release_ram(self);
    self->write_fn = NULL;
    self->uc = NULL;
    if (ram != Py_None) {
        if (PyObject_GetBuffer(ram, &self->ram, PyBUF_WRITABLE) < 0)
            return NULL;
        self->have_ram = 1;
        self->mem_limit = limit;
        self->write_fn = (mem_write_fn)(uintptr_t)write_fn;
        self->uc = (void *)(uintptr_t)uc;
    }
    Py_RETURN_NONE;
}

/* connect(obj): the backend's C half, `obj._v3_frame_tx` (framepath.h); None: the Python port */
static PyObject *Fast_connect(Rtl8139Fast *self, PyObject *obj)
{
    struct v3_frame_tx *tx = NULL;
    if (obj != Py_None) {
        PyObject *cap = PyObject_GetAttrString(obj, "_v3_frame_tx");
        if (cap == NULL)
            return NULL;
        tx = PyCapsule_GetPointer(cap, FRAME_TX_CAPSULE);
        Py_DECREF(cap);
        if (tx == NULL)
            return NULL;
        Py_INCREF(obj);
    }
    Py_XSETREF(self->tx_owner, obj == Py_None ? NULL : obj);
    self->tx = tx;
    Py_RETURN_NONE;
}

/* receive(frame) -> 1 stored, 0 declined (nothing changed): the rx half alone, for the tests */
static PyObject *Fast_receive(Rtl8139Fast *self, PyObject *arg)
{
    Py_buffer b;
    int rc;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    rc = rx_receive(self, b.buf, b.len);
    PyBuffer_Release(&b);
    if (rc < 0)
        return NULL;
    return PyLong_FromLong(rc);
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
    int rc;
    if (!PyArg_ParseTuple(args, "KIK", &offset, &size, &value))
        return NULL;
    rc = rtl_write(self, offset, size, value);
    if (rc < 0)
        return NULL;                            /* what the access raised */
    return PyBool_FromLong(rc);
}

static PyObject *Fast_done(Rtl8139Fast *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->done);
}

static PyObject *Fast_frames_sent(Rtl8139Fast *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->frames_sent);
}

static PyObject *Fast_frames_stored(Rtl8139Fast *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->frames_stored);
}

static PyObject *Fast_rx_capsule(Rtl8139Fast *self, void *closure)
{
    return PyCapsule_New(&self->rx, FRAME_RX_CAPSULE, NULL);
}

static PyGetSetDef Fast_getset[] = {
    {"_v3_fastmmio", (getter)Fast_capsule, NULL, "the fast path for the MMIO dispatcher", NULL},
    {"done", (getter)Fast_done, NULL, "how many accesses the fast path did", NULL},
    {"frames_sent", (getter)Fast_frames_sent, NULL, "frames transmitted here", NULL},
    {"frames_stored", (getter)Fast_frames_stored, NULL, "frames received into the ring here", NULL},
    {"_v3_frame_rx", (getter)Fast_rx_capsule, NULL, "the card's receive half (framepath.h)", NULL},
    {NULL},
};

static PyMethodDef Fast_methods[] = {
    {"set_memory", (PyCFunction)Fast_set_memory, METH_VARARGS,
     "set_memory(ram, limit, write_fn=0, uc=0): guest RAM for the frame paths (None: off)"},
    {"connect", (PyCFunction)Fast_connect, METH_O,
     "connect(obj): the backend's C half (obj._v3_frame_tx), or None for the Python port"},
    {"receive", (PyCFunction)Fast_receive, METH_O,
     "receive(frame) -> 1 when stored here, 0 when declined (the model's receive then)"},
    {"read", (PyCFunction)Fast_read, METH_VARARGS,
     "read(offset, size) -> the value, or None when the fast path declines"},
    {"write", (PyCFunction)Fast_write, METH_VARARGS,
     "write(offset, size, value) -> True when the fast path did it, False when it declines; "
     "raises what the access raised"},
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
    static const struct model_name names[] = {
        {&s_tsd, "tsd"}, {&s_tsad, "tsad"}, {&s_rbstart, "rbstart"}, {&s_tcr, "tcr"},
        {&s_rcr, "rcr"}, {&s_mpc, "mpc"}, {&s_isr, "isr"}, {&s_imr, "imr"},
        {&s_read_ptr, "read_ptr"}, {&s_cbr, "cbr"}, {&s_cr, "cr"}, {&s_fifo, "fifo"},
        {&s_irq, "irq"}, {&s_level, "level"}, {&s_cp, "cp"}, {&s_idr, "idr"},
        {&s_stats, "stats"}, {&s_tx, "tx"}, {&s_rx, "rx"}, {&s_port, "port"}, {&s_send, "send"},
        {&s_update_irq, "_update_irq"}, {&s_cpcmd, "cpcmd"}, {&s_rx_ring, "rx_ring"},
        {&s_rx_index, "rx_index"},
    };
    if (intern_names(names, sizeof(names) / sizeof(names[0])) < 0)
        return NULL;
    if (PyType_Ready(&Rtl8139FastType) < 0)
        return NULL;
    crc_init();
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
