"""guest_creator.xmlconfig: entity bombs are refused with bounded work and memory; external
entities are never loaded.

Time is not asserted: the work is bounded by construction (at most MAX_ENTITY_OUTPUT bytes
produced by entity references per document, definitions checked once per entity), and the peak
memory of each refused parse is asserted instead.
"""
import random
import tracemalloc

import pytest

from guest_creator import serialize
from guest_creator.xmlconfig import (_DEFAULT_ENTITIES, MAX_ENTITY_DEPTH, MAX_ENTITY_OUTPUT, _strtol,
                                     _entity_depth, _utf8_like_ezxml, decode, parse_bytes)
from v3tools.errors import ConfigError

BOMB = f"entity references expand to more than {MAX_ENTITY_OUTPUT} bytes in total (refused as an entity bomb)"


def laughs(levels, use="<vm><name>&a{top};</name></vm>", order=1, base="lollollollollol", kind=""):
    """The classic: entity a_i is ten references to a_(i-1)."""
    mark = "%" if kind else "&"
    ents = [f'<!ENTITY {kind}a0 "{base}">'] + \
        [f'<!ENTITY {kind}a{i} "{(mark + "a%d;" % (i - 1)) * 10}">' for i in range(1, levels + 1)]
    return (f'<?xml version="1.0"?>\n<!DOCTYPE vm [\n' + "\n".join(ents[::order]) + "\n]>\n"
            + use.format(top=levels) + "\n").encode()


def refused(data, trace=False):
    """The one-line ConfigError of parsing `data`, and the parse's peak memory in bytes (traced
    only when asked: tracing slows the parse several times)."""
    peak = None
    if trace:
        tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            parse_bytes(data, "bomb.xml")
        if trace:
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        if trace:
            tracemalloc.stop()
    text = str(info.value)
    assert text.startswith("bomb.xml:") and "\n" not in text
    return text, peak


@pytest.mark.parametrize("data", [
    laughs(10),                                                  # 10^10 x 15 bytes
    laughs(30),                                                  # 10^30: deeper than allowed
    laughs(10, order=-1),                                        # defined in reverse order
    laughs(10, use='<vm><name a="&a{top};"/></vm>'),             # in an attribute value
    laughs(10, base=""),                                         # empty at the bottom: 10^10 references
    laughs(10, use="<vm>" + "<n>&a3;</n>" * 2000 + "</vm>"),     # small bombs, many times
], ids=["text", "deep", "reverse", "attribute", "empty", "many"])
def test_entity_bomb_is_refused(data):
    text, _ = refused(data)
    assert text.endswith(BOMB) or "levels of entity references" in text, text


@pytest.mark.parametrize("data", [laughs(10), laughs(10, base="")], ids=["text", "empty"])
def test_entity_bomb_memory_is_bounded(data):
    text, peak = refused(data, trace=True)
    assert text.endswith(BOMB)
    assert peak < 8 * MAX_ENTITY_OUTPUT


def test_parameter_entity_bomb():
    # parameter entities expand while the DTD is read
    text, _ = refused(laughs(10, use="<vm/>", kind="% "))
    assert text.endswith(BOMB)


def test_nesting_depth_is_bounded():
    chain = ['<!ENTITY e0 "x">'] + [f'<!ENTITY e{i} "&e{i - 1};">' for i in range(1, 5001)]
    data = ("<!DOCTYPE vm [" + "".join(chain) + "]><vm>&e5000;</vm>").encode()
    text, _ = refused(data)
    assert text.endswith(f"levels of entity references; at most {MAX_ENTITY_DEPTH} are allowed "
                         f"(refused as an entity bomb)")
    assert f"entity &e{MAX_ENTITY_DEPTH};" in text


def test_nesting_within_the_limit_expands():
    chain = ['<!ENTITY e1 "x">'] + [f'<!ENTITY e{i} "&e{i - 1};y">' for i in range(2, MAX_ENTITY_DEPTH + 1)]
    doc = parse_bytes(("<!DOCTYPE vm [" + "".join(chain) + f"]><vm>&e{MAX_ENTITY_DEPTH};</vm>").encode())
    assert bytes(doc.root.text) == b"x" + b"y" * (MAX_ENTITY_DEPTH - 1)


def test_predefined_entities_do_not_count():
    # 6 MiB of budget if they counted
    doc = parse_bytes(b"<vm>" + b"&lt;" * 20_000 + b"</vm>" + b"<!--" + b"x" * 6_000_000 + b"-->")
    assert bytes(doc.root.text) == b"<" * 20_000


def test_circular_definitions_still_named():
    text, _ = refused(b'<!DOCTYPE a [<!ENTITY x "a&y;"><!ENTITY y "b&x;">]><a/>')
    assert text.endswith("circular entity declaration &y;")


def test_external_entities_stay_unresolved(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    data = (f'<!DOCTYPE vm [<!ENTITY x SYSTEM "file://{secret}"><!ENTITY % p SYSTEM "{secret}">%p;]>'
            f'<vm><name>&x;</name></vm>').encode()
    out = serialize.to_bytes(parse_bytes(data))
    assert b"SECRET" not in out
    assert out == b"<vm><name>&amp;x;</name></vm>"


# -- decode: linear, and the same bytes as ezxml's rewrite-in-place --------------------------------
def _in_place(raw, entities, mode, limit=20000):
    """ezxml_decode as ezxml does it (the buffer rewritten in place, a replacement text scanned
    again where it was put): the reference decode() is checked against."""
    s = bytearray(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    i = 0
    while mode != "c":
        while i < len(s) and s[i] != 0x26 and not (s[i] == 0x25 and mode == "%") \
                and s[i] not in b" \t\n\v\f\r":
            i += 1
        if i >= len(s):
            break
        ch = s[i]
        if s[i:i + 2] == b"&#":
            code, end = _strtol(s, i + 3, 16) if s[i + 2:i + 3] == b"x" else _strtol(s, i + 2, 10)
            encoded = None
            if code and end < len(s) and s[end] == 0x3B and code < (1 << 37):
                encoded = _utf8_like_ezxml(code) if code > 0 else bytes([code & 0xFF])
            if not encoded or encoded == b"\0":
                i += 1
                continue
            s[i:s.index(b";", i) + 1] = encoded
            i += len(encoded)
        elif (ch == 0x26 and mode in "& ") or (ch == 0x25 and mode == "%"):
            for name, value in entities:
                if s.startswith(name, i + 1):
                    s[i:s.index(b";", i) + 1] = value
                    if len(s) > limit:
                        raise ValueError("too long")
                    break
            else:
                i += 1
        elif mode == " " and ch in b" \t\n\v\f\r":
            s[i] = 0x20
            i += 1
        else:
            i += 1
    return bytes(s)


PIECES = [b"&", b"#", b"x", b"X", b";", b"%", b" ", b"\t", b"\n", b"\r", b"\v", b"a", b"1", b"6", b"5",
          b"0", b"-", b"+", b"lt", b"amp", b"e", b"f", b"&#", b"&#x", b"3", b"8", b"&#38;", b"&#x41;",
          b"&e;", b"&f;", b"%p;", b"&#0;", b"&#x0x41;", b"&#  65;", b"&lt;", b"&amp;"]


def test_decode_matches_the_in_place_rewrite():
    rng = random.Random(20261202)

    def text(n):
        return b"".join(rng.choice(PIECES) for _ in range(rng.randrange(n)))
    for _ in range(3000):
        entities = list(_DEFAULT_ENTITIES)
        for _ in range(rng.randrange(4)):
            name, value = rng.choice([b"e;", b"f;", b"ef;", b"e;f;", b"p;", b"a;"]), text(5)
            if _entity_depth(name, value, entities) is not None:     # as the parser takes them
                entities.append((name, value))
        raw, mode = text(30), rng.choice("& %c")
        try:
            want = _in_place(raw, entities, mode)
        except ValueError:
            continue
        assert decode(raw, entities, mode) == want, (raw, entities[5:], mode)


def test_decode_across_replacement_boundaries():
    entities = list(_DEFAULT_ENTITIES) + [(b"e;", b"&#"), (b"f;", b"&#x"), (b"g;", b"&am")]
    for raw in (b"&e;65;", b"&e;" + b" " * 200 + b"+0065;", b"&f;0x41;", b"&f;" + b"\t" * 70 + b"41;",
                b"&g;p;", b"&e;", b"&#" + b"9" * 40 + b";", b"&#-65;", b"&e;" + b" " * 63):
        for mode in "& %":
            assert decode(raw, entities, mode) == _in_place(raw, entities, mode), (raw, mode)


def test_many_references():
    """Many references in one text (decoded in one pass: the work per reference does not grow
    with what follows it, where ezxml's in-place rewrite moved the rest of the text each time;
    4 MB of `&#65;` take about a second, see docs/build-vm.md)."""
    text = b"&#65;" * 50_000 + b"&#x20;&lt;"
    assert decode(text, _DEFAULT_ENTITIES, "&") == b"A" * 50_000 + b" <"
    assert bytes(parse_bytes(b"<vm>" + b"&amp;" * 30_000 + b"</vm>").root.text) == b"&" * 30_000
