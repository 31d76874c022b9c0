; bench_stringio: REP INSD from the IDE data port (scripts/bench_stringio.py). The boot sector of
; the primary master disk (BIOS loads it at 0x7C00). Real mode, interrupts off, nIEN (polling):
; SET MULTIPLE 16, then ROUNDS x READ MULTIPLE of 256 sectors from LBA 0, each 16-sector DRQ
; block moved by one `rep insd` of 2048 dwords to 1000:0000: ROUNDS x 128 KiB in all. Timed with RDTSC; results at 0x500: qword TSC before, qword after,
; byte last status; the elapsed ticks also go to COM1 in hex. Ends with a keyboard-controller reset (port 0x64 <- 0xFE).
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
CMD     equ 0x1f0
ROUNDS  equ 64
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7c00
    mov ax, 0x1000
    mov es, ax
    cld
    mov dx, 0x3f6
    mov al, 0x02                ; nIEN
    out dx, al
    mov dx, CMD + 6
    mov al, 0xe0                ; master, LBA
    out dx, al
    call wait_ready
    mov dx, CMD + 2
    mov al, 16
    out dx, al
    mov dx, CMD + 7
    mov al, 0xc6                ; SET MULTIPLE MODE: 16 sectors per DRQ block
    out dx, al
    call wait_ready
    rdtsc
    mov [0x500], eax
    mov [0x504], edx
    mov bp, ROUNDS
.round:
    mov dx, CMD + 2
    xor al, al                  ; 0 = 256 sectors
    out dx, al
    inc dx
    out dx, al                  ; LBA 0
    inc dx
    out dx, al
    inc dx
    out dx, al
    mov dx, CMD + 6
    mov al, 0xe0
    out dx, al
    mov dx, CMD + 7
    mov al, 0xc4                ; READ MULTIPLE
    out dx, al
    mov si, 16                  ; DRQ blocks
.block:
    call wait_drq
    mov dx, CMD
    xor di, di
    mov ecx, 16 * 128
    rep insd
    dec si
    jnz .block
    dec bp
    jnz .round
    call wait_ready
    rdtsc
    mov [0x508], eax
    mov [0x50c], edx
    mov dx, CMD + 7
    in al, dx
    mov [0x510], al
    mov eax, [0x508]            ; elapsed TSC ticks to COM1 as 16 hex digits and CR LF
    mov edx, [0x50c]
    sub eax, [0x500]
    sbb edx, [0x504]
    push eax
    mov eax, edx
    call hex32
    pop eax
    call hex32
    mov al, 13
    call putc
    mov al, 10
    call putc
reset:
    mov al, 0xfe
    out 0x64, al
    hlt
    jmp reset

hex32:                          ; EAX as 8 hex digits
    mov cx, 8
.d: rol eax, 4
    push eax
    and al, 0x0f
    add al, '0'
    cmp al, '9'
    jbe .p
    add al, 7
.p: call putc
    pop eax
    loop .d
    ret

putc:                           ; AL to COM1 (the transmitter is always ready here)
    mov dx, 0x3f8
    out dx, al
    ret

wait_ready:                     ; until BSY clear
    mov dx, CMD + 7
.w: in al, dx
    test al, 0x80
    jnz .w
    ret

wait_drq:                       ; until BSY clear and DRQ set
    mov dx, CMD + 7
.w: in al, dx
    test al, 0x80
    jnz .w
    test al, 0x08
    jz .w
    ret
    times 510 - ($ - $$) db 0
    dw 0xaa55
