; mb2test: a Multiboot2 kernel (tests/vmm/boot/test_multiboot.py, and the <multiboot> block of a
; Palacios configuration). Its header's address and entry tags load it at 1 MiB; an information
; request asks for the command line, the memory map and basic memory information. It checks
; EAX, then prints on COM1 one line per boot information tag it understands:
;   "mb2test: magic ok", "cmdline: <string>", "loader: <name>", "module: <string>",
;   "mem_upper: <hex>", "mmap: <entries in hex>", "acpi: RSD PTR" (old or new RSDP copy)
; and resets through the keyboard controller. Rebuild: scripts/build-test-guests
bits 32
org 0x100000
COM1 equ 0x3f8
header:
    dd 0xe85250d6                       ; magic
    dd 0                                ; architecture: i386
    dd header_end - header              ; header_length
    dd -(0xe85250d6 + 0 + (header_end - header))
    align 8
    dw 1, 0                             ; information request (required)
    dd 20
    dd 1, 6, 4                          ; command line, memory map, basic memory information
    align 8
    dw 2, 0                             ; address
    dd 24
    dd header, header, 0, bss_end
    align 8
    dw 3, 0                             ; entry address
    dd 12
    dd start
    align 8
    dw 0, 0                             ; end
    dd 8
header_end:
start:
    mov esp, stack_top
    cmp eax, 0x36d76289
    jne fail
    mov esi, msg_ok
    call puts
    call newline
    lea edi, [ebx + 8]                  ; the first tag
.tag:
    mov eax, [edi]
    test eax, eax
    jz reset
    cmp eax, 1
    je .cmdline
    cmp eax, 2
    je .loader
    cmp eax, 3
    je .module
    cmp eax, 4
    je .meminfo
    cmp eax, 6
    je .mmap
    cmp eax, 14
    je .acpi
    cmp eax, 15
    je .acpi
.next:
    mov eax, [edi + 4]
    add eax, 7
    and eax, ~7
    add edi, eax
    jmp .tag
.cmdline:
    mov esi, msg_cmdline
    call puts
    lea esi, [edi + 8]
    call puts
    call newline
    jmp .next
.loader:
    mov esi, msg_loader
    call puts
    lea esi, [edi + 8]
    call puts
    call newline
    jmp .next
.module:
    mov esi, msg_module
    call puts
    lea esi, [edi + 16]
    call puts
    call newline
    jmp .next
.meminfo:
    mov esi, msg_upper
    call puts
    mov eax, [edi + 12]
    call hex32
    call newline
    jmp .next
.mmap:
    mov esi, msg_mmap
    call puts
    mov eax, [edi + 4]
    sub eax, 16
    xor edx, edx
    div dword [edi + 8]                 ; entry_size
    call hex32
    call newline
    jmp .next
.acpi:
    mov esi, msg_acpi
    call puts
    mov ecx, 8
    lea esi, [edi + 8]
.sig:
    lodsb
    call putc
    loop .sig
    call newline
    jmp .next
%include "com1print32.inc"

msg_ok: db "mb2test: magic ok", 0
msg_fail: db "mb2test: bad magic", 10, 0
msg_cmdline: db "cmdline: ", 0
msg_loader: db "loader: ", 0
msg_module: db "module: ", 0
msg_upper: db "mem_upper: ", 0
msg_mmap: db "mmap: ", 0
msg_acpi: db "acpi: ", 0
    align 16
file_end:
stack_top equ file_end + 4096           ; the stack is bss: the loader zeroes it
bss_end equ stack_top
