"""Linear -> physical translation for the VMM's own guest accesses (event delivery, BIOS calls,
diagnostics), by the processor's rules: 32-bit paging with 4 MiB pages (CR4.PSE), PAE paging
with 2 MiB pages, and 4-level IA-32e paging (long mode: 2 MiB and 1 GiB pages, 48-bit linear
addresses); user/supervisor and read/write permission with CR0.WP; Accessed and Dirty bits set
as the hardware sets them. The VMM never fetches instructions through this walker, so the
execute-disable bit only has to be kept out of the physical address. A failed walk raises `PageFault` with the error code the
processor would report; the caller turns it into a #PF for the guest.
"""
import struct

CR0_PG = 1 << 31
CR0_WP = 1 << 16
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5

P, RW, US, A, D, PS = 1, 2, 4, 0x20, 0x40, 0x80


class PageFault(Exception):
    def __init__(self, linear, error_code):
        super().__init__(f"#PF at {linear:#x} (error code {error_code:#x})")
        self.linear = linear
        self.error_code = error_code


class MMU:
    """Walks the guest's page tables through `phys_read(addr, n)` / `phys_write(addr, data)`."""

    def __init__(self, phys_read, phys_write):
        self.read = phys_read
        self.write = phys_write

    def translate(self, linear, cr0, cr3, cr4, write=False, user=False, long_mode=False):
        if long_mode and cr0 & CR0_PG:
            return self._walk_4level(linear & 0xFFFFFFFFFFFFFFFF, cr3, write, user,
                                     bool(cr0 & CR0_WP))
        linear &= 0xFFFFFFFF
        if not cr0 & CR0_PG:
            return linear
        wp = bool(cr0 & CR0_WP)
        if cr4 & CR4_PAE:
            return self._walk_pae(linear, cr3, write, user, wp)
        return self._walk_32(linear, cr3, cr4, write, user, wp)

    def _fault(self, linear, present, write, user):
        raise PageFault(linear, (1 if present else 0) | (2 if write else 0) | (4 if user else 0))

    def _check(self, entries, linear, write, user, wp):
        allowed_w = all(e & RW for e in entries)
        allowed_u = all(e & US for e in entries)
        if user and not allowed_u:
            self._fault(linear, True, write, user)
        if write and not allowed_w and (user or wp):
            self._fault(linear, True, write, user)

    def _touch(self, addr, entry, fmt, bits):
        if entry & bits != bits:
            self.write(addr, struct.pack(fmt, entry | bits))

    def _walk_32(self, linear, cr3, cr4, write, user, wp):
        pde_addr = (cr3 & 0xFFFFF000) + ((linear >> 22) << 2)
        pde = struct.unpack("<I", self.read(pde_addr, 4))[0]
        if not pde & P:
            self._fault(linear, False, write, user)
        if pde & PS and cr4 & CR4_PSE:
            self._check((pde,), linear, write, user, wp)
            self._touch(pde_addr, pde, "<I", A | (D if write else 0))
            return (pde & 0xFFC00000) | (linear & 0x3FFFFF)
        pte_addr = (pde & 0xFFFFF000) + (((linear >> 12) & 0x3FF) << 2)
        pte = struct.unpack("<I", self.read(pte_addr, 4))[0]
        if not pte & P:
            self._fault(linear, False, write, user)
        self._check((pde, pte), linear, write, user, wp)
        self._touch(pde_addr, pde, "<I", A)
        self._touch(pte_addr, pte, "<I", A | (D if write else 0))
        return (pte & 0xFFFFF000) | (linear & 0xFFF)

    def _walk_pae(self, linear, cr3, write, user, wp):
        mask = 0x000FFFFFFFFFF000
        pdpte = struct.unpack("<Q", self.read((cr3 & 0xFFFFFFE0) + ((linear >> 30) << 3), 8))[0]
        if not pdpte & P:
            self._fault(linear, False, write, user)
        pde_addr = (pdpte & mask) + (((linear >> 21) & 0x1FF) << 3)
        pde = struct.unpack("<Q", self.read(pde_addr, 8))[0]
        if not pde & P:
            self._fault(linear, False, write, user)
        if pde & PS:
            self._check((pde,), linear, write, user, wp)
            self._touch(pde_addr, pde, "<Q", A | (D if write else 0))
            return (pde & 0x000FFFFFFFE00000) | (linear & 0x1FFFFF)
        pte_addr = (pde & mask) + (((linear >> 12) & 0x1FF) << 3)
        pte = struct.unpack("<Q", self.read(pte_addr, 8))[0]
        if not pte & P:
            self._fault(linear, False, write, user)
        self._check((pde, pte), linear, write, user, wp)
        self._touch(pde_addr, pde, "<Q", A)
        self._touch(pte_addr, pte, "<Q", A | (D if write else 0))
        return (pte & mask) | (linear & 0xFFF)

    def _walk_4level(self, linear, cr3, write, user, wp):
        top = linear >> 47
        if top not in (0, 0x1FFFF):
            # A non-canonical address: the caller's access raises #GP (or #SS), not #PF.
            raise NonCanonical(linear)
        mask = 0x000FFFFFFFFFF000
        table = cr3 & mask
        entries = []
        for level, shift in ((4, 39), (3, 30), (2, 21), (1, 12)):
            addr = table + (((linear >> shift) & 0x1FF) << 3)
            e = struct.unpack("<Q", self.read(addr, 8))[0]
            if not e & P:
                self._fault(linear, False, write, user)
            entries.append((addr, e))
            if level in (3, 2) and e & PS:
                size_mask = (1 << shift) - 1
                self._check([x for _, x in entries], linear, write, user, wp)
                for a, x in entries[:-1]:
                    self._touch(a, x, "<Q", A)
                self._touch(addr, e, "<Q", A | (D if write else 0))
                return (e & mask & ~size_mask) | (linear & size_mask)
            table = e & mask
        self._check([x for _, x in entries], linear, write, user, wp)
        for a, x in entries[:-1]:
            self._touch(a, x, "<Q", A)
        a, x = entries[-1]
        self._touch(a, x, "<Q", A | (D if write else 0))
        return (x & mask) | (linear & 0xFFF)


class NonCanonical(Exception):
    def __init__(self, linear):
        super().__init__(f"non-canonical address {linear:#x}")
        self.linear = linear
