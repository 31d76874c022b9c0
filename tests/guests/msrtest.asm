; msrtest: RDMSR/WRMSR as the VMM models them (vmm/cpu/msr.py, engine patch 0003).
; Loaded at 0x7C00 (raw). Flat 32-bit protected mode; prints through port 0xE9:
;   "A<hex> "    IA32_APIC_BASE as read (EDX:EAX, 16 hex digits)
;   "E<hex> "    EFER (an MSR the engine implements itself) after setting NXE
;   "P<hex> "    IA32_PERF_CTL (0x199, a plain register) after writing 0x1_00001D00 to it
;   "C<hex> "    MSR_POWER_CTL (0x1FC, a plain register) after writing 2 (C1E enable) to it:
;                a value equal to the engine's own code for #GP must still read back as itself
;   "G "         RDMSR of an MSR no processor has raises #GP(0) (error code 0)
;   "W "         WRMSR with a reserved bit set in IA32_APIC_BASE raises #GP
;   "X "         WRMSR setting the x2APIC flag (not advertised) raises #GP
;   "D<hex> "    IA32_APIC_BASE after clearing its enable flag
;   "S<hex> "    the LAPIC's spurious-vector register then (software-enable bit gone)
;   "DONE"
; The #GP handler prints 'G' ... through [gp_char], checks the error code, and skips the
; two-byte RDMSR/WRMSR. Rebuild: scripts/build-test-guests
org 0x7c00
%include "enter_pm32.inc"
LAPIC equ 0xFEE00000
    mov esp, 0x90000
    mov edi, 0x20000                    ; IDT: 256 empty gates
    mov ecx, 512
    xor eax, eax
    rep stosd
    mov ebx, 13
    mov eax, gp_handler
    call setgate
    lidt [idtr]

    mov al, 'A'
    out 0xe9, al
    mov ecx, 0x1B
    rdmsr
    call hex64

    mov ecx, 0xC0000080                 ; EFER: set NXE (bit 11), read it back
    rdmsr
    or eax, 1 << 11
    wrmsr
    rdmsr
    push eax
    mov al, 'E'
    out 0xe9, al
    pop eax
    call hex64

    mov ecx, 0x199                      ; IA32_PERF_CTL: a value with a high half
    mov eax, 0x1D00
    mov edx, 1
    wrmsr
    xor eax, eax
    xor edx, edx
    rdmsr
    push eax
    mov al, 'P'
    out 0xe9, al
    pop eax
    call hex64

    mov ecx, 0x1FC                      ; MSR_POWER_CTL = 2
    mov eax, 2
    xor edx, edx
    wrmsr
    xor eax, eax
    rdmsr
    push eax
    mov al, 'C'
    out 0xe9, al
    pop eax
    call hex64

    mov byte [gp_char], 'G'
    mov ecx, 0x4B564D99                 ; no such MSR
    rdmsr
    mov byte [gp_char], 'W'
    mov ecx, 0x1B
    mov eax, 0xFEE00900 | 1             ; bit 0 is reserved
    xor edx, edx
    wrmsr
    mov byte [gp_char], 'X'
    mov eax, 0xFEE00900 | (1 << 10)     ; x2APIC enable
    wrmsr

    mov ecx, 0x1B
    mov eax, 0xFEE00100                 ; BSP kept, global enable cleared
    xor edx, edx
    wrmsr
    rdmsr
    push eax
    mov al, 'D'
    out 0xe9, al
    pop eax
    call hex64
    mov al, 'S'
    out 0xe9, al
    mov eax, [LAPIC + 0xF0]
    xor edx, edx
    call hex64
    mov esi, done
    call print
    cli
    hlt

gp_handler:                             ; error code on the stack, then EIP
    pop eax
    test eax, eax
    jnz .bad
    mov al, [gp_char]
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    add dword [esp], 2
    iret
.bad:
    mov al, '!'
    out 0xe9, al
    cli
    hlt

hex64:                                  ; print EDX:EAX as 16 hex digits and a space
    push eax
    mov eax, edx
    call hex32
    pop eax
    call hex32
    mov al, ' '
    out 0xe9, al
    ret
hex32:
    mov ecx, 8
.l: rol eax, 4
    push eax
    and al, 0xF
    add al, '0'
    cmp al, '9'
    jbe .o
    add al, 'A' - '9' - 1
.o: out 0xe9, al
    pop eax
    loop .l
    ret

setgate:                                ; eax = handler, ebx = vector
    lea edi, [0x20000 + ebx * 8]
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    ret

print:
    lodsb
    test al, al
    jz .d
    out 0xe9, al
    jmp print
.d: ret

gp_char: db '?'
done: db "DONE", 0
gdt: dq 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
gdtr: dw 23
      dd gdt
idtr: dw 256 * 8 - 1
      dd 0x20000
