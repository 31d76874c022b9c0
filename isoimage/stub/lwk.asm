; lwk.asm - the placeholder `lwk` kernel that `v3 isoimage --guest` puts on an ISO.
;
; A Palacios guest image (.dat) is not something a PC can boot by itself: it needs the VMM.
; When an ISO carries a guest image but no host kernel, the ISO still boots this stub so the
; user sees why nothing else happens. It is a Linux/x86 boot-protocol 2.04 bzImage: isolinux
; (or any Linux boot loader) loads it as it would load Linux. Its real-mode setup code
;   - prints a message through the BIOS (INT 10h, AH=0Eh teletype),
;   - programs COM1 (16550 at 0x3F8, 115200 baud 8N1) and prints the same message there,
;   - halts forever (cli; hlt loop). It never switches to protected mode.
;
; Rebuild (nasm is a build-time tool only; the binary is committed next to this file):
;   nasm -f bin -o isoimage/stub/lwk.bin isoimage/stub/lwk.asm
;
; File layout (the boot protocol's "bzImage"):
;   0x000-0x1F0  boot sector (unused by boot loaders; a stray direct boot just halts)
;   0x1F1-0x22F  setup header (protocol 2.04)
;   0x230-...    setup code and data, SETUP_SECTS sectors after the boot sector in all
;   then         a 512-byte "protected-mode kernel" (loaded at 1 MiB, never entered)

bits 16
org 0

SETUP_SECTS     equ 2                   ; sectors of setup code after the boot sector
PM_SIZE         equ 512                 ; size of the protected-mode part

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

; --- boot sector: only reached if someone boots the file as a floppy image -----------------
boot_sector:
        cli
.halt:  hlt
        jmp     .halt

        times 0x1F1 - ($ - $$) db 0

; --- setup header (offsets fixed by the boot protocol) ---------------------------------------
setup_sects:    db SETUP_SECTS          ; 0x1F1
root_flags:     dw 0                    ; 0x1F2
syssize:        dd PM_SIZE / 16         ; 0x1F4 size of the protected-mode part, 16-byte units
ram_size:       dw 0                    ; 0x1F8 obsolete
vid_mode:       dw 0xFFFF               ; 0x1FA "normal" video mode
root_dev:       dw 0                    ; 0x1FC
boot_flag:      dw 0xAA55               ; 0x1FE
; 0x200: the boot loader jumps here with CS = setup segment + 0x20
                jmp     short setup_start
header:         db "HdrS"               ; 0x202 magic
version:        dw 0x0204               ; 0x206 boot protocol 2.04
realmode_swtch: dd 0                    ; 0x208
start_sys_seg:  dw 0x1000               ; 0x20C obsolete
kernel_version: dw version_string - 0x200 ; 0x20E
type_of_loader: db 0                    ; 0x210 filled in by the loader
loadflags:      db 0x01                 ; 0x211 LOADED_HIGH: protected-mode part at 1 MiB
setup_move_size: dw 0x8000              ; 0x212
code32_start:   dd 0x100000             ; 0x214
ramdisk_image:  dd 0                    ; 0x218 filled in by the loader
ramdisk_size:   dd 0                    ; 0x21C filled in by the loader
bootsect_kludge: dd 0                   ; 0x220
heap_end_ptr:   dw 0                    ; 0x224
ext_loader_ver: db 0                    ; 0x226
ext_loader_type: db 0                   ; 0x227
cmd_line_ptr:   dd 0                    ; 0x228 filled in by the loader
initrd_addr_max: dd 0x37FFFFFF          ; 0x22C highest address the initrd may end at

; --- setup code ------------------------------------------------------------------------------
setup_start:
        cli
        mov     ax, cs
        sub     ax, 0x20                ; the segment of file offset 0: labels are file offsets
        mov     ds, ax
        mov     ss, ax
        mov     sp, 0x7FF0              ; our own stack inside the 32 KiB real-mode area
        sti
        cld

        call    uart_init
        mov     si, message
        call    print

        cli
.forever:
        hlt                             ; interrupts are off: stays here for good
        jmp     .forever

; uart_init: COM1 to 115200 baud, 8 data bits, no parity, 1 stop bit, FIFOs on
uart_init:
        mov     dx, COM1 + UART_IER
        xor     al, al
        out     dx, al                  ; no UART interrupts
        mov     dx, COM1 + UART_LCR
        mov     al, 0x80
        out     dx, al                  ; DLAB=1: divisor latch
        mov     dx, COM1 + UART_DLL
        mov     al, 1
        out     dx, al                  ; 115200 / 1
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
        out     dx, al                  ; DTR and RTS
        ret

; print: the NUL-terminated string at DS:SI to the screen (INT 10h) and to COM1
print:
        lodsb
        test    al, al
        jz      .done
        push    ax
        mov     ah, 0x0E                ; teletype output
        mov     bx, 0x0007              ; page 0, light grey
        int     0x10
        pop     ax
        call    uart_putc
        jmp     print
.done:
        ret

; uart_putc: AL to COM1, waiting (boundedly, in case there is no UART) for THRE
uart_putc:
        mov     ah, al
        mov     cx, 0xFFFF
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
        ret

message:
        db 13, 10
        db "v3 lwk stub: this ISO holds a Palacios (v3) guest image in initrd.img, not a bootable system.", 13, 10
        db "v3 lwk stub: run it with `v3 run` (e.g. v3 run image.iso). Halting.", 13, 10, 0
version_string:
        db "v3tools lwk stub 1.0", 0

        times (SETUP_SECTS + 1) * 512 - ($ - $$) db 0

; --- the protected-mode part: loaded at 1 MiB, never entered (setup halts first) ------------
bits 32
pm_entry:
        cli
.halt:  hlt
        jmp     .halt
        times PM_SIZE - ($ - pm_entry) db 0
