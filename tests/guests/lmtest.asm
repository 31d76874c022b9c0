; lmtest: IA-32e (long mode) event delivery and SYSCALL/SYSRET, checked by the v3 VMM's tests.
; Loaded at 0x7C00 (raw, longer than a boot sector). Enters long mode through protected mode,
; prints through port 0xE9 and ends with "DONE" then cli; hlt at CPL 0.
;   PF02@00400000  kernel write to a not-present page: error code 2, CR2
;   PF11@001FF000  instruction fetch from an execute-disable page (EFER.NXE): error code 0x11
;   IST 0009EFD8   a gate naming IST1 switches stacks even at CPL 0; IST1 = 0x9F008 aligned down
;   AL 0008FFC8    no stack switch: RSP 0x8FFF8 aligned down to 16 bytes, then 5 qwords
;   PF04@00400000  user read of a not-present page
;   S3 CS=003B SS=0033 RSP=00097FD8  INT 0x80 from ring 3: RSP0 from the TSS, SS:RSP pushed
;   GP0000 GP040A  HLT at ring 3; INT 0x81 through a DPL-0 gate
;   SC64 ...       SYSCALL from 64-bit ring 3 (LSTAR), SFMASK clears IF/DF/TF/NT; o64 SYSRET
;   SC32 ...       SYSCALL from compatibility-mode ring 3 (CSTAR); 32-bit SYSRET
;   S3 CS=002B ... INT 0x80 from compatibility mode, delivered through the 64-bit IDT
; Rebuild: scripts/build-test-guests
org 0x7c00
%include "enter_pm32.inc"
    mov esp, 0x90000
    ; page tables at 0x10000: PML4, PDPT, PD, PT (4 KiB pages for the first 2 MiB, user
    ; accessible; 0x1FF000 execute-disable), one 2 MiB page at 0x200000, nothing from 0x400000
    mov edi, 0x10000
    mov ecx, 4 * 1024
    xor eax, eax
    rep stosd
    mov dword [0x10000], 0x11000 | 7
    mov dword [0x11000], 0x12000 | 7
    mov dword [0x12000], 0x13000 | 7
    mov dword [0x12008], 0x200000 | 0x87
    mov edi, 0x13000
    mov eax, 7
    mov ecx, 512
.pt:
    mov [edi], eax
    add eax, 0x1000
    add edi, 8
    loop .pt
    mov dword [0x13000 + 0x1FF * 8 + 4], 0x80000000      ; XD
    mov eax, cr4
    or eax, 0x20                        ; PAE
    mov cr4, eax
    mov eax, 0x10000
    mov cr3, eax
    mov ecx, 0xC0000080                 ; EFER: SCE, LME, NXE
    rdmsr
    or eax, (1 << 0) | (1 << 8) | (1 << 11)
    wrmsr
    mov eax, cr0
    or eax, 0x80000000
    mov cr0, eax
    jmp 0x18:lm64

bits 64
lm64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, 0x90000
    ; IDT at 0x20000, 256 16-byte gates
    mov rdi, 0x20000
    mov rcx, 512
    xor eax, eax
    rep stosq
    mov edi, 14
    lea rax, [rel pf_handler]
    mov ebx, 0x8e00
    call setgate
    mov edi, 13
    lea rax, [rel gp_handler]
    call setgate
    mov edi, 0x41
    lea rax, [rel ist_handler]
    mov ebx, 0x8e01                     ; IST1
    call setgate
    mov edi, 0x42
    lea rax, [rel al_handler]
    mov ebx, 0x8e00
    call setgate
    mov edi, 0x80
    lea rax, [rel sys_handler]
    mov ebx, 0xef00                     ; trap gate, DPL 3
    call setgate
    mov edi, 0x81
    lea rax, [rel sys_handler]
    mov ebx, 0x8e00                     ; DPL 0: INT 0x81 from ring 3 is a #GP
    call setgate
    mov edi, 0x82
    lea rax, [rel done_handler]
    mov ebx, 0xee00
    call setgate
    lidt [rel idtr]
    ; 64-bit TSS at 0x21000: RSP0 and IST1
    mov rdi, 0x21000
    mov rcx, 13
    xor eax, eax
    rep stosq
    mov qword [0x21000 + 4], 0x98000
    mov qword [0x21000 + 0x24], 0x9F008
    mov ax, 0x40
    ltr ax
    ; SYSCALL: STAR (kernel CS 0x18, SS 0x20; user base 0x28), LSTAR, CSTAR, SFMASK
    mov ecx, 0xC0000081
    xor eax, eax
    mov edx, (0x28 << 16) | 0x18
    wrmsr
    mov ecx, 0xC0000082
    lea rax, [rel syscall64]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xC0000083
    lea rax, [rel syscall32]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, 0xC0000084
    mov eax, 0x4700                     ; TF IF DF NT
    xor edx, edx
    wrmsr

    mov rbx, 0x400000
    mov [rbx], eax                      ; #PF 2 (89 03)
    mov rbx, 0x1FF000
    call rbx                            ; #PF 0x11 (fetch from an XD page)
    int 0x41
    mov rsp, 0x8FFF8
    int 0x42
    mov rsp, 0x90000
    ; to ring 3 with IRETQ
    push 0x33
    push 0x7F000
    push 0x202
    push 0x3b
    lea rax, [rel user64]
    push rax
    iretq

; --- ring 3, 64-bit --------------------------------------------------------------------------
user64:
    mov rbx, 0x400000
    mov eax, [rbx]                      ; #PF 4 (8b 03)
    int 0x80
    hlt                                 ; #GP(0)
    int 0x81                            ; #GP(0x81*8+2)
    std
    syscall
after_sc64:
    cld
    jmp far dword [rel compat_ptr]

bits 32
compat32:                               ; ring 3, compatibility mode
    syscall
after_sc32:
    int 0x80
    int 0x82

bits 64
; --- ring 0 ----------------------------------------------------------------------------------
setgate:                                ; edi = vector, rax = handler, bx = type/attributes | IST
    shl edi, 4
    add rdi, 0x20000
    mov [rdi], ax
    mov word [rdi + 2], 0x18
    mov [rdi + 4], bx
    shr rax, 16
    mov [rdi + 6], ax
    shr rax, 16
    mov [rdi + 8], eax
    mov dword [rdi + 12], 0
    ret

print:                                  ; rsi = zero-terminated string
    push rax
.l: lodsb
    test al, al
    jz .d
    out 0xe9, al
    jmp .l
.d: pop rax
    ret

hex:                                    ; rax = value, ecx = digits (clobbers rax, rcx, rdx, r8)
    mov rdx, rax
    mov r8d, ecx
.l: dec r8d
    lea ecx, [r8d * 4]
    mov rax, rdx
    shr rax, cl
    and eax, 0xf
    add al, '0'
    cmp al, '9'
    jbe .o
    add al, 7
.o: out 0xe9, al
    test r8d, r8d
    jnz .l
    ret

putc:
    out 0xe9, al
    ret

%macro SAVE 0
    push rax
    push rcx
    push rdx
    push rsi
    push r8
%endmacro
%macro RESTORE 0
    pop r8
    pop rsi
    pop rdx
    pop rcx
    pop rax
%endmacro
FRAME equ 40                            ; bytes pushed by SAVE

pf_handler:
    SAVE
    lea rsi, [rel pf_msg]
    call print
    mov rax, [rsp + FRAME]              ; error code
    mov ecx, 2
    call hex
    mov al, '@'
    call putc
    mov rax, cr2
    mov ecx, 8
    call hex
    mov al, ' '
    call putc
    test qword [rsp + FRAME], 0x10
    jz .skip
    mov rax, [rsp + FRAME + 32]         ; a fetch fault after CALL: return to the caller
    mov rcx, [rax]
    mov [rsp + FRAME + 8], rcx
    add qword [rsp + FRAME + 32], 8
    jmp .out
.skip:
    add qword [rsp + FRAME + 8], 2
.out:
    RESTORE
    add rsp, 8
    iretq

gp_handler:
    SAVE
    lea rsi, [rel gp_msg]
    call print
    mov rax, [rsp + FRAME]
    mov ecx, 4
    call hex
    mov al, ' '
    call putc
    mov rax, [rsp + FRAME + 8]
    cmp byte [rax], 0xf4
    jne .two
    inc qword [rsp + FRAME + 8]
    jmp .out
.two:
    add qword [rsp + FRAME + 8], 2
.out:
    RESTORE
    add rsp, 8
    iretq

ist_handler:
    mov [rel seen_rsp], rsp
    SAVE
    lea rsi, [rel ist_msg]
    jmp show_rsp
al_handler:
    mov [rel seen_rsp], rsp
    SAVE
    lea rsi, [rel al_msg]
show_rsp:
    call print
    mov rax, [rel seen_rsp]
    mov ecx, 8
    call hex
    mov al, ' '
    call putc
    RESTORE
    iretq

sys_handler:                            ; INT 0x80 from ring 3
    mov [rel seen_rsp], rsp
    SAVE
    lea rsi, [rel s_msg]
    call print
    mov rax, [rsp + FRAME + 8]          ; CS
    and eax, 3
    add al, '0'
    call putc
    lea rsi, [rel cs_msg]
    call print
    mov rax, [rsp + FRAME + 8]
    mov ecx, 4
    call hex
    lea rsi, [rel ss_msg]
    call print
    mov rax, [rsp + FRAME + 32]
    mov ecx, 4
    call hex
    lea rsi, [rel rsp_msg]
    call print
    mov rax, [rel seen_rsp]
    mov ecx, 8
    call hex
    mov al, ' '
    call putc
    RESTORE
    iretq

syscall64:                              ; from 64-bit ring 3, on the user's stack
    SAVE
    lea rsi, [rel sc64_msg]
    call print
    call show_segs_flags
    lea rsi, [rel r11_msg]
    call print
    mov rax, r11
    and eax, 0x4700
    mov ecx, 4
    call hex
    lea rsi, [rel rcx_msg]
    call print
    lea rax, [rel after_sc64]
    mov rcx, [rsp + 24]                 ; the saved RCX
    call ok_or_bad
    RESTORE
    o64 sysret

syscall32:                              ; from compatibility-mode ring 3
    SAVE
    lea rsi, [rel sc32_msg]
    call print
    call show_segs_flags
    lea rsi, [rel rcx_msg]
    call print
    lea rax, [rel after_sc32]
    mov rcx, [rsp + 24]
    call ok_or_bad
    RESTORE
    sysret                              ; 32-bit form: back to compatibility mode

show_segs_flags:                        ; " CS=xxxx SS=xxxx FL=xxxx"
    lea rsi, [rel cs_msg]
    call print
    mov ax, cs
    movzx eax, ax
    mov ecx, 4
    call hex
    lea rsi, [rel ss_msg]
    call print
    mov ax, ss
    movzx eax, ax
    mov ecx, 4
    call hex
    lea rsi, [rel fl_msg]
    call print
    pushfq
    pop rax
    and eax, 0x4700
    mov ecx, 4
    call hex
    ret

ok_or_bad:                              ; compare rcx with rax
    cmp rax, rcx
    lea rsi, [rel ok_msg]
    je .p
    lea rsi, [rel bad_msg]
.p: jmp print

done_handler:
    lea rsi, [rel done_msg]
    call print
    cli
    hlt

pf_msg: db "PF", 0
gp_msg: db "GP", 0
ist_msg: db "IST ", 0
al_msg: db "AL ", 0
s_msg: db "S", 0
cs_msg: db " CS=", 0
ss_msg: db " SS=", 0
rsp_msg: db " RSP=", 0
fl_msg: db " FL=", 0
r11_msg: db " R11=", 0
rcx_msg: db " RCX=", 0
sc64_msg: db "SC64", 0
sc32_msg: db "SC32", 0
ok_msg: db "ok ", 0
bad_msg: db "bad ", 0
done_msg: db "DONE", 0
align 8
seen_rsp: dq 0
compat_ptr: dd compat32
            dw 0x2b
align 8
gdt: dq 0
     dq 0x00CF9A000000FFFF               ; 0x08 code32 (the way in)
     dq 0x00CF92000000FFFF               ; 0x10 data
     dq 0x00AF9A000000FFFF               ; 0x18 kernel code64 (STAR[47:32])
     dq 0x00CF92000000FFFF               ; 0x20 kernel data (SYSCALL SS)
     dq 0x00CFFA000000FFFF               ; 0x28 user code32 (STAR[63:48])
     dq 0x00CFF2000000FFFF               ; 0x30 user data
     dq 0x00AFFA000000FFFF               ; 0x38 user code64
     dq 0x0000890210000067, 0            ; 0x40 64-bit TSS at 0x21000
gdt_end:
gdtr: dw gdt_end - gdt - 1
      dq gdt
idtr: dw 256 * 16 - 1
      dq 0x20000
