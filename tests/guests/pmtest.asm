; pmtest: protected-mode event delivery, checked by the v3 VMM's tests.
; Loaded at 0x7C00 (raw, not a boot sector: it is longer than 512 bytes).
; Prints through port 0xE9 and ends with "DONE" then cli; hlt at CPL 0.
; Expected output: "S3 PF4@00200000 PF7@00201000 GP040A GP0000 DONE"
; Rebuild: scripts/build-test-guests (nasm -f bin pmtest.asm -o pmtest.bin)
org 0x7c00
start:
%include "enter_pm32.inc"
    mov fs, ax
    mov gs, ax
    mov esp, 0x90000
    ; TSS: ring-0 stack for privilege changes
    mov dword [tss + 4], 0x88000
    mov word [tss + 8], 0x10
    mov eax, tss                        ; patch the TSS descriptor base
    mov [gdt + 0x28 + 2], ax
    shr eax, 16
    mov [gdt + 0x28 + 4], al
    mov [gdt + 0x28 + 7], ah
    mov ax, 0x28
    ltr ax
    ; IDT at 0x20000
    mov edi, 0x20000
    mov ecx, 256 * 2
    xor eax, eax
    rep stosd
    mov eax, pf_handler
    mov ebx, 14
    mov dx, 0x8e00                      ; interrupt gate, DPL 0
    call setgate
    mov eax, gp_handler
    mov ebx, 13
    call setgate
    mov eax, sys_handler
    mov ebx, 0x80
    mov dx, 0xef00                      ; trap gate, DPL 3
    call setgate
    mov eax, sys_handler
    mov ebx, 0x81
    mov dx, 0x8e00                      ; DPL 0: INT 0x81 from ring 3 is a #GP
    call setgate
    lidt [idtr]
    ; paging: identity map 4 MiB with user pages; 0x200000 not present, 0x201000 read-only
    mov edi, 0x31000
    mov eax, 7
    mov ecx, 1024
.fill:
    stosd
    add eax, 0x1000
    loop .fill
    mov dword [0x31000 + 0x200 * 4], 0
    mov dword [0x31000 + 0x201 * 4], 0x201000 | 5
    mov edi, 0x30000
    xor eax, eax
    mov ecx, 1024
    rep stosd
    mov dword [0x30000], 0x31000 | 7
    mov eax, 0x30000
    mov cr3, eax
    mov eax, cr0
    or eax, 0x80010000                  ; PG | WP
    mov cr0, eax
    ; to ring 3
    push dword 0x23                     ; SS
    push dword 0x70000                  ; ESP
    push dword 0x2                      ; EFLAGS
    push dword 0x1b                     ; CS
    push dword user
    iret

user:
    mov eax, 'S'
    int 0x80
    mov eax, [0x200000]                 ; #PF, error 4
    mov dword [0x201000], 1             ; #PF, error 7
    int 0x81                            ; #GP, error 0x40A
    hlt                                 ; #GP(0) at CPL 3 -> the end
    jmp $

; eax = handler, ebx = vector, dx = type/DPL word
setgate:
    lea edi, [0x20000 + ebx * 8]
    mov [edi], ax
    mov word [edi + 2], 0x08
    mov [edi + 4], dx
    shr eax, 16
    mov [edi + 6], ax
    ret

sys_handler:                            ; prints AL and the CPL it came from
    out 0xe9, al
    mov eax, [esp + 4]                  ; interrupted CS
    and al, 3
    add al, '0'
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
    iret

pf_handler:
    push eax
    push ebx
    mov al, 'P'
    out 0xe9, al
    mov al, 'F'
    out 0xe9, al
    mov eax, [esp + 8]                  ; error code
    add al, '0'
    out 0xe9, al
    mov al, '@'
    out 0xe9, al
    mov eax, cr2
    call print_hex
    mov al, ' '
    out 0xe9, al
    mov eax, cr2                        ; fix the page: present, user, writable
    mov ebx, eax
    shr ebx, 12
    and eax, 0xfffff000
    or eax, 7
    mov [0x31000 + ebx * 4], eax
    mov eax, cr2
    invlpg [eax]
    pop ebx
    pop eax
    add esp, 4                          ; drop the error code
    iret

gp_handler:
    push eax
    mov al, 'G'
    out 0xe9, al
    mov al, 'P'
    out 0xe9, al
    mov eax, [esp + 4]                  ; error code
    shl eax, 16
    call print_hex4
    mov al, ' '
    out 0xe9, al
    cmp dword [esp + 4], 0
    je .done
    add dword [esp + 8], 2              ; skip the faulting INT 0x81
    pop eax
    add esp, 4
    iret
.done:
    mov esi, done_msg
.p: lodsb
    test al, al
    jz .h
    out 0xe9, al
    jmp .p
.h: cli
    hlt
    jmp .h

print_hex:                              ; eax, 8 digits
    mov ecx, 8
    jmp print_digits
print_hex4:                             ; the high 16 bits of eax, 4 digits
    mov ecx, 4
print_digits:
    rol eax, 4
    push eax
    and al, 0xf
    add al, '0'
    cmp al, '9'
    jbe .d
    add al, 7
.d: out 0xe9, al
    pop eax
    loop print_digits
    ret

done_msg: db "DONE", 0

align 8
gdt:
    dq 0
    dq 0x00CF9A000000FFFF               ; 0x08 ring-0 code
    dq 0x00CF92000000FFFF               ; 0x10 ring-0 data
    dq 0x00CFFA000000FFFF               ; 0x18 ring-3 code
    dq 0x00CFF2000000FFFF               ; 0x20 ring-3 data
    dq 0x0000890000000067               ; 0x28 TSS (base patched at run time)
gdt_end:
gdtr: dw gdt_end - gdt - 1
      dd gdt
idtr: dw 0x7ff
      dd 0x20000
align 4
tss: times 104 db 0
