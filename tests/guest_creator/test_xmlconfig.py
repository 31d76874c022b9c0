"""guest_creator.xmlconfig: entity bombs are refused with bounded work and memory; external
entities are never loaded.

Time is not asserted: the work is bounded by construction (at most MAX_ENTITY_OUTPUT bytes
produced by entity references per document, definitions checked once per entity), and the peak
memory of each refused parse is asserted instead.
"""
import tracemalloc

import pytest

from guest_creator import serialize
from guest_creator.xmlconfig import MAX_ENTITY_DEPTH, MAX_ENTITY_OUTPUT, parse_bytes
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
