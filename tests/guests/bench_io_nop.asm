; bench_io_nop: the reference for bench_io_out.asm and bench_io_port80.asm
; (scripts/bench_vmm.py): the same bytes with a 1-byte NOP in place of the OUT.
; Rebuild: scripts/build-test-guests
%define BENCH_PORT 0x3f8
%define BENCH_OP nop
%include "bench_io.inc"
