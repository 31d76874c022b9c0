; atapi_read: ATAPI PACKET commands to the CD-ROM on the secondary master through the IDE ports
; (no INT 13h), checked by the v3 VMM's tests (tests/vmm/test_storage_guests.py).
; A boot sector (booted by the built-in BIOS from a hard disk). Polling only (nIEN=1).
; The test patches the READ(10) parameters at offset 0x1F0: LBA (big endian dword), sectors
; (big endian word), byte count limit (little endian word).
; Prints to COM1 (THR at 0x3F8; the VMM's UART transmits at once):
;   "SIG <LBA high><LBA mid>"                    the packet-device signature after DEVICE RESET
;   "<label> <ireason> <status> <error> <blocks> <s1> <s2>[ <bytes>]"
;       one line per packet in `packets` below: the interrupt reason (sector count register)
;       and status at the end of the command, the error register, the DRQ blocks transferred
;       (4 hex digits), a Fletcher-style sum over all data as 16-bit words (s1 += w; s2 += s1,
;       mod 2^32), then the first bytes of the data in hex for the packets that ask for it
;   "ATAPI-DONE"                                 then a reset through the keyboard controller
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
CMD     equ 0x170               ; secondary command block
CTL     equ 0x376               ; secondary device control
COM1    equ 0x3f8
BUFSEG  equ 0x1000              ; data lands at 1000:0000 (the offset wraps inside the segment)

start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    cld
    mov eax, [params]           ; READ(10): LBA and transfer length, both big endian
    mov [read10 + 2 + 2], eax
    mov ax, [params + 4]
    mov [read10 + 2 + 7], ax
    mov ax, [params + 6]        ; byte count limit
    mov [read10 + 2 + 12], ax
    mov dx, CTL
    mov al, 0x02                ; nIEN: no interrupts, we poll
    out dx, al
    mov dx, CMD + 6
    mov al, 0xa0                ; master
    out dx, al
    inc dx
    mov al, 0x08                ; DEVICE RESET: the signature again, no interrupt
    out dx, al
    call wait_ready
    mov si, msg_sig
    call puts
    mov dx, CMD + 5
    in al, dx
    call hex8
    dec dx
    in al, dx
    call hex8
    call newline

    mov si, packets
.next:
    lodsb                       ; label, 0 ends the table
    test al, al
    jz .done
    call putc
    call space
    lodsb
    mov [dump], al
    mov dx, CMD + 1
    xor al, al                  ; features: PIO data
    out dx, al
    mov ax, [si + 12]           ; byte count limit
    mov dx, CMD + 4
    out dx, al
    inc dx
    mov al, ah
    out dx, al
    mov dx, CMD + 7
    mov al, 0xa0                ; PACKET
    out dx, al
    call wait_ready
    test al, 0x08
    jz .no_packet               ; the line then shows the status
    mov dx, CMD
    mov cx, 6
    rep outsw                   ; the 12-byte command packet
    sub si, 12
.no_packet:
    add si, 14                  ; past the packet and the limit
    push si
    call data_phase
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

; Read DRQ blocks until the drive clears DRQ, summing and storing the data; print the line.
data_phase:
    xor ebx, ebx                ; s1
    xor ebp, ebp                ; s2
    xor di, di
    mov ax, BUFSEG
    mov es, ax
    xor si, si                  ; DRQ blocks
.block:
    call wait_ready
    test al, 0x08
    jz .complete
    inc si
    mov dx, CMD + 5
    in al, dx
    mov ch, al
    dec dx
    in al, dx
    mov cl, al
    shr cx, 1                   ; words in this block
    mov dx, CMD
    jcxz .block
.word:
    in ax, dx
    stosw
    movzx eax, ax
    add ebx, eax
    add ebp, ebx
    loop .word
    jmp .block
.complete:
    mov dx, CMD + 2
    in al, dx                   ; interrupt reason
    call hex8sp
    mov dx, CMD + 7
    in al, dx
    call hex8sp
    mov dx, CMD + 1
    in al, dx
    call hex8sp
    mov ax, si
    call hex16
    call space
    mov eax, ebx
    call hex32sp
    mov eax, ebp
    call hex32
    movzx cx, byte [dump]
    xor si, si
    jcxz newline
    call space
.dump:
    mov al, [es:si]
    inc si
    push cx
    call hex8
    pop cx
    loop .dump
%include "com1print.inc"

wait_ready:                     ; until BSY clears; AL = status
    mov dx, CMD + 7
.busy:
    in al, dx
    test al, 0x80
    jnz .busy
    ret


msg_sig:   db "SIG ", 0
msg_done:  db "ATAPI-DONE", 10, 0
dump:      db 0

; label; bytes of data to print; 12-byte command packet; byte count limit
packets:
    db "T", 0, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                ; TEST UNIT READY
    dw 0xfffe
    db "K", 8, 0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                ; READ CAPACITY
    dw 8
read10:
    db "R", 0, 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                ; READ(10), from params
    dw 0
    db "B", 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                ; no such command
    dw 0xfffe
    db "S", 14, 0x03, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0              ; REQUEST SENSE
    dw 18
    db "E", 0, 0x28, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 0    ; READ(10) past the end
    dw 0xfffe
    db "S", 14, 0x03, 0, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0              ; REQUEST SENSE
    dw 18
    db 0

    times 0x1f0 - ($ - $$) db 0
params:
    dd 0x10000000               ; LBA 16, big endian
    dw 0x0100                   ; 1 sector, big endian
    dw 2048                     ; byte count limit
    times 510 - ($ - $$) db 0
    dw 0xaa55
