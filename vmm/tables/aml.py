"""A tiny ACPI Machine Language encoder (ACPI specification 6.x, chapter 20 "ACPI Machine
Language Specification"): just the terms the DSDT of this machine needs (names, integers,
strings, packages, scopes, devices, EISA ids).

Each function returns the encoded bytes of one term.
"""
import struct

ZERO_OP, ONE_OP, ONES_OP = 0x00, 0x01, 0xFF
BYTE_PREFIX, WORD_PREFIX, DWORD_PREFIX, STRING_PREFIX, QWORD_PREFIX = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E
NAME_OP, SCOPE_OP, BUFFER_OP, PACKAGE_OP = 0x08, 0x10, 0x11, 0x12
EXT_OP_PREFIX, DEVICE_OP = 0x5B, 0x82
ROOT_CHAR, PARENT_PREFIX, DUAL_NAME_PREFIX, MULTI_NAME_PREFIX = 0x5C, 0x5E, 0x2E, 0x2F


def pkg_length(body_length):
    """PkgLength (20.2.4): the length of the package *including* the PkgLength bytes."""
    for extra in range(4):
        total = body_length + 1 + extra
        if extra == 0 and total < 0x40:
            return bytes((total,))
        if extra and total < 1 << (4 + 8 * extra):
            out = [(extra << 6) | (total & 0xF)]
            rest = total >> 4
            for _ in range(extra):
                out.append(rest & 0xFF)
                rest >>= 8
            return bytes(out)
    raise ValueError(f"AML package too long ({body_length} bytes)")


def name_seg(seg):
    seg = seg.upper()
    if not 1 <= len(seg) <= 4 or not (seg[0].isalpha() or seg[0] == "_") or \
            not all(c.isalnum() or c == "_" for c in seg):
        raise ValueError(f"bad AML name segment {seg!r}")
    return seg.ljust(4, "_").encode()


def name_string(path):
    """`\\_SB_.PCI0`, `_S5`, `^FOO`: a NameString (20.2.2)."""
    prefix = b""
    while path.startswith("\\") or path.startswith("^"):
        prefix += bytes((ROOT_CHAR if path[0] == "\\" else PARENT_PREFIX,))
        path = path[1:]
    segs = [s for s in path.split(".") if s] if path else []
    if not segs:
        return prefix + b"\x00"
    body = b"".join(name_seg(s) for s in segs)
    if len(segs) == 1:
        return prefix + body
    if len(segs) == 2:
        return prefix + bytes((DUAL_NAME_PREFIX,)) + body
    return prefix + bytes((MULTI_NAME_PREFIX, len(segs))) + body


def integer(value):
    """The shortest integer encoding (20.2.3)."""
    if value == 0:
        return bytes((ZERO_OP,))
    if value == 1:
        return bytes((ONE_OP,))
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"AML integer {value} out of range")
    for prefix, fmt, limit in ((BYTE_PREFIX, "<B", 1 << 8), (WORD_PREFIX, "<H", 1 << 16),
                               (DWORD_PREFIX, "<I", 1 << 32), (QWORD_PREFIX, "<Q", 1 << 64)):
        if value < limit:
            return bytes((prefix,)) + struct.pack(fmt, value)


def dword(value):
    return bytes((DWORD_PREFIX,)) + struct.pack("<I", value)


def string(text):
    return bytes((STRING_PREFIX,)) + text.encode("ascii") + b"\x00"


def _term(item):
    if isinstance(item, bytes):
        return item
    if isinstance(item, int):
        return integer(item)
    if isinstance(item, str):
        return string(item)
    raise TypeError(f"no AML encoding for {item!r}")


def package(*elements):
    """Package (20.2.5.4, DefPackage): at most 255 elements."""
    if len(elements) > 255:
        raise ValueError("an AML Package holds at most 255 elements (use VarPackage)")
    body = bytes((len(elements),)) + b"".join(_term(e) for e in elements)
    return bytes((PACKAGE_OP,)) + pkg_length(len(body)) + body


def name(path, value):
    return bytes((NAME_OP,)) + name_string(path) + _term(value)


def scope(path, *terms):
    body = name_string(path) + b"".join(terms)
    return bytes((SCOPE_OP,)) + pkg_length(len(body)) + body


def device(path, *terms):
    body = name_string(path) + b"".join(terms)
    return bytes((EXT_OP_PREFIX, DEVICE_OP)) + pkg_length(len(body)) + body


def buffer(data):
    """Buffer (DefBuffer) holding `data`, its size as the BufferSize term."""
    body = integer(len(data)) + data
    return bytes((BUFFER_OP,)) + pkg_length(len(body)) + body


# -- resource descriptors (6.4), for _CRS ResourceTemplates -----------------------------------
def word_bus_number(lo, hi):
    """Word Address Space Descriptor, resource type 2 (bus numbers), producer, fixed range."""
    return struct.pack("<BHBBBHHHHH", 0x88, 13, 2, 0x0C, 0, 0, lo, hi, 0, hi - lo + 1)


def word_io(lo, hi):
    """Word Address Space Descriptor, resource type 1 (I/O), whole ISA and non-ISA ranges."""
    return struct.pack("<BHBBBHHHHH", 0x88, 13, 1, 0x0C, 0x03, 0, lo, hi, 0, hi - lo + 1)


def dword_memory(lo, hi):
    """DWord Address Space Descriptor, memory, read-write, non-cacheable."""
    return struct.pack("<BHBBBIIIII", 0x87, 23, 0, 0x0C, 0x01, 0, lo, hi, 0, hi - lo + 1)


def memory32_fixed(base, length, writable=True):
    """32-bit Fixed Memory Range Descriptor (large item 0x86)."""
    return struct.pack("<BHBII", 0x86, 9, 1 if writable else 0, base, length)


def io_port(lo, hi, align, length):
    """I/O Port Descriptor (small item), 16-bit decode."""
    return struct.pack("<BBHHBB", 0x47, 1, lo, hi, align, length)


def resource_template(*descriptors):
    """The descriptors then an End Tag (checksum 0: "treat as if the checksum is valid")."""
    return buffer(b"".join(descriptors) + b"\x79\x00")


def eisa_id(text):
    """EisaId("PNP0A03") as the DWORD integer term (compressed EISA id, 6.1.5)."""
    if len(text) != 7 or not text[:3].isalpha() or not text[:3].isupper():
        raise ValueError(f"bad EISA id {text!r}")
    c = [ord(ch) - 0x40 for ch in text[:3]]
    digits = int(text[3:], 16)
    raw = bytes(((c[0] << 2) | (c[1] >> 3), ((c[1] & 7) << 5) | c[2], digits >> 8, digits & 0xFF))
    return dword(int.from_bytes(raw, "little"))
