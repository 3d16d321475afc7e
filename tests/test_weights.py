"""Judge weights assembled from part packages: order, sha256 check, atomic placement, messages."""

import hashlib
import sys

import pytest

from judgerl.errors import JudgeError
from judgerl.providers.weights import PartsModel, assemble_known_model


@pytest.fixture
def parts_on_path(tmp_path, monkeypatch):
    """Three tiny 'part packages' (fakepartsN/data/partNN.bin) importable from tmp_path."""
    chunks = [b"first-", b"second-", b"third"]
    for index, chunk in enumerate(chunks, start=1):
        package = tmp_path / "site" / f"fakeparts{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{index:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    yield b"".join(chunks)
    for index in range(1, 4):
        sys.modules.pop(f"fakeparts{index}", None)


def model(sha256, n_parts=3):
    return PartsModel(name="fake", filename="fake.gguf", sha256=sha256, package_prefix="fakeparts",
                      version="1.0", n_parts=n_parts)


def test_parts_are_joined_in_order_and_checked(parts_on_path, tmp_path):
    expected = hashlib.sha256(parts_on_path).hexdigest()
    path = assemble_known_model(model(expected), tmp_path / "models")
    assert path.read_bytes() == b"first-second-third"
    assert (tmp_path / "models" / "fake.gguf.verified.json").is_file()
    assert assemble_known_model(model(expected), tmp_path / "models") == path  # second use: no rebuild


def test_a_wrong_hash_is_refused_and_leaves_no_file(parts_on_path, tmp_path):
    with pytest.raises(JudgeError, match="not the pinned ones"):
        assemble_known_model(model("0" * 64), tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_corrupted_file_is_rebuilt(parts_on_path, tmp_path):
    expected = hashlib.sha256(parts_on_path).hexdigest()
    path = assemble_known_model(model(expected), tmp_path / "models")
    path.write_bytes(b"garbage")
    assert assemble_known_model(model(expected), tmp_path / "models").read_bytes() == parts_on_path


def test_missing_parts_give_the_exact_install_command(parts_on_path, tmp_path):
    with pytest.raises(JudgeError) as error:
        assemble_known_model(model("0" * 64, n_parts=4), tmp_path / "models")
    message = str(error.value)
    assert "1 of them are missing (part 4)" in message
    assert "pip install fakeparts1==1.0 fakeparts2==1.0 fakeparts3==1.0 fakeparts4==1.0" in message
