"""The palacios-blob test vectors: locating them and regenerating their data files.

The XML inputs and vectors.json are copied into tests/guest_creator/vectors/ (from
../shared/vectors/palacios-blob/ of the project checkout); the data files are regenerated
from the recipes in vectors.json, as the spec describes.
"""
import hashlib
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCAL = HERE / "vectors"
SHARED = HERE.parents[2] / "shared" / "vectors" / "palacios-blob"


def vectors_dir() -> Path:
    return LOCAL if (LOCAL / "vectors.json").exists() else SHARED


def load():
    return json.loads((vectors_dir() / "vectors.json").read_text())


def make_data(path: str, kind: str, size: int, param) -> bytes:
    if kind == "rand":
        out = bytearray()
        counter = 0
        while len(out) < size:
            out += hashlib.sha256(b"palacios-blob-corpus:" + path.encode() + b":"
                                  + counter.to_bytes(8, "little")).digest()
            counter += 1
        return bytes(out[:size])
    if kind == "fill":
        return bytes([param]) * size
    if kind == "ramp":
        return bytes((i * 7 + 3) & 0xFF for i in range(size))
    if kind == "text":
        out = bytearray()
        n = 0
        while len(out) < size:
            out += b"line %05d: the quick brown fox jumps over the lazy dog\n" % n
            n += 1
        return bytes(out[:size])
    raise ValueError(kind)


def populate(dest: Path) -> dict:
    """Copy the XML inputs into dest and write every data file; returns vectors.json."""
    spec = load()
    for xml in vectors_dir().glob("*.xml"):
        shutil.copyfile(xml, dest / xml.name)
    for rel, recipe in spec["data_files"].items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(make_data(rel, recipe["kind"], recipe["size"], recipe["param"]))
    return spec
