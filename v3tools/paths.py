"""Output paths must never name an input: the one check every command makes before it writes.

Files are compared by device and inode (os.path.samestat), so `./x` and `x`, a hard link and a
symbolic link to an input are all recognised; an output that does not exist yet cannot be an
input, but two outputs that do not exist yet are still compared by their resolved paths.
Outputs that are not regular files (/dev/null, a terminal, a FIFO) are not checked.
The library and the CLI both use this module; it sits beside errors.py, below both.
"""
import os
import stat

from v3tools.errors import V3Error


def _stat(path):
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def same_file(a, b):
    """True if paths `a` and `b` name the same file (existing: same inode; else same real path)."""
    sa, sb = _stat(a), _stat(b)
    if sa is not None and sb is not None:
        return os.path.samestat(sa, sb)
    if sa is None and sb is None:
        return os.path.realpath(a) == os.path.realpath(b)
    return False


def inside(path, directory):
    """True if `path` (existing or not) lies inside the tree of `directory`."""
    d = os.path.realpath(directory)
    p = os.path.realpath(path)
    return p != d and os.path.commonpath([p, d]) == d


def refuse_overwrite(outputs, inputs):
    """Raise a one-line V3Error if an output is the same file as an input or another output.

    outputs, inputs: iterables of (label, path); label names the option or the role
    ("-o", "--guest", "IMAGE", "<file id=\"a\">"); a path of None is skipped.
    Nothing is created or opened.
    """
    outputs = [(label, os.fspath(path)) for label, path in outputs if path is not None]
    inputs = [(label, os.fspath(path)) for label, path in inputs if path is not None]
    for i, (out_label, out) in enumerate(outputs):
        st = _stat(out)
        if st is not None and not stat.S_ISREG(st.st_mode):
            continue                 # /dev/null, a terminal, a FIFO: writing destroys nothing
        if st is not None:
            for in_label, inp in inputs:
                other = _stat(inp)
                if other is not None and os.path.samestat(st, other):
                    raise V3Error(f"{_shown(out_label, out)}: is the same file as "
                                  f"{_shown(in_label, inp)}; refusing to overwrite an input")
        for other_label, other in outputs[:i]:
            if same_file(out, other):
                raise V3Error(f"{_shown(out_label, out)}: is the same file as "
                              f"{_shown(other_label, other)}; give each output its own file")


def _shown(label, path):
    if not label:
        return path
    if label.endswith(":"):          # "--serial file:" + path
        return f"{label}{path}"
    return f"{label} {path}"
