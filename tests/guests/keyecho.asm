; keyecho: a boot sector that echoes every key the BIOS reads (INT 16h AH=00h) to COM1 until
; it reads 'q', then prints "KEYECHO END" and ends with cli; hlt. Used by the monitor's
; sendkey test. Rebuild: scripts/build-test-guests
org 0x7c00
bits 16
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    sti
    mov dx, 0x3f8
    mov si, ready
    call puts
.key:
    xor ah, ah
    int 0x16
    out dx, al
    cmp al, 'q'
    jne .key
    mov si, done
    call puts
.end:
    cli
    hlt
    jmp .end
puts:
    lodsb
    test al, al
    jz .ret
    out dx, al
    jmp puts
.ret:
    ret
ready:
    db "KEYECHO READY", 10, 0
done:
    db 10, "KEYECHO END", 10, 0
    times 510 - ($ - $$) db 0
    dw 0xaa55
