"""The 64 KiB BIOS ROM image, hand-assembled here (no assembler at run time).

The image is copied by the core to physical 0xF0000-0xFFFFF (segment F000). Entry points sit
at the addresses of the IBM PC/AT BIOS listing (F000:E05B POST, F000:E3FE INT 13h, ...), which a
few old programs call directly. Each BIOS service is a trap stub: `int3` (0xCC), intercepted by
the core and served in Python (`Bios.trap_service`), then 8086 code that finishes the interrupt
(`iret`, or the EOI sequence of a hardware-interrupt handler).

`RomImage.traps` maps a service name to the linear address of its `int3`; `RomImage.vectors`
maps an interrupt vector to its handler's offset in segment F000; `RomImage.tables` names the
data tables (configuration table, diskette parameter table, ...).
"""
ROM_BASE = 0xF0000
ROM_SEG = 0xF000
ROM_SIZE = 0x10000

# --- instructions (8086 encodings, Intel SDM vol. 2) -------------------------------------------
INT3 = (b"\xCC", "int3                ; trap into the Python service")
IRET = (b"\xCF", "iret")
PUSH_AX = (b"\x50", "push ax")
POP_AX = (b"\x58", "pop ax")
MOV_AL_EOI = (b"\xB0\x20", "mov al, 20h         ; OCW2 non-specific EOI")
OUT_MASTER = (b"\xE6\x20", "out 20h, al         ; EOI to the master 8259A")
OUT_SLAVE = (b"\xE6\xA0", "out 0A0h, al        ; EOI to the slave 8259A")

TRAP_IRET = [INT3, IRET]
EOI_MASTER = [PUSH_AX, MOV_AL_EOI, OUT_MASTER, POP_AX, IRET]
EOI_BOTH = [PUSH_AX, MOV_AL_EOI, OUT_SLAVE, OUT_MASTER, POP_AX, IRET]

POST_CODE = [
    (b"\xFA", "cli"),
    (b"\xFC", "cld"),
    (b"\x31\xC0", "xor ax, ax"),
    (b"\x8E\xD0", "mov ss, ax"),
    (b"\xBC\x00\x7C", "mov sp, 7C00h       ; boot-time stack below the boot sector"),
    (b"\x8E\xD8", "mov ds, ax"),
    (b"\x8E\xC0", "mov es, ax"),
    INT3,                                   # POST service (tables, BDA, PIC, PIT, drives)
    (b"\xFB", "sti"),
    (b"\xCD\x19", "int 19h             ; bootstrap loader; returns into the boot sector"),
    (b"\xF4", "hlt                 ; not reached"),
    (b"\xEB\xFD", "jmp short $-1       ; back to hlt"),
]
TIMER_CODE = [                               # INT 08h, IRQ 0
    INT3,                                   # tick service: BDA 0x46C/0x470
    (b"\xCD\x1C", "int 1Ch             ; user timer hook"),
    PUSH_AX, MOV_AL_EOI, OUT_MASTER, POP_AX, IRET,
]
KEYBOARD_CODE = [INT3] + EOI_MASTER          # INT 09h, IRQ 1: scancode from port 60h

RESET_VECTOR = [(b"\xEA\x5B\xE0\x00\xF0", "jmp far F000:E05B   ; to POST")]

# --- fixed addresses (offsets in segment F000, from the PC/AT BIOS listing) --------------------
POST_ENTRY = 0xE05B
NMI_ENTRY = 0xE2C3
INT13_ENTRY = 0xE3FE
INT19_ENTRY = 0xE6F2
CONFIG_TABLE = 0xE6F5       # INT 15h AH=C0h system configuration table
BAUD_TABLE = 0xE729         # INT 14h divisors for 110..9600 baud
INT14_ENTRY = 0xE739
INT16_ENTRY = 0xE82E
INT09_ENTRY = 0xE987
INT40_ENTRY = 0xEC59        # diskette service (INT 13h for drives < 80h)
INT0E_ENTRY = 0xEF57        # IRQ 6 diskette
DISKETTE_TABLE = 0xEFC7     # INT 1Eh diskette parameter table
INT17_ENTRY = 0xEFD2
INT10_ENTRY = 0xF065
VIDEO_PARAMS = 0xF0A4       # INT 1Dh video parameter table (left zero, see docs/bios.md)
INT12_ENTRY = 0xF841
INT11_ENTRY = 0xF84D
INT15_ENTRY = 0xF859
FONT_8X8 = 0xFA6E           # INT 43h (left zero, see docs/bios.md)
INT1A_ENTRY = 0xFE6E
INT08_ENTRY = 0xFEA5
DUMMY_IRET = 0xFF53
INT05_ENTRY = 0xFF54
RESET_ENTRY = 0xFFF0
DATE_STRING = 0xFFF5
MODEL_BYTE = 0xFFFE

# --- our own area (offsets below 0xE000 are free in the PC/AT layout) ---------------------------
EXCEPTION_ENTRY = 0x1000
INT18_ENTRY = 0x1010
IRQ_MASTER_ENTRY = 0x1020   # default handler for IRQ 2-7
IRQ_SLAVE_ENTRY = 0x1030    # default handler for IRQ 8-15
FONT_AREA = 0x2000          # 4 KiB of zeros: every font pointer (INT 1Fh, 43h, AX=1130h)
FONT_AREA_SIZE = 0x1000
TABLES_AREA = 0x4000        # 32 KiB left zero for the firmware tables (MP, ACPI: vmm/tables)
TABLES_AREA_SIZE = 0x8000

BIOS_DATE = b"01/01/24"
MODEL_AT = 0xFC             # PC/AT and compatibles
SUBMODEL = 0x01

# INT 15h C0h: length word, model, submodel, revision, feature bytes 1-5.
# feature 1: bit 6 second 8259A present, bit 5 RTC present, bit 2 EBDA allocated.
CONFIG_BYTES = bytes((8, 0, MODEL_AT, SUBMODEL, 0, 0x64, 0, 0, 0, 0))
# INT 1Eh: SRT/HUT, HLT/DMA, motor-off ticks, 512 B/sector, 18 sectors/track, gap, DTL,
# format gap, fill byte, head settle ms, motor start 1/8 s (the 1.44 MB values).
DISKETTE_BYTES = bytes((0xDF, 0x02, 0x25, 0x02, 0x12, 0x1B, 0xFF, 0x6C, 0xF6, 0x0F, 0x08))
BAUD_DIVISORS = (0x417, 0x300, 0x180, 0xC0, 0x60, 0x30, 0x18, 0x0C)   # 110 ... 9600 baud


class RomImage:
    def __init__(self):
        self.data = bytearray(ROM_SIZE)
        self.traps = {}          # service name -> linear address of its int3
        self.vectors = {}        # vector -> offset in segment F000
        self.listing = []        # (offset, bytes, comment): the assembly listing, for docs/tests
        self._build()
        self.data = bytes(self.data)

    def _emit(self, offset, code, trap=None):
        for ins, comment in code:
            end = offset + len(ins)
            if any(self.data[offset:end]) and self.data[offset:end] != ins:
                raise AssertionError(f"ROM overlap at F000:{offset:04X}")
            self.data[offset:end] = ins
            self.listing.append((offset, ins, comment))
            if ins == b"\xCC" and trap is not None:
                self.traps[trap] = ROM_BASE + offset
            offset = end
        return offset

    def _stub(self, offset, code, trap, *vectors):
        self._emit(offset, code, trap)
        for v in vectors:
            self.vectors[v] = offset

    def _build(self):
        self._emit(POST_ENTRY, POST_CODE, "post")
        self._emit(RESET_ENTRY, RESET_VECTOR)
        self._stub(DUMMY_IRET, [IRET], None)
        for v in range(0x100):
            self.vectors[v] = DUMMY_IRET
        self._stub(INT05_ENTRY, [IRET], None, 0x05)
        self._stub(NMI_ENTRY, [IRET], None, 0x02)
        self._stub(EXCEPTION_ENTRY, TRAP_IRET, "divide_error", 0x00)
        self._stub(EXCEPTION_ENTRY + 8, TRAP_IRET, "invalid_opcode", 0x06)
        self._stub(INT08_ENTRY, TIMER_CODE, "int08", 0x08)
        self._stub(INT09_ENTRY, KEYBOARD_CODE, "int09", 0x09)
        self._stub(IRQ_MASTER_ENTRY, EOI_MASTER, None, 0x0A, 0x0B, 0x0C, 0x0D, 0x0F)
        self._stub(INT0E_ENTRY, EOI_MASTER, None, 0x0E)
        self._stub(IRQ_SLAVE_ENTRY, EOI_BOTH, None, *range(0x70, 0x78))
        for name, offset, vector in (
                ("int10", INT10_ENTRY, 0x10), ("int11", INT11_ENTRY, 0x11),
                ("int12", INT12_ENTRY, 0x12), ("int13", INT13_ENTRY, 0x13),
                ("int14", INT14_ENTRY, 0x14), ("int15", INT15_ENTRY, 0x15),
                ("int16", INT16_ENTRY, 0x16), ("int17", INT17_ENTRY, 0x17),
                ("int18", INT18_ENTRY, 0x18), ("int19", INT19_ENTRY, 0x19),
                ("int1a", INT1A_ENTRY, 0x1A), ("int40", INT40_ENTRY, 0x40)):
            self._stub(offset, TRAP_IRET, name, vector)
        self.data[CONFIG_TABLE:CONFIG_TABLE + len(CONFIG_BYTES)] = CONFIG_BYTES
        self.data[DISKETTE_TABLE:DISKETTE_TABLE + len(DISKETTE_BYTES)] = DISKETTE_BYTES
        for i, div in enumerate(BAUD_DIVISORS):
            self.data[BAUD_TABLE + 2 * i:BAUD_TABLE + 2 * i + 2] = div.to_bytes(2, "little")
        self.data[DATE_STRING:DATE_STRING + 8] = BIOS_DATE
        self.data[MODEL_BYTE] = MODEL_AT
        # vectors that hold data pointers or stay null (user vectors 60h-67h)
        self.data_vectors = {0x1D: VIDEO_PARAMS, 0x1E: DISKETTE_TABLE, 0x1F: FONT_AREA,
                             0x43: FONT_AREA}
        for v in list(self.data_vectors) + [0x41, 0x46] + list(range(0x60, 0x68)):
            self.vectors.pop(v, None)

    def listing_text(self):
        return "\n".join(f"F000:{off:04X}  {ins.hex(' '):<15} {comment}"
                         for off, ins, comment in sorted(self.listing))
