; smc: self-modifying code must run the new code, however the guest changes it.
; Loaded at 0x7C00 by the bare machine; prints one letter per case through port 0xE9 (upper
; case: the new code ran; lower case: a stale translation ran), then cli; hlt.
; Expected output: "ABCDE"
;   A  a store into the next instructions of the same block
;   B  a data store into a routine that already ran, on the same page
;   C  rep movsb of a new body over a routine that already ran
;   D  PAE paging with NX: two stores through a non-executable alias of a code page
;   E  a store through another executable alias of that page
; Rebuild: scripts/build-test-guests
org 0x7c00
start:
%include "enter_pm32.inc"
    mov esp, 0x90000

    ; A: same block
    mov byte [a_imm + 1], 'A'
a_imm:
    mov al, 'a'
    out 0xe9, al

    ; B: a data store into a routine that ran
    call rb
    mov byte [rb + 1], 'B'
    call rb
    out 0xe9, al

    ; C: rep movsb over a routine that ran
    call rc
    mov esi, rc_new
    mov edi, rc
    mov ecx, rc_new_end - rc_new
    rep movsb
    call rc
    out 0xe9, al

    ; D, E: one physical code page (0x30000) seen at 0x200000 (executable) and 0x201000 (NX)
    mov esi, f1
    mov edi, 0x30000
    mov ecx, f1_end - f1
    rep movsb
    mov esi, f1
    mov edi, 0x30100
    mov ecx, f1_end - f1
    rep movsb
    ; PDPT at 0x40000 -> PD at 0x41000; PD[0] -> PT 0x42000 (identity 0..2 MiB), PD[1] -> PT 0x43000
    mov edi, 0x40000
    xor eax, eax
    mov ecx, 0x4000 / 4
    rep stosd
    mov dword [0x40000], 0x41001
    mov dword [0x41000], 0x42003
    mov dword [0x41008], 0x43003
    mov edi, 0x42000
    mov eax, 3
    mov ecx, 512
.ident:
    mov [edi], eax
    add eax, 0x1000
    add edi, 8
    loop .ident
    mov dword [0x43000], 0x30003            ; 0x200000: code page, executable
    mov dword [0x43008], 0x30003            ; 0x201000: code page, NX
    mov dword [0x4300c], 0x80000000
    mov ecx, 0xc0000080                     ; EFER.NXE
    rdmsr
    or eax, 1 << 11
    wrmsr
    mov eax, cr4
    or eax, 1 << 5                          ; PAE
    mov cr4, eax
    mov eax, 0x40000
    mov cr3, eax
    mov eax, cr0
    or eax, 1 << 31
    mov cr0, eax
    jmp .paged
.paged:
    mov ebx, 0x200000
    call ebx                                ; f1 and f2 run from the executable mapping
    mov ebx, 0x200100
    call ebx
    mov byte [0x201000 + 1], 5              ; both patched through the NX alias
    mov byte [0x201100 + 1], 7
    mov ebx, 0x200000
    call ebx
    mov dl, al
    mov ebx, 0x200100
    call ebx
    cmp dl, 5
    jne .d_bad
    cmp al, 7
    jne .d_bad
    mov al, 'D'
    jmp .d_out
.d_bad:
    mov al, 'd'
.d_out:
    out 0xe9, al
    mov byte [0x30000 + 1], 9               ; through the identity mapping, also executable
    mov ebx, 0x200000
    call ebx
    cmp al, 9
    mov al, 'E'
    je .e_out
    mov al, 'e'
.e_out:
    out 0xe9, al
    cli
    hlt

rb:
    mov al, 'b'
    ret
rc:
    mov al, 'c'
    ret
    nop
    nop
rc_new:
    mov al, 'C'
    ret
rc_new_end:
f1:
    mov eax, 1
    ret
f1_end:

align 8
gdt:
    dq 0
    dq 0x00cf9a000000ffff
    dq 0x00cf92000000ffff
gdt_end:
gdtr: dw gdt_end - gdt - 1
      dd gdt
