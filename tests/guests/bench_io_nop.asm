; bench_io_nop: reference for bench_io_out.asm and bench_io_port80.asm (scripts/bench_vmm.py).
; A boot sector (BIOS loads it at 0x7C00). Real mode, interrupts off: 10^6 x `nop` where
; bench_io_out has `out dx, al` (both 1 byte; nothing else differs), timed with RDTSC.
; Results at 0x500: qword TSC before, qword TSC after. Ends with a keyboard-controller reset
; (port 0x64 <- 0xFE), so `v3 run` exits 0.
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
    mov dx, 0x3f8               ; COM1 THR (after RDTSC, which writes EDX)
    mov al, '.'
    align 16
.loop:
    nop                         ; in place of bench_io_out.asm's `out dx, al` (1 byte)
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
