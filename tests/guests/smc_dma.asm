; smc_dma: the VMM writes guest RAM (as a device's DMA does) over code that ran, with paging on
; and the code page mapped at a virtual address other than its physical one.
; Loaded at 0x7C00 by the bare machine. Physical 0x300000 holds "mov eax, 1; ret", run from
; virtual 0x400000 (virtual 0x300000 is not mapped). Then `out 0xea, al` asks the test to write
; "mov eax, 2; ret" at physical 0x300000 through the VMM's guest-memory interface, and the
; routine runs again. Prints both results through port 0xE9: expected "12".
; Rebuild: scripts/build-test-guests
org 0x7c00
start:
%include "enter_pm32.inc"
    mov esp, 0x90000
    mov esi, f
    mov edi, 0x300000
    mov ecx, f_end - f
    rep movsb
    mov edi, 0x20000                        ; PD 0x20000, PT0 0x21000, PT1 0x22000
    xor eax, eax
    mov ecx, 0x3000 / 4
    rep stosd
    mov dword [0x20000], 0x21003            ; 0..2 MiB identity (PT0, 512 entries)
    mov dword [0x20004], 0x22003            ; 4 MiB.. -> PT1
    mov edi, 0x21000
    mov eax, 3
    mov ecx, 512
.ident:
    stosd
    add eax, 0x1000
    loop .ident
    mov dword [0x22000], 0x300003           ; virtual 0x400000 -> physical 0x300000
    mov eax, 0x20000
    mov cr3, eax
    mov eax, cr0
    or eax, 1 << 31
    mov cr0, eax
    jmp .paged
.paged:
    mov ebx, 0x400000
    call ebx
    add al, '0'
    out 0xe9, al
    out 0xea, al                            ; the test rewrites physical 0x300000
    call ebx
    add al, '0'
    out 0xe9, al
    cli
    hlt
f:
    mov eax, 1
    ret
f_end:

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff
    dq 0x00cf92000000ffff
gdt_end:
gdtr: dw gdt_end - gdt - 1
      dd gdt
