"""Write a parsed configuration back out exactly as build_vm's ezxml_toxml does.

Rules (spec: palacios-guest-image.md, "XML re-serialisation"): pre-root PIs first, each
followed by LF; then the root with every element written as <name a="v"></name>, text put
back at the offsets where the children were, attributes in source order (first occurrence of a
name only); then post-root PIs, each preceded by LF. PIs are grouped by target.
"""
from __future__ import annotations

from guest_creator.xmlconfig import Document, Element

_TEXT_ESCAPES = {0x26: b"&amp;", 0x3C: b"&lt;", 0x3E: b"&gt;", 0x0D: b"&#xD;"}
_ATTR_ESCAPES = {**_TEXT_ESCAPES, 0x22: b"&quot;", 0x0A: b"&#xA;", 0x09: b"&#x9;"}


def _escaper(table):
    special = bytes(table)

    def escape(data) -> bytes:
        data = bytes(data)
        if not any(c in data for c in special):  # the common case: nothing to do
            return data
        return b"".join(table.get(c, bytes((c,))) for c in data)

    return escape


escape_text = _escaper(_TEXT_ESCAPES)
escape_attr = _escaper(_ATTR_ESCAPES)


def _start_tag(elem: Element) -> bytes:
    parts = [b"<", elem.name]
    seen = set()
    for name, value in elem.attrs:
        if name in seen:
            continue
        seen.add(name)
        parts += [b" ", name, b'="', escape_attr(value), b'"']
    parts.append(b">")
    return b"".join(parts)


def element_to_bytes(root: Element) -> bytes:
    """The element and its subtree (iterative: deep nesting cannot overflow the stack)."""
    out = []
    # stack of (element, index of the next child to write, text position already written)
    stack = [(root, 0, 0)]
    out.append(_start_tag(root))
    while stack:
        elem, nxt, pos = stack.pop()
        if nxt < len(elem.children):
            kid = elem.children[nxt]
            cut = min(kid.off, len(elem.text))
            out.append(escape_text(elem.text[pos:cut]))
            stack.append((elem, nxt + 1, cut))
            out.append(_start_tag(kid))
            stack.append((kid, 0, 0))
            continue
        out.append(escape_text(elem.text[pos:]))
        out.append(b"</" + elem.name + b">")
    return b"".join(out)


def _pi(target: bytes, data: bytes) -> bytes:
    return b"<?" + target + (b" " if data else b"") + data + b"?>"


def to_bytes(doc: Document) -> bytes:
    """The whole serialised configuration (no declaration, no trailing newline)."""
    out = []
    for target, items in doc.pis.items():
        out += [_pi(target, data) + b"\n" for data, after in items if not after]
    out.append(element_to_bytes(doc.root))
    for target, items in doc.pis.items():
        out += [b"\n" + _pi(target, data) for data, after in items if after]
    return b"".join(out)
