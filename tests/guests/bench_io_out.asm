; bench_io_out: port-I/O exit cost, measured by scripts/bench_vmm.py: 10^6 x `out dx, al` to
; COM1's THR (port 0x3F8; run with --serial null). bench_io_nop.asm is the reference (a NOP
; in place of the OUT); bench_io_port80.asm writes to port 0x80 instead (no device behind it).
; Rebuild: scripts/build-test-guests
%define BENCH_PORT 0x3f8
%define BENCH_OP out dx, al
%include "bench_io.inc"
