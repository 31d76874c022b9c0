/* The contract between the MMIO dispatcher in C (vmm/cpu/_fastmmio.c) and a device's register
 * fast path in C (for example vmm/devices/_apic.c).
 *
 * A device object that has a fast path exposes it as a PyCapsule named FASTMMIO_CAPSULE in its
 * `_v3_fastmmio` attribute. The dispatcher calls `read`/`write` with the offset of the access
 * inside the device's range. They return 1 when they did the whole access (and, for `read`,
 * stored the value), or 0 to decline it without changing anything: the dispatcher then hands
 * the access to the Python device model, which does everything a fast path does not (interrupt
 * deliveries, logging, fail-stops). -1: the access was made but raised (a Python exception is
 * set, as when a model's handler raises): the dispatcher hands the exception to the machine's
 * fail-stop, as it does for the model's own. Unlike a port fast path (fastport.h), an MMIO fast path is
 * called WITH the GIL held: it may read and update the Python model's own attributes, which
 * stay the one state of the device. */
#ifndef V3_FASTMMIO_H
#define V3_FASTMMIO_H
#include <stdint.h>

#define FASTMMIO_CAPSULE "v3.fastmmio"

struct v3_fastmmio {
    int (*read)(void *opaque, uint64_t offset, unsigned size, uint64_t *value);
    int (*write)(void *opaque, uint64_t offset, unsigned size, uint64_t value);
    void *opaque;
};

#endif
