"""INT 10h video services for the text modes (IBM PC/AT and VGA BIOS interface).

Text is written straight into video memory (B800:0 colour, B000:0 mode 7); the BDA holds the
mode, cursor positions and active page, so a guest that reads them sees consistent values.
With `bios_console_serial`, teletype output (AH=0Eh, AH=13h) is mirrored to the console (COM1
sink), so a boot loader that only uses the screen is visible on `--bios-console serial`.
Graphics modes, VBE (AH=4Fh: answered "not supported") and font loading are not implemented.
"""
from v3tools.errors import Unimplemented

from vmm.bios import bda
from vmm.bios import rom

# mode -> (columns, video memory base, CRTC base port, mode-control register value)
TEXT_MODES = {
    0x00: (40, 0xB8000, 0x3D4, 0x2C), 0x01: (40, 0xB8000, 0x3D4, 0x28),
    0x02: (80, 0xB8000, 0x3D4, 0x2D), 0x03: (80, 0xB8000, 0x3D4, 0x29),
    0x07: (80, 0xB0000, 0x3B4, 0x29),
}
ROWS = 25
DEFAULT_ATTR = 0x07          # light grey on black
CURSOR_SHAPE = 0x0607        # start line 6, end line 7
BEL, BS, LF, CR = 0x07, 0x08, 0x0A, 0x0D
DCC_VGA_COLOR = 0x08         # display combination code: VGA with analog colour display


class Video:
    def __init__(self, bios):
        self.bios = bios
        self.ctx = bios.ctx
        self.functions = {
            0x00: self.set_mode, 0x01: self.set_cursor_shape, 0x02: self.set_cursor_pos,
            0x03: self.get_cursor, 0x05: self.set_page, 0x06: self.scroll_up,
            0x07: self.scroll_down, 0x08: self.read_char, 0x09: self.write_char_attr,
            0x0A: self.write_char, 0x0B: self.set_palette, 0x0E: self.teletype_call,
            0x0F: self.get_mode, 0x10: self.palette_regs, 0x11: self.font,
            0x12: self.alt_select, 0x13: self.write_string, 0x1A: self.display_combination,
            0x4F: self.vbe,
        }

    def service(self, call):
        fn = self.functions.get(call.ah)
        if fn is None:
            raise Unimplemented(f"INT 10h AH={call.ah:02X}h (video function not implemented)")
        fn(call)

    def reset(self):
        self.mode_set(0x03, clear=True)
        self.bios.wr8(bda.VIDEO_SWITCHES, 0x09)      # EGA switches: colour 80x25
        self.bios.wr8(bda.VGA_FLAGS, 0x51)           # 400 lines, VGA active
        self.bios.wr8(bda.VIDEO_CTL, 0x60)           # 256 KiB video memory

    # -- state helpers ---------------------------------------------------------------------------
    def cols(self):
        return self.bios.rd16(bda.VIDEO_COLS) or 80

    def rows(self):
        return self.bios.rd8(bda.VIDEO_ROWS) + 1

    def page(self):
        return self.bios.rd8(bda.VIDEO_PAGE)

    def page_base(self, page):
        mode = self.bios.rd8(bda.VIDEO_MODE)
        base = TEXT_MODES.get(mode, TEXT_MODES[3])[1]
        return base + (page & 7) * self.bios.rd16(bda.VIDEO_PAGE_SIZE)

    def cursor(self, page):
        pos = self.bios.rd16(bda.CURSOR_POS + 2 * (page & 7))
        return pos >> 8, pos & 0xFF

    def move(self, page, row, col):
        self.bios.wr16(bda.CURSOR_POS + 2 * (page & 7), (row & 0xFF) << 8 | (col & 0xFF))

    def cell_addr(self, page, row, col):
        return self.page_base(page) + 2 * (row * self.cols() + col)

    def put(self, page, row, col, ch, attr=None):
        addr = self.cell_addr(page, row, col)
        if attr is None:
            self.ctx.mem.write(addr, bytes((ch,)))
        else:
            self.ctx.mem.write(addr, bytes((ch, attr)))

    # -- AH=00h-0Fh -------------------------------------------------------------------------------
    def set_mode(self, call):
        mode = call.al & 0x7F
        if mode not in TEXT_MODES:
            raise Unimplemented(f"INT 10h AH=00h: video mode {mode:02X}h (only text modes "
                                "00h-03h and 07h are implemented)")
        self.mode_set(mode, clear=not call.al & 0x80)
        call.al = 0x30                               # Phoenix/AMI: modes 0-5 and 7

    def mode_set(self, mode, clear=True):
        cols, base, crtc, ctl = TEXT_MODES[mode]
        b = self.bios
        b.wr8(bda.VIDEO_MODE, mode)
        b.wr16(bda.VIDEO_COLS, cols)
        b.wr16(bda.VIDEO_PAGE_SIZE, 0x800 if cols == 40 else 0x1000)
        b.wr16(bda.VIDEO_PAGE_START, 0)
        b.wr8(bda.VIDEO_PAGE, 0)
        b.wr16(bda.CRTC_BASE, crtc)
        b.wr8(bda.VIDEO_MODE_CTL, ctl)
        b.wr8(bda.VIDEO_ROWS, ROWS - 1)
        b.wr16(bda.CHAR_HEIGHT, 16)
        b.wr16(bda.CURSOR_SHAPE, CURSOR_SHAPE)
        b.wr8(bda.DCC_INDEX, DCC_VGA_COLOR)
        for page in range(8):
            self.move(page, 0, 0)
        if clear:
            self.ctx.mem.write(base, bytes((0x20, DEFAULT_ATTR)) * (0x8000 // 2))

    def set_cursor_shape(self, call):
        self.bios.wr16(bda.CURSOR_SHAPE, call.cx)

    def set_cursor_pos(self, call):
        self.move(call.bh, call.dh, call.dl)

    def get_cursor(self, call):
        call.dh, call.dl = self.cursor(call.bh)
        call.cx = self.bios.rd16(bda.CURSOR_SHAPE)
        call.ax = 0

    def set_page(self, call):
        page = call.al & 7
        self.bios.wr8(bda.VIDEO_PAGE, page)
        self.bios.wr16(bda.VIDEO_PAGE_START, page * self.bios.rd16(bda.VIDEO_PAGE_SIZE))

    def scroll_up(self, call):
        self.scroll(self.page(), call.ch, call.cl, call.dh, call.dl, call.al, call.bh, up=True)

    def scroll_down(self, call):
        self.scroll(self.page(), call.ch, call.cl, call.dh, call.dl, call.al, call.bh, up=False)

    def scroll(self, page, top, left, bottom, right, lines, attr, up=True):
        """Scroll a window of the page; lines == 0 (or more than its height) blanks it."""
        bottom = min(bottom, self.rows() - 1)
        right = min(right, self.cols() - 1)
        if top > bottom or left > right:
            return
        height, width = bottom - top + 1, right - left + 1
        if lines == 0 or lines > height:
            lines = height
        mem = self.ctx.mem
        rows = range(top, bottom + 1) if up else range(bottom, top - 1, -1)
        for row in rows:
            src = row + lines if up else row - lines
            dst = self.cell_addr(page, row, left)
            if top <= src <= bottom:
                mem.write(dst, mem.read(self.cell_addr(page, src, left), 2 * width))
            else:
                mem.write(dst, bytes((0x20, attr)) * width)

    def read_char(self, call):
        row, col = self.cursor(call.bh)
        ch, attr = self.ctx.mem.read(self.cell_addr(call.bh, row, col), 2)
        call.al, call.ah = ch, attr

    def write_char_attr(self, call):
        self._repeat(call, call.bl)

    def write_char(self, call):
        self._repeat(call, None)

    def _repeat(self, call, attr):
        page = call.bh
        row, col = self.cursor(page)
        cols = self.cols()
        start = row * cols + col
        for i in range(min(call.cx, self.rows() * cols - start)):
            r, c = divmod(start + i, cols)
            self.put(page, r, c, call.al, attr)

    def set_palette(self, call):
        """AH=0Bh: CGA border/background and palette. Invisible with no display: accepted."""
        self.bios.wr8(bda.VIDEO_PALETTE, call.bl & 0x3F)

    def teletype_call(self, call):
        self.teletype(call.al, self.page())
        self.mirror(bytes((call.al,)))

    def teletype(self, ch, page, attr=None):
        row, col = self.cursor(page)
        cols, rows = self.cols(), self.rows()
        if ch == BEL:
            return
        if ch == BS:
            col = max(0, col - 1)
        elif ch == CR:
            col = 0
        elif ch == LF:
            row += 1
        else:
            self.put(page, row, col, ch, attr)
            col += 1
            if col >= cols:
                col, row = 0, row + 1
        if row >= rows:
            fill = self.ctx.mem.read(self.cell_addr(page, rows - 1, 0) + 1, 1)[0] or DEFAULT_ATTR
            self.scroll(page, 0, 0, rows - 1, cols - 1, 1, fill, up=True)
            row = rows - 1
        self.move(page, row, col)

    def mirror(self, data):
        if self.bios.options.bios_console_serial:
            self.ctx.console.write(data)

    def get_mode(self, call):
        call.ah = self.cols()
        call.al = self.bios.rd8(bda.VIDEO_MODE)
        call.bh = self.page()

    # -- AH=10h-1Ah, 4Fh ---------------------------------------------------------------------------
    def palette_regs(self, call):
        """AH=10h: palette and DAC registers. No display exists, so settings are accepted;
        reads answer the power-on values."""
        if call.al in (0x00, 0x01, 0x02, 0x03, 0x10, 0x12, 0x13, 0x1A, 0x1B):
            if call.al == 0x1A:
                call.bx = 0                          # colour page state
            return
        raise Unimplemented(f"INT 10h AX={call.ax:04X}h (palette function)")

    def font(self, call):
        al = call.al
        if al == 0x30:                               # get font information
            call.es = rom.ROM_SEG
            call.bp = rom.FONT_AREA                  # all zeros: see docs/bios.md
            call.cx = self.bios.rd16(bda.CHAR_HEIGHT) or 16
            call.dl = self.rows() - 1
            return
        if al in (0x04, 0x14):                       # load the ROM 8x16 font: already loaded
            return
        raise Unimplemented(f"INT 10h AX={call.ax:04X}h (character generator function)")

    def alt_select(self, call):
        if call.bl == 0x10:                          # get EGA/VGA information
            call.bh = 0x00                           # colour mode in effect
            call.bl = 0x03                           # 256 KiB video memory
            call.ch = 0x00                           # feature bits
            call.cl = self.bios.rd8(bda.VIDEO_SWITCHES) & 0x0F
            return
        if call.bl == 0x30 and call.al <= 2:         # select scan lines for text modes
            # AL 0/1/2: 200/350/400 lines, recorded in the VGA flags (bit 7, bit 4: 10, 00,
            # 01) for the next mode set, as a VGA BIOS does. The text screen here has no scan
            # lines: 25 rows of 80 characters either way. AL=12h: function supported.
            flags = self.bios.rd8(bda.VGA_FLAGS) & ~0x90
            flags |= (0x80, 0x00, 0x10)[call.al]
            self.bios.wr8(bda.VGA_FLAGS, flags)
            call.al = 0x12
            return
        raise Unimplemented(f"INT 10h AH=12h BL={call.bl:02X}h (alternate select function)")

    def write_string(self, call):
        page, mode = call.bh, call.al
        if mode > 3:
            raise Unimplemented(f"INT 10h AH=13h AL={mode:02X}h")
        saved = self.cursor(page)
        self.move(page, call.dh, call.dl)
        step = 2 if mode & 2 else 1
        data = call.read(call.linear(call.es, call.bp), call.cx * step)
        for i in range(0, len(data), step):
            ch = data[i]
            attr = data[i + 1] if step == 2 else call.bl
            self.teletype(ch, page, None if ch in (BEL, BS, CR, LF) else attr)
        self.mirror(data[::step])
        if not mode & 1:
            self.move(page, *saved)

    def display_combination(self, call):
        if call.al == 0x00:
            call.al = 0x1A
            call.bl = self.bios.rd8(bda.DCC_INDEX) or DCC_VGA_COLOR
            call.bh = 0x00
        elif call.al == 0x01:
            self.bios.wr8(bda.DCC_INDEX, call.bl)
            call.al = 0x1A
        else:
            raise Unimplemented(f"INT 10h AX={call.ax:04X}h")

    def vbe(self, call):
        """VESA BIOS Extensions: not provided. AX is left as is (AL != 4Fh: unsupported)."""
