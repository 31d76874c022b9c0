/* The contract between a network card's frame paths in C (for example vmm/devices/_rtl8139.c)
 * and a backend's in C (vmm/net/_slirpio.c, libslirp's glue): frames cross between them without
 * a Python call, in both directions.
 *
 * Each side exposes its half as a PyCapsule in an attribute of one of its objects:
 * - a card: `_v3_frame_rx`, named FRAME_RX_CAPSULE, a `struct v3_frame_rx`: the backend calls
 *   `receive` for each frame arriving from the host;
 * - a backend: `_v3_frame_tx`, named FRAME_TX_CAPSULE, a `struct v3_frame_tx`: the card calls
 *   `send` for each frame it transmits.
 * The object holding the capsule must stay alive while the other side uses it (the side that
 * takes a capsule keeps a reference to its object). vmm/net/__init__.py's Port joins the two
 * halves only when nothing else must see the frames (no packet capture); otherwise both sides
 * go through the Python path (Port.send, card.receive).
 *
 * Both are called with the GIL held. Return values:
 *    1  done: the frame was taken (stored, or dropped or filtered as the model would) or sent;
 *    0  declined, nothing changed: the caller hands the frame to the Python path instead
 *       (the card's `receive(frame)`, the port's `send(frame)`);
 *   -1  a Python exception is set (a fail-stop of the model, an error libslirp reported): the
 *       caller propagates it. */
#ifndef V3_FRAMEPATH_H
#define V3_FRAMEPATH_H
#include <stddef.h>
#include <stdint.h>

#define FRAME_RX_CAPSULE "v3.frame_rx"
#define FRAME_TX_CAPSULE "v3.frame_tx"

struct v3_frame_rx {
    int (*receive)(void *opaque, const uint8_t *frame, size_t len);
    void *opaque;
};

struct v3_frame_tx {
    int (*send)(void *opaque, const uint8_t *frame, size_t len);
    void *opaque;
};

#endif
