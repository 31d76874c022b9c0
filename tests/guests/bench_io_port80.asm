; bench_io_port80: port-I/O exit cost with no device work, measured by scripts/bench_vmm.py:
; 10^6 x `out dx, al` to port 0x80 (POST codes, a known-ignored port: only the exit path runs).
; Rebuild: scripts/build-test-guests
%define BENCH_PORT 0x80
%define BENCH_OP out dx, al
%include "bench_io.inc"
