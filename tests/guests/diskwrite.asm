; diskwrite: a boot sector that writes sector 2 of its own disk (drive 80h) through INT 13h,
; reads it back and compares; prints "DISKWRITE OK" (or "DISKWRITE FAILED") on COM1, then
; cli; hlt. Used by the -snapshot tests (the image must stay untouched).
; Rebuild: scripts/build-test-guests
org 0x7c00
bits 16
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    cld
    mov di, 0x8000
    mov cx, 512
    mov al, 'W'
    rep stosb
    mov ax, 0x0301              ; write one sector
    mov cx, 0x0002              ; cylinder 0, sector 2
    mov dx, 0x0080              ; head 0, drive 80h
    mov bx, 0x8000
    int 0x13
    jc fail
    mov ax, 0x0201              ; read it back
    mov cx, 0x0002
    mov dx, 0x0080
    mov bx, 0x9000
    int 0x13
    jc fail
    mov si, 0x9000
    mov di, 0x8000
    mov cx, 512
    repe cmpsb
    jne fail
    mov si, ok
    jmp print
fail:
    mov si, bad
print:
    mov dx, 0x3f8
.next:
    lodsb
    test al, al
    jz .end
    out dx, al
    jmp .next
.end:
    cli
    hlt
    jmp .end
ok:
    db "DISKWRITE OK", 10, 0
bad:
    db "DISKWRITE FAILED", 10, 0
    times 510 - ($ - $$) db 0
    dw 0xaa55
