; bench_io_out: port-I/O exit cost, measured by scripts/bench_vmm.py.
; A boot sector (BIOS loads it at 0x7C00). Real mode, interrupts off: 10^6 x `out dx, al`
; to COM1's THR (port 0x3F8; run with --serial null), timed with RDTSC. Results at 0x500:
; qword TSC before, qword TSC after. Ends with a keyboard-controller reset (port 0x64 <- 0xFE),
; so `v3 run` exits 0. bench_io_nop.asm is the reference: the same bytes with a NOP in place
; of the OUT; bench_io_port80.asm writes to port 0x80 instead (no device behind it).
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
