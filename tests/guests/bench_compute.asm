; bench_compute: guest compute speed, measured by scripts/bench_vmm.py.
; A boot sector (BIOS loads it at 0x7C00). Enters flat 32-bit protected mode, interrupts
; off, then runs the benchmark: 3x10^8 iterations of add/rol/xor/dec/jnz timed with RDTSC.
; Results at 0x500: qword TSC before, qword TSC after, dword EBX, dword EAX (the checksum).
; Ends with a keyboard-controller reset (port 0x64 <- 0xFE), so `v3 run` exits 0.
; The benchmark's bounds are stored at offset 0x1F6 (dword start, dword end, linear), so the
; script can run the very same bytes under a bare Unicorn engine in UC_MODE_32.
; Rebuild: scripts/build-test-guests
ITERATIONS equ 300000000
bits 16
org 0x7c00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    lgdt [gdtr]
    mov eax, cr0
    or al, 1                    ; CR0.PE
    mov cr0, eax
    jmp 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7c00
bench_begin:
    rdtsc
    mov [0x500], eax
    mov [0x504], edx
    mov ecx, ITERATIONS
    mov eax, 1
    xor ebx, ebx
    align 16
.loop:
    add ebx, eax
    rol eax, 3
    xor eax, ebx
    dec ecx
    jnz .loop
    mov [0x510], ebx
    mov [0x514], eax
    rdtsc
    mov [0x508], eax
    mov [0x50c], edx
bench_end:
reset:
    mov al, 0xfe                ; i8042: pulse the CPU reset line
    out 0x64, al
    hlt
    jmp reset

    align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08: code, base 0, 4 GiB, 32-bit
    dq 0x00cf92000000ffff       ; 0x10: data, base 0, 4 GiB
gdtr:
    dw gdtr - gdt - 1
    dd gdt

    times 0x1f6 - ($ - $$) db 0
    dd bench_begin, bench_end
    dw 0xaa55
