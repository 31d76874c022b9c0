"""The v3 VMM: a PC on the Unicorn CPU emulator with Palacios' device classes."""
from vmm import engine as _engine

# Before anything imports unicorn: load the v3 engine built at install, if there is one.
_engine.prepare()
