"""How guests get loaded besides the BIOS's own boot from a drive: direct kernel boot
(`linux`: the x86 Linux boot protocol, used by `v3 run --kernel`)."""
