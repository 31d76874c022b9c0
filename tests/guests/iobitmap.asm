; iobitmap: port I/O at CPL 3 with IOPL 0 goes through the TSS I/O permission bitmap (Intel
; SDM vol. 1 19.5; engine patch 0006). Loaded at 0x7C00 (raw). Flat 32-bit protected mode, a
; 32-bit TSS at 0x30000 whose bitmap covers ports 0-0x3FF and allows only 0xE9; then IRET to
; ring 3 (IOPL 0). Prints through port 0xE9:
;   "R"      ring 3 wrote 0xE9: its bit is clear, the access goes through
;   "G "     OUT imm8 to 0xE0 (bit set) raises #GP(0)
;   "W "     a word OUT at 0xE9 also covers 0xEA (bit set): #GP(0)
;   "L "     IN at 0x400, past the bitmap's end (the TSS limit): #GP(0)
;   "S "     OUTSB to 0xE0: #GP(0)
;   "P"      with IOPL 3 (set by the #GP handler of a ring-3 HLT) OUT to 0xE0 needs no bitmap
;            (the P reaches 0xE0, then 0xE9)
;   "DONE"   then a second ring-3 HLT stops the guest from the #GP handler
; The #GP handler (ring 0, stack from the TSS) checks the error code, prints [gp_char] and a
; space, and skips [gp_skip] bytes. Rebuild: scripts/build-test-guests
org 0x7c00
%include "enter_pm32.inc"
TSS equ 0x30000
    mov esp, 0x90000
    mov edi, 0x20000                    ; IDT: 256 empty gates
    mov ecx, 512
    xor eax, eax
    rep stosd
    mov ebx, 13
    mov eax, gp_handler
    call setgate
    lidt [idtr]

    mov edi, TSS                        ; the TSS: ESP0/SS0, then the bitmap at offset 104
    mov ecx, 26
    xor eax, eax
    rep stosd
    mov dword [TSS + 4], 0x90000
    mov dword [TSS + 8], 0x10
    mov word [TSS + 0x66], 104
    mov edi, TSS + 104                  ; 128 bytes of bitmap (ports 0-0x3FF), all denied,
    mov ecx, 129                        ; and the trailing 0xFF byte
    mov al, 0xFF
    rep stosb
    and byte [TSS + 104 + 0xE9 / 8], ~(1 << (0xE9 % 8))   ; allow 0xE9
    mov ax, 0x28
    ltr ax

    push dword 0x23                     ; SS (ring 3 data)
    push dword 0x80000                  ; ESP
    push dword 0x2                      ; EFLAGS: IOPL 0, IF 0
    push dword 0x1B                     ; CS (ring 3 code)
    push dword ring3
    iret

ring3:
    mov ax, 0x23
    mov ds, ax
    mov es, ax
    mov al, 'R'
    out 0xe9, al
    mov byte [gp_char], 'G'
    mov byte [gp_skip], 2
    out 0xe0, al
    mov byte [gp_char], 'W'
    mov byte [gp_skip], 2
    mov dx, 0xe9
    out dx, ax
    mov byte [gp_char], 'L'
    mov byte [gp_skip], 1
    mov dx, 0x400
    in al, dx
    mov byte [gp_char], 'S'
    mov byte [gp_skip], 1
    mov dx, 0xe0
    mov esi, done
    outsb
    mov byte [gp_char], 'I'             ; the handler raises IOPL to 3 for the HLT's return
    mov byte [gp_skip], 1
    hlt
    mov al, 'P'
    out 0xe0, al                        ; no #GP now
    out 0xe9, al
    mov esi, done
.p: lodsb
    test al, al
    jz .h
    out 0xe9, al
    jmp .p
.h: mov byte [gp_char], 'Z'
    hlt

gp_handler:                             ; error code on the stack, then EIP, CS, EFLAGS
    pop eax
    test eax, eax
    jnz .bad
    mov al, [gp_char]
    cmp al, 'Z'
    je .stop
    cmp al, 'I'
    jne .print
    or dword [esp + 8], 3 << 12         ; IOPL 3 in the saved EFLAGS
    jmp .skip
.print:
    out 0xe9, al
    mov al, ' '
    out 0xe9, al
.skip:
    movzx eax, byte [gp_skip]
    add [esp], eax
    iret
.bad:
    mov al, '!'
    out 0xe9, al
.stop:
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

gp_char: db '?'
gp_skip: db 0
done: db "DONE", 0
gdt: dq 0, 0x00CF9A000000FFFF, 0x00CF92000000FFFF   ; ring 0 code 0x08, data 0x10
     dq 0x00CFFA000000FFFF, 0x00CFF2000000FFFF      ; ring 3 code 0x18, data 0x20
     dq 0x00008903000000E8                          ; TSS 0x28: base 0x30000, limit 232
gdtr: dw 6 * 8 - 1
      dd gdt
idtr: dw 256 * 8 - 1
      dd 0x20000
