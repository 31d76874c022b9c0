; mbtest: a multiboot (version 1) kernel for `v3 run --kernel` (tests/vmm/boot/test_multiboot.py).
; The multiboot header's address fields (flag 16) load it at 1 MiB. It checks EAX, then prints
; on COM1: "mbtest: magic ok", the command line, mem_upper in hex, the first line of module 0
; and the boot loader's name, then resets through the keyboard controller.
; Rebuild: scripts/build-test-guests
bits 32
org 0x100000
COM1 equ 0x3f8
header:
    dd 0x1badb002                       ; magic
    dd 0x00010003                       ; page-align modules, memory info, address fields
    dd -(0x1badb002 + 0x00010003)       ; checksum
    dd header                           ; header_addr
    dd header                           ; load_addr
    dd 0                                ; load_end_addr: the whole file
    dd bss_end                          ; bss_end_addr
    dd start                            ; entry_addr
start:
    mov esp, stack_top
    cmp eax, 0x2badb002
    jne fail
    mov esi, msg_ok
    call puts
    mov esi, [ebx + 16]                 ; cmdline
    call puts
    call newline
    mov esi, msg_upper
    call puts
    mov eax, [ebx + 8]                  ; mem_upper (KiB)
    call hex32
    call newline
    test dword [ebx], 1 << 3            ; modules present?
    jz .names
    mov esi, msg_mod
    call puts
    mov esi, [ebx + 24]                 ; mods_addr
    mov esi, [esi]                      ; mod_start
.line:
    lodsb
    cmp al, 10
    je .eol
    call putc
    jmp .line
.eol:
    call newline
.names:
    mov esi, msg_loader
    call puts
    mov esi, [ebx + 64]                 ; boot_loader_name
    call puts
    call newline
%include "com1print32.inc"

msg_ok:     db "mbtest: magic ok, command line: ", 0
msg_upper:  db "mbtest: mem_upper ", 0
msg_mod:    db "mbtest: module: ", 0
msg_loader: db "mbtest: loader: ", 0
msg_fail:   db "mbtest: bad magic in EAX", 10, 0
    align 16
file_end:
stack_top equ file_end + 4096           ; the stack is bss: the loader zeroes it
bss_end equ stack_top
