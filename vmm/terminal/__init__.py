"""The host terminal as the guest's console: raw mode (raw.py) and the Ctrl-A escape keys
(escape.py).

`v3 run --serial stdio` on a terminal behaves as QEMU's `-nographic`: the terminal goes raw, so
every key (Ctrl-C included) reaches the guest, which echoes and edits lines itself; Ctrl-A
starts an escape sequence for the VMM (Ctrl-A x quits, Ctrl-A h lists the keys). On anything
else (a pipe, a file, /dev/null) standard input is passed through untouched.

With the console elsewhere (`--serial file:PATH` or `null`) and stderr a terminal, status.py
draws a live status line there instead (wall and guest time, exits/s, the last serial line).
"""
