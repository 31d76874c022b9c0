; apictest: LAPIC timer (periodic and one-shot), self-IPI, IOAPIC level-triggered pins with
; remote IRR and an edge-triggered ISA line through the IRQ 0 -> pin 2 override.
; Loaded at 0x7C00 (raw). Flat 32-bit protected mode; prints through port 0xE9. The test
; attaches LAPIC and IOAPIC and two ports: writing 0xE0 sets the level of IOAPIC pin 16,
; writing 0xE1 pulses ISA IRQ 0. Expected output:
;   "TTTTTP C O Z LRRLR- M E I DONE"
;   T x5   periodic timer, divide by 16, initial count 125: every 2 ms of virtual time
;   C      the one-shot timer's current count reads its initial count right after the write
;   O      the one-shot fires (3000 counts divided by 1: 3 ms later)
;   Z      the current count then reads 0
;   LRRLR- a level-triggered pin held asserted: delivered with remote IRR set, sent again
;          after the EOI; the second handler lowers the pin, and the EOI clears remote IRR
;   M      TMR shows the vector as level-triggered while in service
;   E      IRQ 0 arrives on IOAPIC pin 2
;   I      a fixed self-IPI through the ICR
; Rebuild: scripts/build-test-guests
org 0x7c00
%include "enter_pm32.inc"
LAPIC equ 0xFEE00000
IOAPIC equ 0xFEC00000
    mov esp, 0x90000
    mov edi, 0x20000                    ; IDT: 256 empty gates
    mov ecx, 512
    xor eax, eax
    rep stosd
    mov ebx, 0x40
    mov eax, timer_handler
    call setgate
    mov ebx, 0x41
    mov eax, oneshot_handler
    call setgate
    mov ebx, 0x50
    mov eax, level_handler
    call setgate
    mov ebx, 0x52
    mov eax, edge_handler
    call setgate
    mov ebx, 0x60
    mov eax, ipi_handler
    call setgate
    lidt [idtr]

    mov dword [LAPIC + 0xF0], 0x1FF     ; SVR: enabled, spurious vector 0xFF
    mov dword [LAPIC + 0x350], 0x10000  ; LINT0 masked
    ; periodic timer
    mov dword [LAPIC + 0x3E0], 0x3      ; divide by 16
    mov dword [LAPIC + 0x320], 0x20040  ; periodic, vector 0x40
    mov dword [LAPIC + 0x380], 125
    sti
.wait:
    hlt
    cmp dword [ticks], 5
    jb .wait
    mov dword [LAPIC + 0x320], 0x10040  ; masked
    mov dword [LAPIC + 0x380], 0        ; stopped
    mov al, 'P'
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    ; one-shot timer
    mov dword [LAPIC + 0x3E0], 0xB      ; divide by 1
    mov dword [LAPIC + 0x320], 0x41
    mov dword [LAPIC + 0x380], 3000
    cmp dword [LAPIC + 0x390], 3000
    jne .no_c
    mov esi, c_msg
    call print
.no_c:
    hlt
    cmp byte [oneshot], 1
    jne .no_c
    cmp dword [LAPIC + 0x390], 0
    jne .no_z
    mov esi, z_msg
    call print
.no_z:
    ; IOAPIC pin 16: level-triggered, active low (PCI), vector 0x50, physical destination 0
    mov dword [IOAPIC], 0x10 + 2 * 16 + 1
    mov dword [IOAPIC + 0x10], 0
    mov dword [IOAPIC], 0x10 + 2 * 16
    mov dword [IOAPIC + 0x10], 0xA050
    ; pin 2 (ISA IRQ 0): edge, vector 0x52
    mov dword [IOAPIC], 0x10 + 2 * 2 + 1
    mov dword [IOAPIC + 0x10], 0
    mov dword [IOAPIC], 0x10 + 2 * 2
    mov dword [IOAPIC + 0x10], 0x52
    mov al, 1
    out 0xe0, al                        ; assert pin 16
.wait2:
    cmp dword [levels], 2
    jb .wait2
    mov al, ' '
    out 0xe9, al
    mov al, [tmr_seen]
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    out 0xe1, al                        ; pulse ISA IRQ 0
.wait3:
    cmp byte [edge], 1
    jne .wait3
    mov dword [LAPIC + 0x310], 0
    mov dword [LAPIC + 0x300], 0x40060  ; self, fixed, vector 0x60
.wait4:
    cmp byte [ipi], 1
    jne .wait4
    mov esi, done_msg
    call print
    cli
    hlt

setgate:                                ; eax = handler, ebx = vector
    lea edi, [0x20000 + ebx * 8]
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov word [edi + 4], 0x8e00
    shr eax, 16
    mov [edi + 6], ax
    ret

print:
    push eax
.l: lodsb
    test al, al
    jz .d
    out 0xe9, al
    jmp .l
.d: pop eax
    ret

remote_irr:                             ; AL = 'R' if pin 16's remote IRR is set, else '-'
    mov dword [IOAPIC], 0x10 + 2 * 16
    mov eax, [IOAPIC + 0x10]
    test eax, 1 << 14
    mov al, 'R'
    jnz .r
    mov al, '-'
.r: ret

timer_handler:
    push eax
    inc dword [ticks]
    mov al, 'T'
    out 0xe9, al
    mov dword [LAPIC + 0xB0], 0
    pop eax
    iret

oneshot_handler:
    push eax
    mov byte [oneshot], 1
    mov al, 'O'
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    mov dword [LAPIC + 0xB0], 0
    pop eax
    iret

level_handler:
    push eax
    inc dword [levels]
    mov al, 'L'
    out 0xe9, al
    call remote_irr
    out 0xe9, al
    test dword [LAPIC + 0x1A0], 1 << 16 ; TMR bit of vector 0x50
    jz .no_m
    mov byte [tmr_seen], 'M'
.no_m:
    cmp dword [levels], 2
    jb .eoi
    mov al, 0
    out 0xe0, al                        ; deassert pin 16
.eoi:
    mov dword [LAPIC + 0xB0], 0
    call remote_irr
    out 0xe9, al
    pop eax
    iret

edge_handler:
    push eax
    mov byte [edge], 1
    mov al, 'E'
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    mov dword [LAPIC + 0xB0], 0
    pop eax
    iret

ipi_handler:
    push eax
    mov byte [ipi], 1
    mov al, 'I'
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    mov dword [LAPIC + 0xB0], 0
    pop eax
    iret

c_msg: db "C ", 0
z_msg: db "Z ", 0
done_msg: db "DONE", 0
align 4
ticks: dd 0
levels: dd 0
oneshot: db 0
edge: db 0
ipi: db 0
tmr_seen: db '?'
align 8
gdt: dq 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
gdtr: dw 23
      dd gdt
idtr: dw 256 * 8 - 1
      dd 0x20000
