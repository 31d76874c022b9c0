"""One case per ezxml round-trip rule of the spec (palacios-guest-image.md), exact bytes."""
import pytest

from guest_creator.serialize import to_bytes
from guest_creator.xmlconfig import file_refs, parse_bytes
from v3tools.errors import ConfigError


def rt(xml: bytes) -> bytes:
    return to_bytes(parse_bytes(xml))


@pytest.mark.parametrize("source,expected", [
    # framing: no declaration, doctype, outside text/comments, trailing newline
    (b'<?xml version="1.0"?>\n<!DOCTYPE vm>\n<!-- c -->\n<vm>x</vm>\n\ntrailing', b"<vm>x</vm>"),
    # comments dropped, text on both sides joined; comment-only lines keep their indentation
    (b"<a>before<!--x-->after</a>", b"<a>beforeafter</a>"),
    (b"<a>\n\t<!-- c -->\n\t<b/>\n</a>", b"<a>\n\t\n\t<b></b>\n</a>"),
    (b"<a><!----><!-- - single - --></a>", b"<a></a>"),
    # text kept byte for byte (spaces after a start tag, blank lines)
    (b"<a>  \n\n  <b>  x  </b>   \n</a>", b"<a>  \n\n  <b>  x  </b>   \n</a>"),
    # line endings
    (b"<a>1\r\n2\r3\r\r4</a>", b"<a>1\n2\n3\n\n4</a>"),
    (b'<a x="1\r\n2"/>', b'<a x="1 2"></a>'),
    (b"<a><![CDATA[1\r\n2]]></a>", b"<a>1\n2</a>"),
    # tags
    (b"<a><b/><c /><d></d></a>", b"<a><b></b><c></c><d></d></a>"),
    (b'<a\n  x = "1"\tb=\'2\'   ></a   >', b'<a x="1" b="2"></a>'),
    # attributes: quotes, whitespace chars, no value, unquoted value, repeats
    (b"<a x='say \"hi\"' y=\"it's\"/>", b'<a x="say &quot;hi&quot;" y="it\'s"></a>'),
    (b'<a x="a\tb\t\tc\nd"/>', b'<a x="a b  c d"></a>'),
    (b"<a flag/>", b'<a flag=""></a>'),
    (b"<a flag other='1'/>", b'<a flag="" other="1"></a>'),
    (b"<a x=abc/>", b'<a x="" abc=""></a>'),
    (b'<a x="1" y="2" x="3"/>', b'<a x="1" y="2"></a>'),
    # decoding on input
    (b"<a>&lt;&gt;&amp;&quot;&apos;</a>", b"<a>&lt;&gt;&amp;\"'</a>"),
    (b"<a>&#65;&#x42;&#233;&#x20AC;&#x1F600;</a>", "<a>AB\u00e9\u20ac\U0001F600</a>".encode()),
    (b"<a>&foo; &#X41; &#0; &#65 & &amp;lt;</a>", b"<a>&amp;foo; &amp;#X41; &amp;#0; &amp;#65 &amp; &amp;lt;</a>"),
    (b'<!DOCTYPE a [<!ENTITY who "World"><!ENTITY hi "Hello &who;">]><a>&hi;!</a>', b"<a>Hello World!</a>"),
    (b'<!DOCTYPE a [<!ENTITY % p "x"><!ENTITY e "%p;%p;">]><a t="&e;">&e;</a>', b'<a t="xx">xx</a>'),
    # escaping on output
    (b"<a>&#13;&#9;&#10;\"'</a>", b"<a>&#xD;\t\n\"'</a>"),
    (b'<a v="&#9;t&#10;n&#13;r&quot;&apos;&lt;&amp;"/>', b'<a v="&#x9;t&#xA;n&#xD;r&quot;\'&lt;&amp;"></a>'),
    # CDATA merged into the text, escaped like text; empty CDATA adds nothing
    (b"<a>x<![CDATA[a<b&c]]>y<![CDATA[]]>z</a>", b"<a>xa&lt;b&amp;cyz</a>"),
    (b"<a><![CDATA[]]></a>", b"<a></a>"),
    # mixed content: text goes back between the children
    (b"<m>alpha<b>beta</b>gamma<i>delta</i>epsilon</m>", b"<m>alpha<b>beta</b>gamma<i>delta</i>epsilon</m>"),
    (b"<m>a<!--c--><b/>c<![CDATA[d]]><e/>f</m>", b"<m>a<b></b>cd<e></e>f</m>"),
    # PIs: before the root (LF after), inside/after (LF before), grouped by target
    (b"<?p one?><?q two?><a/>", b"<?p one?>\n<?q two?>\n<a></a>"),
    (b"<a><?p x?></a><?q y?><?p z  ?>", b"<a></a>\n<?p x?>\n<?p z  ?>\n<?q y?>"),
    (b"<?p?><a/>", b"<?p?>\n<a></a>"),
    (b"<?p  ?><a/>", b"<?p?>\n<a></a>"),
    (b"<?xml-stylesheet href='a'?><a/>", b"<?xml-stylesheet href='a'?>\n<a></a>"),
    (b"<a><?p a\r\nb?></a>", b"<a></a>\n<?p a\r\nb?>"),
    # encodings: UTF-8 passes (names too), a UTF-8 BOM is dropped
    ("<caf\u00e9 n\u00e4me='\u00fc'>\u20ac</caf\u00e9>".encode(), "<caf\u00e9 n\u00e4me=\"\u00fc\">\u20ac</caf\u00e9>".encode()),
    (b"\xef\xbb\xbf<a>x</a>", b"<a>x</a>"),
    # the last byte of the file may be the final '>'
    (b"<a>x</a>", b"<a>x</a>"),
    (b"<a/>", b"<a></a>"),
])
def test_round_trip(source, expected):
    assert rt(source) == expected


def test_utf16le_with_bom_becomes_utf8():
    text = '<vm class="\u00e9\u20ac">\U0001F600 x</vm>\n'
    assert rt(b"\xff\xfe" + text.encode("utf-16-le")) == text.strip().encode()


def test_utf16be_with_bom_becomes_utf8():
    assert rt(b"\xfe\xff" + "<a>\u00e9</a>".encode("utf-16-be")) == "<a>\u00e9</a>".encode()


@pytest.mark.parametrize("source,message", [
    (b"<vm>\n<files>\n</vm>", "3:1: unexpected closing tag </vm>"),
    (b"<vm>\n  <mem></memory>\n</vm>", "2:8: unexpected closing tag </memory>"),
    (b"<vm>\n<!-- a -- b -->\n</vm>", "2:1: unclosed <!--"),
    (b"<vm/>\n<second/>\n", "2:1: markup outside of root element"),
    (b"just text\n", "root tag missing"),
    (b"", "root tag missing"),
    (b"<vm>\n  <a>\n", "unclosed tag <a> (opened at 2:3)"),
    (b"<vm><![CDATA[x</vm>\n", "1:5: unclosed <![CDATA["),
    (b"<vm><?pi x</vm>\n", "1:5: unclosed <?"),
    (b"<vm>< a/></vm>", "1:5: unexpected <"),
    (b'<vm a="1></vm>\n', "missing \" closing the value of attribute a"),
    (b'<!DOCTYPE a [<!ENTITY e "&e;">]><a/>', "circular entity declaration &e;"),
])
def test_malformed_input_names_line_and_column(source, message):
    with pytest.raises(ConfigError) as info:
        parse_bytes(source, "cfg.xml")
    text = str(info.value)
    assert text.startswith("cfg.xml:") and message in text and "\n" not in text


def test_unterminated_quote_swallows_markup_like_ezxml():
    # the value runs to the next quote; the parse then fails on a closing tag
    with pytest.raises(ConfigError, match="6:1: unexpected closing tag </vm>"):
        parse_bytes(b'<vm>\n<files>\n<file id="a/>\n</files>\n<x y="1"/>\n</vm>\n')


def _refs(xml):
    doc = parse_bytes(xml)
    return [(r.index, r.id, r.filename) for r in file_refs(doc)]


def test_only_direct_files_of_the_first_files_section_are_taken():
    xml = (b"<vm><wrap><files><file id='deep' filename='x'/></files></wrap>"
           b"<files><note/><file id='a' filename='fa'/><o><file id='no'/></o>"
           b"<file><id>b</id><filename><![CDATA[f&b]]></filename></file></files>"
           b"<files><file id='second' filename='y'/></files></vm>")
    assert _refs(xml) == [(0, b"a", b"fa"), (1, b"b", b"f&b")]


def test_values_are_entity_decoded():
    assert _refs(b"<vm><files><file id='a&amp;b' filename='x&#32;y'/></files></vm>") == [(0, b"a&b", b"x y")]


@pytest.mark.parametrize("body", [b"<file id='a' filename='x'><filename>y</filename></file>",
                                  b"<file id='a' filename='x'><id>b</id></file>"])
def test_attribute_and_child_together_are_rejected(body):
    with pytest.raises(ConfigError, match="both a (filename|id) attribute"):
        file_refs(parse_bytes(b"<vm><files>" + body + b"</files></vm>", "c.xml"))


def test_no_files_section():
    assert _refs(b"<vm><devices/></vm>") == []
