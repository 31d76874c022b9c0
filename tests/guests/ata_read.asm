; ata_read: PIO reads from the primary master ATA disk through the IDE ports (no INT 13h),
; checked by the v3 VMM's tests (tests/vmm/test_storage_guests.py).
; A boot sector (the disk's own sector 0, booted by the built-in BIOS). Polling only (nIEN=1).
; Prints to COM1 (THR at 0x3F8; the VMM's UART transmits at once):
;   "ID <words 61:60> <words 101:100>"           IDENTIFY DEVICE: LBA28 and LBA48 sector counts
;   "<label> <s1> <s2> <status> <blocks>"        one line per read in `reads` below; s1/s2 are a
;                                                Fletcher-style sum over the data as dwords
;                                                (s1 += d; s2 += s1, both mod 2^32), status is
;                                                the status register after the command, blocks
;                                                the DRQ blocks transferred (4 hex digits)
;   "<label> E<error> <status> <blocks>"         if the drive reports ERR
;   "ATA-DONE"                                   then a reset through the keyboard controller
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
CMD     equ 0x1f0               ; primary command block
CTL     equ 0x3f6               ; primary device control
COM1    equ 0x3f8
BUF     equ 0x600

start:
    cli
    xor ax, ax
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov sp, 0x7c00
    cld
    mov dx, CTL
    mov al, 0x02                ; nIEN: no interrupts, we poll
    out dx, al
    mov dx, CMD + 6
    mov al, 0xa0                ; master
    out dx, al
    inc dx
    mov al, 0xec                ; IDENTIFY DEVICE
    out dx, al
    call wait_drq
    jc .ident_failed
    mov di, BUF
    mov cx, 256
    mov dx, CMD
    rep insw
.ident_failed:
    mov si, msg_id
    call puts
    mov eax, [BUF + 60 * 2]
    call hex32sp
    mov eax, [BUF + 100 * 2]
    call hex32
    call newline

    mov si, reads
.next:
    lodsb                       ; label, 0 ends the table
    test al, al
    jz .done
    call putc
    mov bx, 2                   ; sector count, LBA low/mid/high: HOB bytes first, then low
.twice:
    mov dx, CMD + 2
    mov cx, 4
.regs:
    lodsb
    out dx, al
    inc dx
    loop .regs
    dec bx
    jnz .twice
    lodsb                       ; device/head
    out dx, al
    inc dx
    lodsb                       ; command
    mov bl, al
    lodsw                       ; sectors to read
    mov cx, ax
    mov al, bl
    out dx, al
    push si
    call read_sum
    pop si
    jmp .next
.done:
    mov si, msg_done
    call puts
    mov al, 0xfe                ; pulse the reset line through the i8042
    out 0x64, al
.hang:
    hlt
    jmp .hang

; Read CX sectors of 512 bytes, one DRQ block each; print the sums, status and block count.
read_sum:
    xor ebx, ebx                ; s1
    xor edi, edi                ; s2
    xor bp, bp                  ; blocks transferred
    jcxz .end
.sector:
    push cx
    call wait_drq
    pop cx
    jc .error
    push cx
    mov cx, 128
    mov dx, CMD
.dword:
    in eax, dx
    add ebx, eax
    add edi, ebx
    loop .dword
    pop cx
    inc bp
    loop .sector
.end:
    mov al, ' '
    call putc
    mov eax, ebx
    call hex32sp
    mov eax, edi
    call hex32sp
    jmp .status
.error:
    mov si, msg_err
    call puts
    mov dx, CMD + 1
    in al, dx
    call hex8sp
.status:
    mov dx, CMD + 7
    in al, dx
    call hex8sp
    mov ax, bp
    call hex16
%include "com1print.inc"

; Wait until BSY clears; CF set if ERR is set or DRQ is not.
wait_drq:
    mov dx, CMD + 7
.busy:
    in al, dx
    test al, 0x80
    jnz .busy
    test al, 0x01
    jnz .fail
    test al, 0x08
    jz .fail
    clc
    ret
.fail:
    stc
    ret


msg_id:   db "ID ", 0
msg_err:  db " E", 0
msg_done: db "ATA-DONE", 10, 0

; label; HOB count, LBA 7:0, 15:8, 23:16; count, LBA 7:0, 15:8, 23:16; device; command; sectors
reads:
    ; READ SECTORS, LBA28 0x0ABCDE01 (bits 27:24 in the device register), 8 sectors
    db "L", 0, 0, 0, 0, 8, 0x01, 0xde, 0xbc, 0xea, 0x20
    dw 8
    ; READ SECTORS, CHS cylinder 0x0102 head 2 sector 5, 3 sectors
    db "C", 0, 0, 0, 0, 3, 5, 0x02, 0x01, 0xa2, 0x20
    dw 3
    ; READ SECTORS EXT, LBA48 0x10000123 (bits 31:24 in the HOB LBA low), 257 sectors (HOB count 1)
    db "X", 1, 0x10, 0x00, 0x00, 1, 0x23, 0x01, 0x00, 0x40, 0x24
    dw 257
    ; READ SECTORS EXT beyond the end of the disk: ERR, IDNF
    db "Z", 0, 0x20, 0x00, 0x00, 1, 0x00, 0x00, 0x00, 0x40, 0x24
    dw 1
    db 0

    times 510 - ($ - $$) db 0
    dw 0xaa55
