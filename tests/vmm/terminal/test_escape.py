"""vmm/terminal/escape.py: Ctrl-A escape keys in front of the guest's input."""
import pytest

from vmm.terminal.escape import EscapeKeys


@pytest.fixture
def keys():
    said = []
    k = EscapeKeys(write=said.append)
    k.said = said
    k.calls = []
    k.register("x", lambda: k.calls.append("x"), "exit")
    k.register("h", k.show_help, "help")
    return k


def test_plain_bytes_pass_through(keys):
    assert keys.filter(b"ls -l\r\x03\x04\x1b[6n") == b"ls -l\r\x03\x04\x1b[6n"
    assert keys.calls == [] and keys.said == []


def test_ctrl_a_x_runs_the_handler_and_reaches_no_guest(keys):
    assert keys.filter(b"ab\x01xcd") == b"abcd"
    assert keys.calls == ["x"]


def test_ctrl_a_ctrl_a_sends_one_ctrl_a(keys):
    assert keys.filter(b"\x01\x01") == b"\x01"
    assert keys.filter(b"\x01\x01\x01\x01") == b"\x01\x01"
    assert keys.calls == []


def test_a_sequence_split_across_reads(keys):
    assert keys.filter(b"abc\x01") == b"abc"
    assert keys.filter(b"x") == b""
    assert keys.calls == ["x"]


def test_help_lists_the_keys(keys):
    keys.filter(b"\x01h")
    text = b"".join(keys.said).decode()
    assert "C-a x" in text and "exit" in text and "C-a h" in text and "C-a C-a" in text


def test_an_unbound_key_is_dropped_with_a_hint(keys):
    assert keys.filter(b"\x01c") == b""
    assert b"C-a c is not bound" in b"".join(keys.said)


def test_others_register_keys_once(keys):
    seen = []
    keys.register("c", lambda: seen.append("monitor"), "monitor")
    keys.filter(b"\x01c")
    assert seen == ["monitor"]
    with pytest.raises(ValueError, match="already taken"):
        keys.register("c", lambda: None, "again")
    with pytest.raises(ValueError, match="reserved"):
        keys.register(b"\x01"[0], lambda: None, "literal")
