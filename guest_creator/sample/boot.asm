; boot.asm - the sample guest of `v3 init`: an El Torito no-emulation boot program.
;
; The BIOS loads it (4 virtual sectors = 2 KiB) at 0000:7C00 and jumps there with DL = the boot
; drive. In real mode it
;   - programs COM1 (16550 at 0x3F8) directly: 115200 baud, 8N1, FIFOs on,
;   - prints a banner and a few facts (INT 12h base memory, boot drive, INT 11h equipment word)
;     to COM1 and through the BIOS (INT 10h, AH=0Eh teletype),
;   - resets the machine through the keyboard controller (write 0xFE to port 0x64: pulse the
;     CPU reset line). The VMM (and QEMU -no-reboot) treat the reset as a clean end.
;
; Rebuild (nasm is a build-time tool only; the binary is committed next to this file):
;   nasm -f bin -o guest_creator/sample/boot.bin guest_creator/sample/boot.asm

bits 16
org 0x7C00

COM1            equ 0x3F8
UART_THR        equ 0                   ; transmit holding register (DLAB=0)
UART_DLL        equ 0                   ; divisor latch low (DLAB=1)
UART_IER        equ 1                   ; interrupt enable (DLAB=0)
UART_DLM        equ 1                   ; divisor latch high (DLAB=1)
UART_FCR        equ 2                   ; FIFO control
UART_LCR        equ 3                   ; line control
UART_MCR        equ 4                   ; modem control
UART_LSR        equ 5                   ; line status
LSR_THRE        equ 0x20                ; transmitter holding register empty

KBC_STATUS      equ 0x64                ; i8042 status (read) / command (write)
KBC_IBF         equ 0x02                ; input buffer full: controller busy
KBC_RESET       equ 0xFE                ; pulse output port bit 0: CPU reset

start:
        cli
        xor     ax, ax
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     sp, 0x7C00
        jmp     0x0000:.flat            ; some BIOSes enter at 07C0:0000
.flat:
        sti
        cld
        mov     [boot_drive], dl

        call    uart_init
        mov     si, banner
        call    print

        mov     si, msg_memory          ; INT 12h: KiB of conventional memory in AX
        call    print
        int     0x12
        call    print_dec
        mov     si, msg_kib
        call    print

        mov     si, msg_drive           ; DL at entry: the CD's BIOS drive number
        call    print
        mov     al, [boot_drive]
        call    print_hex8
        mov     si, crlf
        call    print

        mov     si, msg_equipment       ; INT 11h: BIOS equipment list word
        call    print
        int     0x11
        push    ax
        mov     al, ah
        call    print_hex8
        pop     ax
        call    print_hex8
        mov     si, crlf
        call    print

        mov     si, msg_reset
        call    print

        cli
        mov     cx, 0xFFFF              ; wait (boundedly) until the controller takes commands
.kbc_wait:
        in      al, KBC_STATUS
        test    al, KBC_IBF
        jz      .kbc_ready
        loop    .kbc_wait
.kbc_ready:
        mov     al, KBC_RESET
        out     KBC_STATUS, al
.halt:                                  ; only if the reset did not happen
        hlt
        jmp     .halt

; uart_init: COM1 to 115200 baud, 8 data bits, no parity, 1 stop bit
uart_init:
        mov     dx, COM1 + UART_IER
        xor     al, al
        out     dx, al                  ; no UART interrupts
        mov     dx, COM1 + UART_LCR
        mov     al, 0x80
        out     dx, al                  ; DLAB=1
        mov     dx, COM1 + UART_DLL
        mov     al, 1
        out     dx, al                  ; divisor 1: 115200 baud
        mov     dx, COM1 + UART_DLM
        xor     al, al
        out     dx, al
        mov     dx, COM1 + UART_LCR
        mov     al, 0x03
        out     dx, al                  ; DLAB=0, 8N1
        mov     dx, COM1 + UART_FCR
        mov     al, 0x07
        out     dx, al                  ; enable and clear the FIFOs
        mov     dx, COM1 + UART_MCR
        mov     al, 0x03
        out     dx, al                  ; DTR, RTS
        ret

; print: the NUL-terminated string at DS:SI, to the screen and to COM1
print:
        lodsb
        test    al, al
        jz      .done
        call    putc
        jmp     print
.done:
        ret

; putc: AL to the screen (INT 10h teletype) and to COM1; preserves AX
putc:
        push    ax
        push    bx
        mov     ah, 0x0E
        mov     bx, 0x0007              ; page 0, light grey
        int     0x10
        pop     bx
        pop     ax
        push    ax
        push    cx
        push    dx
        mov     ah, al
        mov     cx, 0xFFFF              ; bounded wait: a missing UART must not hang us
        mov     dx, COM1 + UART_LSR
.wait:
        in      al, dx
        test    al, LSR_THRE
        jnz     .ready
        loop    .wait
.ready:
        mov     dx, COM1 + UART_THR
        mov     al, ah
        out     dx, al
        pop     dx
        pop     cx
        pop     ax
        ret

; print_dec: AX as an unsigned decimal number
print_dec:
        mov     bx, 10
        xor     cx, cx
.divide:
        xor     dx, dx
        div     bx
        push    dx                      ; digits come out least significant first
        inc     cx
        test    ax, ax
        jnz     .divide
.emit:
        pop     ax
        add     al, '0'
        call    putc
        loop    .emit
        ret

; print_hex8: AL as two hex digits
print_hex8:
        push    ax
        shr     al, 4
        call    .nibble
        pop     ax
        and     al, 0x0F
.nibble:
        and     al, 0x0F
        add     al, '0'
        cmp     al, '9'
        jbe     .out
        add     al, 'A' - '9' - 1
.out:
        jmp     putc

banner          db 13, 10, "v3 sample guest: hello from the boot CD", 13, 10, 0
msg_memory      db "v3 sample guest: base memory (INT 12h): ", 0
msg_kib         db " KiB", 13, 10, 0
msg_drive       db "v3 sample guest: boot drive (DL): 0x", 0
msg_equipment   db "v3 sample guest: equipment word (INT 11h): 0x", 0
msg_reset       db "v3 sample guest: done, resetting through the keyboard controller", 13, 10, 0
crlf            db 13, 10, 0
boot_drive      db 0

        times 2048 - ($ - $$) db 0      ; exactly the 4 sectors the boot catalog loads
