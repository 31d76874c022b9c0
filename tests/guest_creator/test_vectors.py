"""The palacios-blob compatibility vectors: every run of every case, through the `v3` CLI."""
import hashlib
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling helper `corpus`
import corpus  # noqa: E402

SPEC = corpus.load()
RUNS = [(case, run) for case in SPEC["cases"] for run in case["runs"]]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("palacios-blob")
    corpus.populate(path)
    return path


@pytest.mark.parametrize("case,run", RUNS, ids=[f"{c['name']}-{r['label']}" for c, r in RUNS])
def test_vector(case, run, corpus_dir, v3, monkeypatch):
    monkeypatch.chdir(corpus_dir)
    out = f"{case['name']}-{run['label']}.dat"
    before = set(os.listdir(corpus_dir))
    result = v3("build-vm", case["input"], "-o", out, *run["args"])
    if run["expect"] == "reject":
        assert result.exit_code != 0
        assert result.stderr.startswith("v3: error: ") and result.stderr.count("\n") == 1
        assert set(os.listdir(corpus_dir)) == before  # no output, no temp file
        return
    assert result.exit_code == 0, result
    data = (corpus_dir / out).read_bytes()
    assert len(data) == run["size"]
    assert hashlib.sha256(data).hexdigest() == run["sha256"]
    os.unlink(corpus_dir / out)


def test_default_output_name(corpus_dir, v3, monkeypatch):
    monkeypatch.chdir(corpus_dir)
    assert v3("build-vm", "no_files.xml").exit_code == 0
    data = (corpus_dir / "no_files.dat").read_bytes()
    run = next(c for c in SPEC["cases"] if c["name"] == "no_files")["runs"][1]
    assert hashlib.sha256(data).hexdigest() == run["sha256"]


def test_files_resolve_against_the_config_directory(corpus_dir, v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the corpus directory
    out = tmp_path / "x.dat"
    assert v3("build-vm", corpus_dir / "multi_files.xml", "-o", out).exit_code == 0
    run = next(c for c in SPEC["cases"] if c["name"] == "multi_files")["runs"][1]
    assert hashlib.sha256(out.read_bytes()).hexdigest() == run["sha256"]
