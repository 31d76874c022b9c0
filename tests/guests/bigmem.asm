; bigmem: the E820 memory map and RAM up to its top, checked by the v3 VMM's tests
; (tests/vmm/test_bigmem.py, a 1 GiB guest). A boot sector booted by the built-in BIOS.
; Real mode: INT 15h E820h, summing the usable (type 1) ranges and noting the highest end of one.
; Then flat 32-bit protected mode: writes `address ^ 0x5AA5C33C` at each address of `addrs` (the
; last two are computed from the top of RAM), reads them all back, and reads one dword at the top.
; Prints to COM1 (THR at 0x3F8; the VMM's UART transmits at once):
;   "E820 <usable bytes, 16 hex digits> <top of RAM>"
;   "OK" or "BAD <address> <value read>" for the first mismatch
;   "TOP <dword read at the top of RAM>"
;   "BIGMEM-DONE"                                then a reset through the keyboard controller
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
COM1    equ 0x3f8
SMAP    equ 0x534d4150
PATTERN equ 0x5aa5c33c
entry   equ 0x7e00          ; the E820 record (20 bytes), just past the boot sector

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    cld
    xor ebx, ebx                ; E820 continuation value
.e820:
    mov eax, 0xe820
    mov edx, SMAP
    mov ecx, 20
    mov di, entry
    int 0x15
    jc .e820_end
    cmp eax, SMAP
    jne .e820_end
    cmp dword [entry + 16], 1   ; usable RAM
    jne .skip
    mov eax, [entry + 8]
    add [usable], eax
    mov eax, [entry + 12]
    adc [usable + 4], eax
    mov eax, [entry]
    add eax, [entry + 8]
    cmp eax, [top]
    jbe .skip
    mov [top], eax
.skip:
    test ebx, ebx
    jnz .e820
.e820_end:
    lgdt [gdtr]
    mov eax, cr0
    or al, 1
    mov cr0, eax
    jmp 0x08:pm

bits 32
pm:
    mov ax, 0x10
    mov ds, ax
    mov ss, ax
    mov esp, 0x7c00
    mov esi, msg_e820
    call puts
    mov eax, [usable + 4]
    call hex32
    mov eax, [usable]
    call hex32sp
    mov eax, [top]
    call hex32
    call newline

    mov eax, [top]
    sub eax, 4
    mov [addr_last], eax        ; the last dword of RAM
    sub eax, 0x100000 - 4
    mov [addr_last_mb], eax     ; and one MiB below the top
    mov esi, addrs
.write:
    lodsd
    test eax, eax
    jz .written
    mov edx, eax
    xor edx, PATTERN
    mov [eax], edx
    jmp .write
.written:
    mov esi, addrs
.check:
    lodsd
    test eax, eax
    jz .ok
    mov edx, eax
    xor edx, PATTERN
    cmp [eax], edx
    je .check
    mov ebx, eax
    mov esi, msg_bad
    call puts
    mov eax, ebx
    call hex32sp
    mov eax, [ebx]
    call hex32
    jmp .top
.ok:
    mov esi, msg_ok
    call puts
.top:
    call newline
    mov esi, msg_top
    call puts
    mov eax, [top]
    mov eax, [eax]              ; past the end of RAM
    call hex32
    call newline
    mov esi, msg_done
    call puts
    mov al, 0xfe                ; pulse the reset line through the i8042
    out 0x64, al
.hang:
    hlt
    jmp .hang

puts:
    lodsb
    test al, al
    jz .ret
    call putc
    jmp puts
.ret:
    ret

hex32sp:
    call hex32
    mov al, ' '
    jmp putc
hex32:
    mov ecx, 8
.digit:
    rol eax, 4
    push eax
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .put
    add al, 7
.put:
    call putc
    pop eax
    loop .digit
    ret
newline:
    mov al, 10
putc:
    mov dx, COM1
    out dx, al
    ret

msg_e820: db "E820 ", 0
msg_ok:   db "OK", 0
msg_bad:  db "BAD ", 0
msg_top:  db "TOP ", 0
msg_done: db "BIGMEM-DONE", 10, 0

align 4
usable:   dq 0
top:      dd 0
addrs:    dd 0x00100000, 0x00200000, 0x01000000, 0x10000000, 0x20000000, 0x30000000
addr_last_mb: dd 0
addr_last:    dd 0
          dd 0
gdtr:     dw gdt_end - gdt - 1
          dd gdt
gdt:      dq 0
          dq 0x00cf9a000000ffff  ; 0x08: flat 32-bit code
          dq 0x00cf92000000ffff  ; 0x10: flat data
gdt_end:

    times 510 - ($ - $$) db 0
    dw 0xaa55
