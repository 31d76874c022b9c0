; Boot sector exercising the built-in BIOS through the real ROM stubs (test_boot.py).
; Rebuild: nasm -f bin -o biostest.bin biostest.asm
; Prints through INT 10h teletype (mirrored to COM1 by --bios-console serial):
;   "drive=80" ext-read message from LBA 1, E820 "SMAP" check, a 100 ms INT 15h wait,
;   the tick count moving, then "BIOS-DONE".
bits 16
org 0x7C00
start:
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov [drive], dl
    mov si, msg_hello
    call puts
    mov al, [drive]
    call puthex
    call crlf
    ; INT 13h extensions present?
    mov ah, 0x41
    mov bx, 0x55AA
    mov dl, [drive]
    int 0x13
    jc fail
    cmp bx, 0xAA55
    jne fail
    ; extended read of LBA 1 to 0000:8000
    mov si, dap
    mov ah, 0x42
    mov dl, [drive]
    int 0x13
    jc fail
    mov si, 0x8000
    call puts
    call crlf
    ; E820 first entry
    xor ebx, ebx
    mov edx, 0x534D4150
    mov eax, 0xE820
    mov ecx, 20
    mov di, 0x9000
    int 0x15
    jc fail
    cmp eax, 0x534D4150
    jne fail
    mov si, msg_e820
    call puts
    ; ticks before, wait 200 ms, ticks after
    xor ah, ah
    int 0x1A
    mov [t0], dx
    mov ah, 0x86
    mov cx, 0x0003
    mov dx, 0x0D40          ; 200000 us
    int 0x15
    jc fail
    xor ah, ah
    int 0x1A
    cmp dx, [t0]
    je fail
    mov si, msg_done
    call puts
.halt:
    hlt
    jmp .halt
fail:
    mov si, msg_fail
    call puts
    jmp start.halt

puts:                       ; DS:SI zero-terminated
    lodsb
    test al, al
    jz .out
    mov ah, 0x0E
    xor bh, bh
    int 0x10
    jmp puts
.out:
    ret
crlf:
    mov al, 13
    mov ah, 0x0E
    int 0x10
    mov al, 10
    mov ah, 0x0E
    int 0x10
    ret
puthex:                     ; AL as two hex digits
    push ax
    shr al, 4
    call .digit
    pop ax
    and al, 0x0F
.digit:
    add al, '0'
    cmp al, '9'
    jbe .print
    add al, 7
.print:
    mov ah, 0x0E
    int 0x10
    ret

dap:    db 0x10, 0
        dw 1
        dw 0x8000, 0
        dq 1
drive:  db 0
t0:     dw 0
msg_hello: db "drive=", 0
msg_e820:  db "e820 ok", 13, 10, 0
msg_done:  db "BIOS-DONE", 13, 10, 0
msg_fail:  db "BIOS-FAIL", 13, 10, 0
times 510-($-$$) db 0
dw 0xAA55
