"""A small XML reader that behaves like the ezxml parser inside Palacios' build_vm.

Why not lxml: build_vm re-serialises the configuration through ezxml, and the bytes it writes
depend on details a conforming parser throws away or rejects (comment removal joining text,
PIs grouped by target, lenient attribute syntax, undecoded unknown entities, a UTF-16 BOM
sniff...). This module reproduces that behaviour as observed (see
docs/build-vm.md and the spec in ../shared/docs/palacios-guest-image.md) and records, for
every element, where it started, so errors can name file:line:column.

Everything is bytes: UTF-8 passes through untouched, names included.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from v3tools.errors import ConfigError

WS = b"\t\r\n "  # the characters ezxml skips between tokens
_ISSPACE = frozenset(b" \t\n\v\f\r")  # C isspace() in the C locale
_ALPHA = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_MAX_TEXT = 64 << 20  # text cap (a config is never this big)

# Entity bombs (nested <!ENTITY> definitions that multiply, "billion laughs") are refused the
# way hardened XML parsers refuse them: by the nesting depth of an entity's definition and by
# the total number of bytes entity references may produce in one document (each reference
# counting its replacement text plus REFERENCE_COST, so references to empty entities are
# bounded too). ezxml (and so build_vm) has neither limit; a configuration never comes near them.
MAX_ENTITY_DEPTH = 16
MAX_ENTITY_OUTPUT = 1 << 20
REFERENCE_COST = 16


class EntityBudget:
    """What entity references may still produce in one document (bytes)."""

    def __init__(self, limit=MAX_ENTITY_OUTPUT):
        self.limit = self.left = limit

    def spend(self, n):
        self.left -= n
        if self.left < 0:
            raise ValueError(f"entity references expand to more than {self.limit} bytes in total "
                             f"(refused as an entity bomb)")


# where decode must look next, per mode ('c' has nothing to look for)
_SPECIAL = {"&": re.compile(rb"&"), "%": re.compile(rb"[&%]"), " ": re.compile(rb"[&\t\n\v\f\r ]")}

# The predefined entities, in ezxml's lookup order; each expands to a character
# reference that is then decoded in turn.
_DEFAULT_ENTITIES = [
    (b"lt;", b"&#60;"),
    (b"gt;", b"&#62;"),
    (b"quot;", b"&#34;"),
    (b"apos;", b"&#39;"),
    (b"amp;", b"&#38;"),
]
_DEFAULT_NAMES = frozenset(name for name, _value in _DEFAULT_ENTITIES)  # they never amplify


@dataclass(eq=False)
class Element:
    """One element: decoded attributes in source order, its text, its children.

    `text` is the concatenation of all character data directly inside the element;
    each child records `off`, the length of the parent's text when the child started, which
    is where the serialiser puts it back.
    """

    name: bytes
    attrs: list = field(default_factory=list)  # [name, value] pairs, duplicates kept
    text: bytearray = field(default_factory=bytearray)
    children: list = field(default_factory=list)
    parent: "Element | None" = None
    off: int = 0
    line: int = 0
    col: int = 0

    def attr(self, name: bytes):
        """The value of the first attribute called `name`, or None."""
        for key, value in self.attrs:
            if key == name:
                return value
        return None

    def set_attr(self, name: bytes, value: bytes):
        """Replace the first `name` attribute in place, or append it."""
        for pair in self.attrs:
            if pair[0] == name:
                pair[1] = value
                return
        self.attrs.append([name, value])

    def child(self, name: bytes):
        """The first direct child called `name`, or None."""
        for kid in self.children:
            if kid.name == name:
                return kid
        return None

    def children_named(self, name: bytes):
        return [kid for kid in self.children if kid.name == name]

    @property
    def where(self):
        return f"{self.line}:{self.col}"


@dataclass(eq=False)
class Document:
    root: Element
    # target -> list of (data, after_root_start); dict order = order of first appearance
    pis: dict
    path: str = "<memory>"

    def location(self, elem: Element):
        return f"{self.path}:{elem.line}:{elem.col}"


def to_utf8(data: bytes) -> bytes:
    """ezxml's encoding sniff: a first byte 0xFF (LE) or 0xFE (BE) means UTF-16 with a BOM."""
    if not data or data[0] not in (0xFE, 0xFF):
        return data
    big = data[0] == 0xFE
    out = bytearray()
    n = len(data)
    pos = 2
    while pos < n - 1:
        unit = (data[pos] << 8 | data[pos + 1]) if big else (data[pos + 1] << 8 | data[pos])
        if 0xD800 <= unit <= 0xDFFF:
            pos += 2
            if pos < n - 1:
                low = (data[pos] << 8 | data[pos + 1]) if big else (data[pos + 1] << 8 | data[pos])
                unit = (((unit & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000
        out += _utf8_like_ezxml(unit)
        pos += 2
    return bytes(out)


def _utf8_like_ezxml(code: int) -> bytes:
    """UTF-8 with ezxml's arithmetic (also used for lone surrogates, which it encodes)."""
    if code < 0x80:
        return bytes([code & 0xFF])
    extra = (code.bit_length() - 2) // 5  # continuation bytes
    out = [((0xFF << (7 - extra)) | (code >> (6 * extra))) & 0xFF]
    while extra:
        extra -= 1
        out.append(0x80 | ((code >> (6 * extra)) & 0x3F))
    return bytes(out)


def _strtol(s: bytes, pos: int, base: int):
    """C strtol on s[pos:]: returns (value, end position); value 0 with end=pos if no digits."""
    n = len(s)
    i = pos
    while i < n and s[i] in _ISSPACE:
        i += 1
    neg = False
    if i < n and s[i] in b"+-":
        neg = s[i] == 0x2D
        i += 1
    digits = b"0123456789abcdefABCDEF" if base == 16 else b"0123456789"
    if base == 16 and s[i:i + 2] in (b"0x", b"0X") and i + 2 < n and s[i + 2] in digits:
        i += 2
    start = i
    while i < n and s[i] in digits:
        i += 1
    if i == start:
        return 0, pos
    value = int(s[start:i], base)
    value = min(value, (1 << 63) - 1 + neg)  # LONG_MAX / LONG_MIN clamp
    return (-value if neg else value), i


def decode(raw: bytes, entities, mode: str, budget: EntityBudget | None = None) -> bytes:
    """ezxml_decode: newline normalisation, then character and entity references.

    mode: '&' text, ' ' attribute value, 'c' CDATA (newlines only), '%' DTD entity value.
    A replacement text is scanned again where it was put, as ezxml does; `budget` (one per
    document) bounds what entity references produce in total (ValueError past it).
    """
    s = bytearray(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    if mode == "c":
        return bytes(s)
    special = _SPECIAL[mode]
    i = 0
    while True:
        n = len(s)
        found = special.search(s, i)
        if found is None:
            break
        i = found.start()
        ch = s[i]
        if mode != "c" and s[i:i + 2] == b"&#":
            if s[i + 2:i + 3] == b"x":
                code, end = _strtol(s, i + 3, 16)
            else:
                code, end = _strtol(s, i + 2, 10)
            encoded = None
            if code and end < n and s[end] == 0x3B and code < (1 << 37):
                encoded = _utf8_like_ezxml(code) if code > 0 else bytes([code & 0xFF])
            if not encoded or encoded == b"\0":
                i += 1
                continue
            semi = s.index(b";", i)
            s[i:semi + 1] = encoded
            i += len(encoded)
        elif (ch == 0x26 and mode in "& ") or (ch == 0x25 and mode == "%"):
            for name, value in entities:
                if s.startswith(name, i + 1):
                    semi = s.index(b";", i)
                    if budget is not None and name not in _DEFAULT_NAMES:
                        budget.spend(len(value) + REFERENCE_COST)
                    s[i:semi + 1] = value
                    if len(s) > _MAX_TEXT:
                        raise ValueError("entity expansion exceeds 64 MiB")
                    break
            else:
                i += 1
        elif mode == " " and ch in _ISSPACE:
            s[i] = 0x20
            i += 1
        else:
            i += 1
    return bytes(s)


class _Parser:
    def __init__(self, data: bytes, path: str):
        self.path = path
        data = to_utf8(data)
        if not data:
            self.buf, self.last = b"", 0
        else:
            # ezxml turns the last byte into the string terminator and remembers it: a
            # final '>' still closes markup, anything else there is dropped.
            self.last = data[-1]
            body = data[:-1]
            nul = body.find(b"\0")
            self.buf = body if nul < 0 else body[:nul]
        self.n = len(self.buf)
        self.entities = list(_DEFAULT_ENTITIES)
        self.budget = EntityBudget()
        self.pis: dict = {}
        self.standalone = False
        self.root = None
        self.stack: list = []
        self.closed = False

    # --- helpers --------------------------------------------------------------------------
    def at(self, i):
        return self.buf[i] if i < self.n else 0

    def cspn(self, i, chars):
        buf, n = self.buf, self.n
        while i < n and buf[i] not in chars:
            i += 1
        return i

    def spn(self, i, chars):
        buf, n = self.buf, self.n
        while i < n and buf[i] in chars:
            i += 1
        return i

    def position(self, pos):
        pos = max(0, min(pos, self.n))
        line = self.buf.count(b"\n", 0, pos) + 1
        col = pos - (self.buf.rfind(b"\n", 0, pos) + 1) + 1
        return line, col

    def error(self, pos, message):
        line, col = self.position(pos)
        return ConfigError(f"{self.path}:{line}:{col}: {message}")

    def decode(self, raw, mode, pos):
        try:
            return decode(raw, self.entities, mode, self.budget)
        except ValueError as exc:
            raise self.error(pos, str(exc)) from None

    # --- events ---------------------------------------------------------------------------
    def open_tag(self, name, attrs, pos):
        line, col = self.position(pos)
        if self.root is None:
            elem = Element(name, attrs, line=line, col=col)
            self.root = elem
        else:
            parent = self.stack[-1]
            elem = Element(name, attrs, parent=parent, off=len(parent.text), line=line, col=col)
            parent.children.append(elem)
        self.stack.append(elem)

    def close_tag(self, name, pos):
        if not self.stack or self.stack[-1].name != name:
            shown = name.decode("utf-8", "replace")
            if self.stack:
                opened = self.stack[-1]
                raise self.error(pos, f"unexpected closing tag </{shown}> (expected "
                                      f"</{opened.name.decode('utf-8', 'replace')}> for the tag "
                                      f"opened at {opened.where})")
            raise self.error(pos, f"unexpected closing tag </{shown}>")
        self.stack.pop()
        if not self.stack:
            self.closed = True

    def char_content(self, raw, mode, pos):
        if not self.stack or not raw:
            return
        elem = self.stack[-1]
        elem.text += self.decode(raw, mode, pos)
        if len(elem.text) > _MAX_TEXT:
            raise self.error(pos, "text exceeds 64 MiB")

    def proc_inst(self, content):
        cut = 0
        while cut < len(content) and content[cut] not in WS:
            cut += 1
        target = content[:cut]
        if cut < len(content):
            start = cut + 1
            while start < len(content) and content[start] in WS:
                start += 1
            data = content[start:]
        else:
            data = b""
        if target == b"xml":
            where = data.find(b"standalone")
            if where >= 0:
                rest = data[where + 10:].lstrip(WS + b"='\"")
                self.standalone = rest.startswith(b"yes")
            return
        self.pis.setdefault(target, []).append((data, self.root is not None))

    # --- the document ---------------------------------------------------------------------
    def parse(self):
        i = self.buf.find(b"<")
        if i < 0:
            raise self.error(self.n, "root tag missing (no element in the document)")
        while True:
            d = i = i + 1
            c = self.at(i)
            if c in _ALPHA or c in b"_:" or c >= 0x80:
                i = self.tag(i, d)
            elif c == 0x2F:  # '/'
                d = i + 1
                i = self.cspn(d, WS + b">")
                q = self.at(i)
                if not q and self.last != 0x3E:
                    raise self.error(d, "missing > at the end of the closing tag")
                self.close_tag(self.buf[d:i], d - 2)
                if q in _ISSPACE:
                    i = self.spn(i, WS)
            elif self.buf.startswith(b"!--", i):
                j = self.buf.find(b"--", i + 3)
                if j >= 0:
                    i = j + 2
                if j < 0 or (self.at(i) and self.at(i) != 0x3E) or (not self.at(i) and self.last != 0x3E):
                    raise self.error(d - 1, "unclosed <!-- (or '--' inside a comment)")
            elif self.buf.startswith(b"![CDATA[", i):
                j = self.buf.find(b"]]>", i)
                if j < 0:
                    raise self.error(d - 1, "unclosed <![CDATA[")
                self.char_content(self.buf[d + 8:j], "c", d)
                i = j + 2
            elif self.buf.startswith(b"!DOCTYPE", i):
                i = self.doctype(i, d)
            elif c == 0x3F:  # '?'
                j = i
                while True:
                    j = self.buf.find(b"?", j)
                    if j < 0:
                        break
                    j += 1
                    if not self.at(j) or self.at(j) == 0x3E:
                        break
                if j < 0 or (not self.at(j) and self.last != 0x3E):
                    raise self.error(d - 1, "unclosed <?")
                self.proc_inst(self.buf[d + 1:max(d + 1, j - 1)])
                i = j
            else:
                raise self.error(d - 1, "unexpected <")

            if i >= self.n:
                break
            d = i = i + 1
            if i < self.n and self.buf[i] != 0x3C:
                j = self.buf.find(b"<", i)
                if j < 0:
                    break
                self.char_content(self.buf[d:j], "&", d)
                i = j
            elif i >= self.n:
                break

        if self.closed:
            return Document(self.root, self.pis, self.path)
        if self.root is None:
            raise self.error(self.n, "root tag missing")
        top = self.stack[-1]
        raise self.error(self.n, f"unclosed tag <{top.name.decode('utf-8', 'replace')}> "
                                 f"(opened at {top.where})")

    def tag(self, i, d):
        """A start tag at d (just after '<'); returns the index of its closing '>'."""
        if self.closed:
            raise self.error(d - 1, "markup outside of root element (a second top-level element)")
        i = self.cspn(i, WS + b"/>")
        name = self.buf[d:i]
        while self.at(i) in _ISSPACE:
            i += 1
        attrs = []
        while self.at(i) and self.at(i) not in b"/>":
            start = i
            i = self.cspn(i, WS + b"=/>")
            pair = [self.buf[start:i], b""]
            attrs.append(pair)
            c = self.at(i)
            if c == 0x3D or c in _ISSPACE:
                i = self.spn(i + 1, WS + b"=")
                q = self.at(i)
                if q in (0x22, 0x27):
                    i += 1
                    end = self.buf.find(bytes([q]), i)
                    if end < 0:
                        raise self.error(start, f"missing {chr(q)} closing the value of attribute "
                                                f"{pair[0].decode('utf-8', 'replace')}")
                    pair[1] = self.decode(self.buf[i:end], " ", start)
                    i = end + 1
            while self.at(i) in _ISSPACE:
                i += 1
        if self.at(i) == 0x2F:
            i += 1
            if (self.at(i) and self.at(i) != 0x3E) or (not self.at(i) and self.last != 0x3E):
                raise self.error(d - 1, "missing > after / in the tag")
            self.open_tag(name, attrs, d - 1)
            self.close_tag(name, d - 1)
        elif self.at(i) == 0x3E or (not self.at(i) and self.last == 0x3E):
            self.open_tag(name, attrs, d - 1)
        else:
            raise self.error(d - 1, "missing > at the end of the tag")
        return i

    def doctype(self, i, d):
        seen_subset = False
        while self.at(i):
            c = self.at(i)
            if not seen_subset and c == 0x3E:
                break
            if seen_subset and c == 0x5D and self.at(self.spn(i + 1, WS)) == 0x3E:
                break
            i = self.cspn(i + 1, b"[]>")
            if self.at(i) == 0x5B:
                seen_subset = True
        if not self.at(i) and self.last != 0x3E:
            raise self.error(d - 1, "unclosed <!DOCTYPE")
        if seen_subset:
            start = self.buf.index(b"[", d) + 1
            self.internal_dtd(self.buf[start:i], start)
            i += 1
        return i

    def internal_dtd(self, s: bytes, base: int):
        """<!ENTITY> definitions (general and parameter) and PIs of the internal subset."""
        params: list = []
        n = len(s)
        i = 0
        while i < n:
            while i < n and s[i] not in b"<%":
                i += 1
            if i >= n:
                break
            if s.startswith(b"<!ENTITY", i):
                i += 8
                while i < n and s[i] in WS:
                    i += 1
                is_param = i < n and s[i] == 0x25
                name_at = i
                while name_at < n and s[name_at] in WS + b"%":
                    name_at += 1
                name_end = name_at
                while name_end < n and s[name_end] not in WS:
                    name_end += 1
                if name_end >= n:
                    break
                name = s[name_at:name_end] + b";"
                v = name_end + 1
                while v < n and s[v] in WS:
                    v += 1
                q = s[v] if v < n else 0
                v += 1
                if q not in (0x22, 0x27):  # external entity: skipped
                    j = s.find(b">", name_end)
                    if j < 0:
                        break
                    i = j
                    continue
                end = s.find(bytes([q]), v)
                raw = s[v:] if end < 0 else s[v:end]
                value = self.decode_with(raw, params, "%", base + v)
                table = params if is_param else self.entities
                depth = _entity_depth(name, value, table)
                shown = ("%" if is_param else "&") + name.decode("utf-8", "replace")
                if depth is None:
                    raise self.error(base + v, f"circular entity declaration {shown}")
                if depth > MAX_ENTITY_DEPTH:
                    raise self.error(base + v, f"entity {shown} nests {depth} levels of entity "
                                               f"references; at most {MAX_ENTITY_DEPTH} are allowed "
                                               f"(refused as an entity bomb)")
                table.append((name, value))
                if end < 0:
                    break
                i = end + 1
            elif s.startswith(b"<!--", i):
                j = s.find(b"-->", i + 4)
                if j < 0:
                    break
                i = j
            elif s.startswith(b"<?", i):
                j = s.find(b"?>", i + 2)
                if j < 0:
                    break
                self.proc_inst(s[i + 2:j])
                i = j + 1
            elif s[i] == 0x3C:
                j = s.find(b">", i)
                if j < 0:
                    break
                i = j
            else:  # a parameter entity reference outside a declaration
                i += 1
                if not self.standalone:
                    break

    def decode_with(self, raw, table, mode, pos):
        try:
            return decode(raw, table, mode, self.budget)
        except ValueError as exc:
            raise self.error(pos, str(exc)) from None


def _entity_depth(name, value, table):
    """How many levels of entity references expanding `value` goes through (1: none but
    itself), or None if it would reach entity `name` again (a circular declaration).
    The references followed are those ezxml's check follows: `&` then the first entity of
    `table` whose name (with its `;`) comes next. Each entity is looked at once (memo), so a
    chain of entities that each name the previous one ten times costs ten steps, not 10^n."""
    first = {}
    for other, text in table:
        first.setdefault(other, text)
    memo, active = {}, set()

    def refs(text):
        i = text.find(b"&")
        while i >= 0:
            if text.startswith(name, i + 1):
                yield name
            else:
                for other, _text in table:
                    if text.startswith(other, i + 1):
                        yield other
                        break
            i = text.find(b"&", i + 1)

    def depth(text):
        if len(active) > MAX_ENTITY_DEPTH:
            return len(active) + 1          # too deep already: no need to go further
        deepest = 0
        for other in refs(text):
            if other == name or other in active:
                return None
            if other not in memo:
                active.add(other)
                memo[other] = depth(first[other])
                active.discard(other)
            if memo[other] is None:
                return None
            deepest = max(deepest, memo[other])
        return deepest + 1

    return depth(value)


def parse_bytes(data: bytes, path: str = "<memory>") -> Document:
    """Parse a configuration held in memory; ConfigError (path:line:col) on malformed input."""
    return _Parser(bytes(data), path).parse()


def parse_file(path) -> Document:
    """Parse a configuration file; ConfigError if it cannot be read or is malformed."""
    shown = os.fsdecode(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the configuration: {exc.strerror}") from None
    return parse_bytes(data, shown)


# --- the <files> section ----------------------------------------------------------------------
@dataclass
class FileRef:
    """A `<file>` taken into the image: its element, id and filename (decoded bytes)."""

    index: int
    element: Element
    id: bytes | None
    filename: bytes | None


def value_of(doc: Document, elem: Element, name: bytes):
    """build_vm's get_val: an attribute or a child element's text; both is an error."""
    attr = elem.attr(name)
    kid = elem.child(name)
    if attr is not None and kid is not None:
        shown = name.decode()
        raise ConfigError(
            f"{doc.location(elem)}: <file> has both a {shown} attribute "
            f"({attr.decode('utf-8', 'replace')!r}) and a <{shown}> child element "
            f"({bytes(kid.text).decode('utf-8', 'replace')!r}) at {kid.where}")
    if attr is not None:
        return attr
    return bytes(kid.text) if kid is not None else None


def file_refs(doc: Document):
    """The `<file>` children of the root's first `<files>` child, in document order."""
    files = doc.root.child(b"files")
    if files is None:
        return []
    refs = []
    for index, elem in enumerate(files.children_named(b"file")):
        refs.append(FileRef(index, elem, value_of(doc, elem, b"id"), value_of(doc, elem, b"filename")))
    return refs
