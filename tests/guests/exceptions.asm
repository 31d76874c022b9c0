; exceptions: faults and traps reach the guest's own protected-mode handlers.
; Loaded at 0x7C00 with no BIOS (raw, may exceed 512 bytes). Prints through port 0xE9:
;   #DE (div by 0), #UD (ud2), #NM (fninit with CR0.TS), #DB (TF single step),
;   #BP (int3), #OF (into with OF set), #BR (bound out of range)
; Expected output: "DE UD NM DB BP OF BR OK" then cli; hlt.
; Rebuild: scripts/build-test-guests
org 0x7c00
%include "enter_pm32.inc"
    mov esp, 0x90000
    mov edi, 0x20000                    ; IDT: 32 interrupt gates
    mov ecx, 64
    xor eax, eax
    rep stosd
    mov ebx, 0
    mov eax, de_handler
    call setgate
    mov ebx, 1
    mov eax, db_handler
    call setgate
    mov ebx, 3
    mov eax, bp_handler
    call setgate
    mov ebx, 4
    mov eax, of_handler
    call setgate
    mov ebx, 5
    mov eax, br_handler
    call setgate
    mov ebx, 6
    mov eax, ud_handler
    call setgate
    mov ebx, 7
    mov eax, nm_handler
    call setgate
    lidt [idtr]

    xor ecx, ecx
    div ecx                             ; #DE (fault, 2 bytes)
    ud2                                 ; #UD (fault, 2 bytes)
    mov eax, cr0
    or al, 8                            ; CR0.TS
    mov cr0, eax
    fninit                              ; #NM; the handler clears TS and it runs again
    pushfd
    or dword [esp], 0x100               ; TF
    popfd
    nop                                 ; #DB after this instruction (trap)
    nop
    int3                                ; #BP (trap)
    mov al, 0x7f
    add al, 1                           ; OF set
    into                                ; #OF (trap)
    mov eax, 5
    bound eax, [bounds]                 ; #BR (fault): 5 is outside [0, 3]
    mov esi, ok_msg
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

print:                                  ; esi = zero-terminated string
    push eax
.l: lodsb
    test al, al
    jz .d
    out 0xe9, al
    jmp .l
.d: pop eax
    ret

de_handler:
    mov esi, de_msg
    call print
    add dword [esp], 2                  ; skip the div
    iret
ud_handler:
    mov esi, ud_msg
    call print
    add dword [esp], 2                  ; skip the ud2
    iret
nm_handler:
    mov esi, nm_msg
    call print
    clts                                ; fninit runs again, now without a fault
    iret
db_handler:
    mov esi, db_msg
    call print
    and dword [esp + 8], ~0x100         ; clear TF in the saved EFLAGS
    iret
bp_handler:
    mov esi, bp_msg
    call print
    iret
of_handler:
    mov esi, of_msg
    call print
    iret
br_handler:
    mov esi, br_msg
    call print
    add dword [esp], 6                  ; skip the bound (62 05 disp32)
    iret

de_msg: db "DE ", 0
ud_msg: db "UD ", 0
nm_msg: db "NM ", 0
db_msg: db "DB ", 0
bp_msg: db "BP ", 0
of_msg: db "OF ", 0
br_msg: db "BR ", 0
ok_msg: db "OK", 0
align 4
bounds: dd 0, 3
align 8
gdt: dq 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF
gdtr: dw 23
      dd gdt
idtr: dw 32 * 8 - 1
      dd 0x20000
