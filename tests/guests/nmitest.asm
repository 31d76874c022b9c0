; nmitest: an NMI sent to self through the LAPIC's ICR (delivery mode 100b) is taken with
; IF=0 and wakes a HLT. Loaded at 0x7C00 (raw), flat 32-bit protected mode, prints through
; port 0xE9: "S" before the ICR write, "N" from the NMI handler (vector 2), "R" after the
; handler's IRET; a second NMI with IF=0 wakes the HLT (or comes just before it): "N" again,
; then "W" and "DONE". An interrupt the LAPIC raises inside a translated block is taken at the
; block's end (Unicorn stops between blocks), hence the jump after the first ICR write.
; Rebuild: scripts/build-test-guests
org 0x7c00
%include "enter_pm32.inc"
LAPIC equ 0xFEE00000
    mov esp, 0x90000
    mov edi, 0x20000                    ; IDT: 256 empty gates
    mov ecx, 512
    xor eax, eax
    rep stosd
    lea edi, [0x20000 + 2 * 8]          ; vector 2: the NMI handler
    mov eax, nmi_handler
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    lidt [idtr]
    cli
    mov al, 'S'
    out 0xe9, al
    mov dword [LAPIC + 0x310], 0        ; ICR high: destination 0 (ourselves)
    mov dword [LAPIC + 0x300], 0x4400   ; ICR low: NMI, shorthand self
    jmp .taken                          ; (the VMM delivers at the end of a translated block)
.taken:
    mov al, 'R'
    out 0xe9, al
    mov dword [LAPIC + 0x300], 0x4400
    hlt                                 ; the NMI ends the halt even with IF=0
    mov al, 'W'
    out 0xe9, al
    mov esi, done
.p: lodsb
    test al, al
    jz .h
    out 0xe9, al
    jmp .p
.h: cli
    hlt

nmi_handler:
    push eax
    mov al, 'N'
    out 0xe9, al
    pop eax
    iret

done: db "DONE", 0
gdt: dq 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
gdtr: dw 23
      dd gdt
idtr: dw 256 * 8 - 1
      dd 0x20000
