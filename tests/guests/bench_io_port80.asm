; bench_io_port80: port-I/O exit cost with no device work, measured by scripts/bench_vmm.py.
; A boot sector (BIOS loads it at 0x7C00). Real mode, interrupts off: 10^6 x `out dx, al`
; to port 0x80 (POST codes, a known-ignored port: only the exit path runs), timed with RDTSC.
; Results at 0x500: qword TSC before, qword TSC after. Ends with a keyboard-controller reset
; (port 0x64 <- 0xFE), so `v3 run` exits 0. Differs from bench_io_out.asm only in the port.
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov ecx, 1000000
    rdtsc
    mov [0x500], eax
    mov [0x504], edx
    mov dx, 0x80                ; POST code port (after RDTSC, which writes EDX)
    mov al, '.'
    align 16
.loop:
    out dx, al                  ; the exit being measured (1 byte, like the NOP it replaces)
    dec ecx
    jnz .loop
    rdtsc
    mov [0x508], eax
    mov [0x50c], edx
reset:
    mov al, 0xfe                ; i8042: pulse the CPU reset line
    out 0x64, al
    hlt
    jmp reset
    times 510 - ($ - $$) db 0
    dw 0xaa55
