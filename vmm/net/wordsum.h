/* The sum of a block's big-endian 16-bit words, an odd last byte padded with a zero (RFC 1071's
 * arithmetic before folding): what the checksums of IPv4, TCP and UDP are made of. Shared by
 * the offloads (vmm/net/_offload.c) and the RTL8139's C+ receive checksum check
 * (vmm/devices/_rtl8139.c). Comparing such a sum modulo 0xFFFF is comparing its folded
 * ones'-complement sum. */
#ifndef V3_WORDSUM_H
#define V3_WORDSUM_H
#include <stddef.h>
#include <stdint.h>

static inline uint64_t word_sum(const uint8_t *p, size_t n)
{
    uint64_t s = 0;
    size_t i;
    for (i = 0; i + 1 < n; i += 2)
        s += (uint64_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        s += (uint64_t)p[n - 1] << 8;           /* the pad byte */
    return s;
}

#endif
