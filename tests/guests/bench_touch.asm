; bench_touch: host memory of a sparsely used guest, measured by scripts/bench_vmm.py.
; A boot sector (BIOS loads it at 0x7C00). Enters flat 32-bit protected mode, interrupts
; off, writes one byte in each 4 KiB page of the 16 MiB from 1 MiB to 17 MiB (4096 pages),
; then resets through the keyboard controller (port 0x64 <- 0xFE), so `v3 run` exits 0.
; Run with -m 1024 and with -m 32: the peak RSS should differ by little (RAM is lazy).
; Rebuild: scripts/build-test-guests
FIRST_PAGE equ 0x100000
PAGES      equ 4096
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
    mov edi, FIRST_PAGE
    mov ecx, PAGES
.touch:
    mov byte [edi], 0x5a
    add edi, 4096
    dec ecx
    jnz .touch
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

    times 510 - ($ - $$) db 0
    dw 0xaa55
