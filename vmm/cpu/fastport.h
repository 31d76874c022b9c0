/* The contract between the port dispatcher in C (vmm/cpu/_fastio.c) and a device's register
 * fast path in C (for example vmm/devices/_ne2000.c).
 *
 * A device object that has a fast path exposes it as a PyCapsule named FASTPORT_CAPSULE in its
 * `_v3_fastport` attribute. The dispatcher calls `in`/`out` with the offset of the port inside
 * the device's range. They return 1 when they did the whole access (and, for `in`, stored the
 * value), or 0 to decline it without changing anything: the dispatcher then hands the access to
 * the Python device model, which does everything a fast path does not (interrupt line changes,
 * transmits, resets, fail-stops). The fast path runs inside the engine's run, without the GIL,
 * and touches only the device's own buffers. */
#ifndef V3_FASTPORT_H
#define V3_FASTPORT_H
#include <stdint.h>

#define FASTPORT_CAPSULE "v3.fastport"

struct v3_fastport {
    int (*in)(void *opaque, unsigned offset, int size, uint32_t *value);
    int (*out)(void *opaque, unsigned offset, int size, uint32_t value);
    void *opaque;
};

#endif
