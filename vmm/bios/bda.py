"""BIOS Data Area (segment 0x40) and EBDA offsets, per the IBM PC/AT Technical Reference.

All values are physical addresses. The EBDA is 1 KiB at 0x9FC00 (base memory 639 KiB).
"""
BDA = 0x400
COM_PORTS = 0x400        # 4 words: COM1-COM4 base ports (0 = absent)
LPT_PORTS = 0x408        # 3 words: LPT1-LPT3 base ports; word at 0x40E is the EBDA segment
EBDA_SEG = 0x40E         # word: EBDA segment
EQUIPMENT = 0x410        # word: equipment list (INT 11h)
MEMORY_KIB = 0x413       # word: base memory in KiB (INT 12h)
KBD_FLAGS1 = 0x417       # byte: shift flags (INT 16h AH=02h)
KBD_FLAGS2 = 0x418       # byte: extended shift flags
KBD_HEAD = 0x41A         # word: offset (from 0x400) of the next key to read
KBD_TAIL = 0x41C         # word: offset of the next free slot
KBD_BUFFER = 0x41E       # 16 words (default buffer 0x41E-0x43D)
FLOPPY_RECAL = 0x43E     # byte: diskette recalibrate status
FLOPPY_MOTOR = 0x43F     # byte: diskette motor status
FLOPPY_MOTOR_TICKS = 0x440
FLOPPY_STATUS = 0x441    # byte: last diskette operation status (INT 13h AH=01h)
VIDEO_MODE = 0x449       # byte: current video mode
VIDEO_COLS = 0x44A       # word: columns on screen
VIDEO_PAGE_SIZE = 0x44C  # word: bytes per page
VIDEO_PAGE_START = 0x44E  # word: offset of the active page in video memory
CURSOR_POS = 0x450       # 8 words: cursor (row << 8 | column) per page
CURSOR_SHAPE = 0x460     # word: end line (low), start line (high)
VIDEO_PAGE = 0x462       # byte: active page
CRTC_BASE = 0x463        # word: 0x3D4 colour, 0x3B4 mono
VIDEO_MODE_CTL = 0x465   # byte: 3x8 mode control register value
VIDEO_PALETTE = 0x466    # byte: CGA palette
TICKS = 0x46C            # dword: timer ticks since midnight
MIDNIGHT = 0x470         # byte: non-zero once midnight has passed since the last read
BREAK_FLAG = 0x471
RESET_FLAG = 0x472       # word: 0x1234 = warm boot
DISK_STATUS = 0x474      # byte: last fixed-disk operation status
NUM_HARD_DISKS = 0x475   # byte: number of fixed disks
KBD_BUF_START = 0x480    # word: keyboard buffer start (offset from 0x400)
KBD_BUF_END = 0x482      # word: keyboard buffer end
VIDEO_ROWS = 0x484       # byte: rows on screen minus one
CHAR_HEIGHT = 0x485      # word: scan lines per character
VIDEO_CTL = 0x487        # byte: EGA/VGA control
VIDEO_SWITCHES = 0x488   # byte: EGA/VGA feature switches
VGA_FLAGS = 0x489        # byte: VGA video flags
DCC_INDEX = 0x48A        # byte: display combination code index
KBD_FLAGS3 = 0x496       # byte: keyboard mode/type (bit 4: 101-key keyboard)

EBDA_BASE = 0x9FC00      # 1 KiB extended BIOS data area
EBDA_KIB = 1
BASE_MEMORY_KIB = EBDA_BASE // 1024   # 639
EBDA_FDPT0 = EBDA_BASE + 0x3D        # INT 41h fixed disk parameter table, drive 0x80
EBDA_FDPT1 = EBDA_BASE + 0x4D        # INT 46h fixed disk parameter table, drive 0x81

TICKS_PER_DAY = 0x1800B0  # 18.2065 Hz * 86400 s, as IBM's BIOS counts it
