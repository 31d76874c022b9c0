; timers: PIT and RTC interrupts at their programmed rates, checked by the v3 VMM's tests.
; Real mode, loaded at 0x7C00 with no BIOS. Programs the 8259A pair (vectors 0x20/0x28),
; PIT channel 0 in mode 2 at 1000 Hz, writes 'S', counts 200 IRQ 0 ticks, writes 'P' to port 0xE9;
; then RTC periodic interrupt at 1024 Hz (register A rate 6), counts 256 IRQ 8 ticks, writes
; 'R'; then cli; hlt. The test reads the virtual clock when each letter arrives.
; Rebuild: scripts/build-test-guests
bits 16
org 0x7c00
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [0x20 * 4], irq0
    mov word [0x20 * 4 + 2], 0
    mov word [0x28 * 4], irq8
    mov word [0x28 * 4 + 2], 0
    ; 8259A master: ICW1 edge+ICW4, ICW2 0x20, ICW3 slave on 2, ICW4 8086
    mov al, 0x11
    out 0x20, al
    out 0xa0, al
    mov al, 0x20
    out 0x21, al
    mov al, 0x28
    out 0xa1, al
    mov al, 0x04
    out 0x21, al
    mov al, 0x02
    out 0xa1, al
    mov al, 0x01
    out 0x21, al
    out 0xa1, al
    mov al, 0xfa                ; master: IRQ 0 and the cascade (2) unmasked
    out 0x21, al
    mov al, 0xff                ; slave: all masked for now
    out 0xa1, al
    ; PIT channel 0, lobyte/hibyte, mode 2, divisor 1193 (1000.15 Hz)
    mov al, 0x34
    out 0x43, al
    mov ax, 1193
    out 0x40, al
    mov al, ah
    out 0x40, al
    mov word [ticks], 0
    mov al, 'S'                 ; the PIT is counting from here
    out 0xe9, al
    sti
.wait_pit:
    hlt
    cmp word [ticks], 200
    jb .wait_pit
    cli
    mov al, 'P'
    out 0xe9, al
    mov al, 0xff                ; mask the PIT
    out 0x21, al
    mov al, 0xfb                ; master: only the cascade
    out 0x21, al
    mov al, 0xfe                ; slave: IRQ 8 only
    out 0xa1, al
    ; RTC: register A rate 6 (1024 Hz), register B PIE
    mov al, 0x8a
    out 0x70, al
    mov al, 0x26
    out 0x71, al
    mov al, 0x8b
    out 0x70, al
    in al, 0x71
    or al, 0x40
    mov ah, al
    mov al, 0x8b
    out 0x70, al
    mov al, ah
    out 0x71, al
    mov al, 0x0c                ; clear any pending flag
    out 0x70, al
    in al, 0x71
    mov word [rticks], 0
    sti
.wait_rtc:
    hlt
    cmp word [rticks], 256
    jb .wait_rtc
    cli
    mov al, 'R'
    out 0xe9, al
    hlt

irq0:
    inc word [cs:ticks]
    push ax
    mov al, 0x20
    out 0x20, al
    pop ax
    iret

irq8:
    push ax
    inc word [cs:rticks]
    mov al, 0x0c                ; read register C to acknowledge the RTC
    out 0x70, al
    in al, 0x71
    mov al, 0x20
    out 0xa0, al
    out 0x20, al
    pop ax
    iret

ticks: dw 0
rticks: dw 0
