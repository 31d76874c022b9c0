; smc_disk: a disk read over code that already ran must run the new code.
; A boot sector (the primary master disk's sector 0, booted by the built-in BIOS). The routine
; at 0x600 is run (and so translated), then overwritten by a read and run again:
;   I   INT 13h AH=02h reads LBA 1 over it (the BIOS, that is the VMM, writes guest RAM)
;   P   an ATA PIO READ SECTORS of LBA 2 with rep insw over it (the guest writes it)
; LBA 1 holds "mov al, 'I'; ret", LBA 2 "mov al, 'P'; ret"; the old routines print lower case.
; Prints "SMC-DISK <I|i><P|p>" and a newline to COM1, then resets through the keyboard controller.
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
CMD     equ 0x1f0
COM1    equ 0x3f8
R       equ 0x600

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    cld
    mov si, banner
.banner:
    lodsb
    test al, al
    jz .go
    call putc
    jmp .banner
.go:
    mov si, old_i
    call install
    mov bx, R
    mov ax, 0x0201              ; read 1 sector
    mov cx, 0x0002              ; cylinder 0, sector 2 (LBA 1)
    mov dx, 0x0080              ; head 0, first disk
    int 0x13
    call R
    call putc

    mov si, old_p
    call install
    mov dx, CMD + 6
    mov al, 0xe0                ; master, LBA
    out dx, al
    mov dx, CMD + 2
    mov al, 1                   ; one sector
    out dx, al
    inc dx
    mov al, 2                   ; LBA 2
    out dx, al
    inc dx
    xor al, al
    out dx, al
    inc dx
    out dx, al
    mov dx, CMD + 7
    mov al, 0x20                ; READ SECTORS
    out dx, al
.busy:
    in al, dx
    test al, 0x80
    jnz .busy
    test al, 0x08
    jz .busy
    mov di, R
    mov cx, 256
    mov dx, CMD
    rep insw
    call R
    call putc
    mov al, 10
    call putc
    mov al, 0xfe                ; reset
    out 0x64, al
    cli
    hlt

install:                        ; copy the 3-byte routine at SI to R and run it twice
    mov di, R
    mov cx, 3
    rep movsb
    call R
    call R
    ret

putc:
    mov dx, COM1
    out dx, al
    ret

old_i: mov al, 'i'
       ret
old_p: mov al, 'p'
       ret
banner: db "SMC-DISK ", 0

times 510 - ($ - $$) db 0
dw 0xaa55
