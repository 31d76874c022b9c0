"""MAC addresses: parsing, and the stable default of each card."""
import re

from v3tools.errors import ConfigError

DEFAULT_BASE = bytes.fromhex("525400123456")      # the locally administered default PCs use

_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}$")


def parse_mac(text, where="mac"):
    """'52:54:00:12:34:56' (or with '-') -> 6 bytes; anything else is a one-line error."""
    text = (text or "").strip()
    if not _MAC.match(text):
        raise ConfigError(f"{where}: {text!r} is not a MAC address (expected six hex bytes "
                          f"such as 52:54:00:12:34:56)")
    mac = bytes(int(b, 16) for b in re.split("[:-]", text))
    if mac[0] & 1:
        raise ConfigError(f"{where}: {text} is a multicast address, not a card's address")
    return mac


def default_mac(index):
    """The index-th card's default: 52:54:00:12:34:56, :57, ... (stable from run to run)."""
    value = int.from_bytes(DEFAULT_BASE, "big") + index
    return value.to_bytes(6, "big")


def next_default_mac(ctx):
    """The default MAC of the board's next card without a <mac>: cards number themselves in
    the order they attach, on any card model."""
    nics = ctx.__dict__.setdefault("nic_count", [0])
    mac = default_mac(nics[0])
    nics[0] += 1
    return mac


def format_mac(mac):
    return ":".join(f"{b:02x}" for b in mac)
