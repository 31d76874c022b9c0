; bench_eoi_lapic: LAPIC EOI exit cost, measured by scripts/bench_longmode.py: 10^6 stores to
; the LAPIC's EOI register (0xFEE000B0, an MMIO exit each). bench_eoi_ram.asm is the
; reference (the same store to RAM). Rebuild: scripts/build-test-guests
%define BENCH_ADDR 0xfee000b0
%include "bench_mmio.inc"
