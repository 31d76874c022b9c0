"""The v3 VMM: a PC on the Unicorn CPU emulator with Palacios' device classes."""
