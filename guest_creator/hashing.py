"""The v1 per-file hash (Palacios' v3_hash_buffer with a 64-bit unsigned long).

Per byte at absolute position i: h = (h << 4) + byte + i; t = h & 0xF0000000; if t,
h ^= t >> 24; h &= ~t. Carries past bit 31 survive (wrapping at 64 bits), so big files can
hash above 2**32 (data/big.bin of the vectors: 0x100000cf2795).

`update(state, pos, data)` continues a hash over a chunk whose first byte is at file position
`pos`; the compiled helper `guest_creator._v3hash` does it in C, the pure-Python `update_py`
gives identical results (slowly) when no compiler was available at install time.
"""
from __future__ import annotations

MASK64 = (1 << 64) - 1


def update_py(state: int, pos: int, data) -> int:
    """Reference implementation, one byte at a time."""
    h = state
    for k, byte in enumerate(bytes(data)):
        h = ((h << 4) + byte + pos + k) & MASK64
        t = h & 0xF0000000
        if t:
            h ^= t >> 24
        h &= ~t
    return h


try:
    from guest_creator._v3hash import update as _update_c
except ImportError:  # built without a C compiler: slow but correct
    _update_c = None

FAST = _update_c is not None


def update(state: int, pos: int, data) -> int:
    """Continue the hash `state` over `data`, whose first byte is at file position `pos`."""
    if _update_c is not None:
        return _update_c(state, pos & MASK64, data)
    return update_py(state, pos, data)


def hash_bytes(data) -> int:
    """The hash of a whole file held in memory."""
    return update(0, 0, data)


class Hasher:
    """Streaming form: feed consecutive chunks, read `.value`."""

    def __init__(self):
        self.value = 0
        self.position = 0

    def update(self, data):
        self.value = update(self.value, self.position, data)
        self.position += len(data)
        return self
