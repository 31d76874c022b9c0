; gdbtest: a boot sector for the gdb stub's tests. From real mode through 32-bit protected mode
; into long mode, writing one variable in each mode, with a pending timer interrupt behind an STI.
; Ends with "GDBTEST DONE" on COM1 and cli; hlt. Label addresses: gdbtest.map (for the tests).
; Rebuild: scripts/build-test-guests
[map symbols gdbtest.map]
org 0x7c00
bits 16
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov word [var], 0x1616
real_written:
    mov al, 0x34                ; PIT channel 0, mode 2, count 1193 (about 1 kHz)
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    mov ecx, 0x400000           ; spin with IF=0: IRQ 0 becomes pending
.spin:
    dec ecx
    jnz .spin
    sti
    nop
after_sti:
    nop
    nop
    cli
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
to_pm:
    jmp 0x08:pm32

bits 32
pm32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov esp, 0x7c00
    mov dword [var], 0x32323232
pm_written:
    mov edi, 0x1000             ; PML4 0x1000, PDPT 0x2000, PD 0x3000: the first 2 MiB, also
    mov ecx, 3 * 1024           ; at 0xffff800000000000 (PML4 entry 256)
    xor eax, eax
    rep stosd
    mov dword [0x1000], 0x2003
    mov dword [0x1800], 0x2003
    mov dword [0x2000], 0x3003
    mov dword [0x3000], 0x83
    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, 0x1000
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
to_lm:
    jmp 0x18:lm64

bits 64
lm64:
    mov r8, 0x0123456789abcdef
    mov rax, 0xffff800000000000 + var
    mov rbx, 0x6464646464646464
    mov [rax], rbx
lm_written:
    mov rsi, done_msg
    mov dx, 0x3f8
.out:
    lodsb
    test al, al
    jz .end
    out dx, al
    jmp .out
.end:
    cli
    hlt
    jmp .end                    ; (a HLT that races with a timer stop is resumed)

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff       ; 0x08 flat 32-bit code
    dq 0x00cf92000000ffff       ; 0x10 flat data
    dq 0x00af9a000000ffff       ; 0x18 64-bit code
gdtr:
    dw gdtr - gdt - 1
    dd gdt
done_msg:
    db "GDBTEST DONE", 10, 0
align 8
var:
    dq 0
    times 510 - ($ - $$) db 0
    dw 0xaa55
