; bench_eoi_ram: the reference of bench_eoi_lapic.asm: the same loop storing to RAM (0x600).
; Rebuild: scripts/build-test-guests
%define BENCH_ADDR 0x600
%include "bench_mmio.inc"
