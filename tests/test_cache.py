import numpy as np
import pytest

from cvtasks import cache


def test_computes_once_then_reads(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(6).reshape(2, 3), "y": np.array(["a", "b"])}

    key = {"encoder": "e", "data": "d"}
    first = cache.cached_arrays("feat", key, compute, tmp_path)
    second = cache.cached_arrays("feat", key, compute, tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["x"], second["x"])
    assert list(second["y"]) == ["a", "b"]


def test_another_key_recomputes(tmp_path):
    calls = []
    compute = lambda: calls.append(1) or {"x": np.zeros(2)}  # noqa: E731
    cache.cached_arrays("feat", {"size": 224}, compute, tmp_path)
    cache.cached_arrays("feat", {"size": 96}, compute, tmp_path)
    assert len(calls) == 2


def test_corrupt_file_is_rebuilt_not_trusted(tmp_path):
    key = {"k": 1}
    cache.cached_arrays("feat", key, lambda: {"x": np.ones(3)}, tmp_path)
    (path,) = tmp_path.glob("feat-*.npz")
    path.write_bytes(path.read_bytes()[:40])  # truncated by a crash or a full disk
    out = cache.cached_arrays("feat", key, lambda: {"x": np.full(3, 7.0)}, tmp_path)
    np.testing.assert_array_equal(out["x"], [7, 7, 7])
    reread = cache.cached_arrays("feat", key, lambda: pytest.fail("should be cached"), tmp_path)
    np.testing.assert_array_equal(reread["x"], [7, 7, 7])


def test_fingerprint_is_stable_and_sensitive():
    assert cache.fingerprint({"a": 1, "b": (2, 3)}) == cache.fingerprint({"b": [2, 3], "a": 1})
    assert cache.fingerprint({"a": 1}) != cache.fingerprint({"a": 2})


def test_text_embeddings_keyed_by_the_texts(tmp_path):
    class Fake:
        name = "fake"
        calls = 0

        def encode(self, texts):
            Fake.calls += 1
            return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    enc = Fake()
    a = cache.text_embeddings(enc, ["ab", "abc"], cache_dir=tmp_path)
    cache.text_embeddings(enc, ["ab", "abc"], cache_dir=tmp_path)
    b = cache.text_embeddings(enc, ["ab", "abcd"], cache_dir=tmp_path)
    assert Fake.calls == 2
    assert a[1, 0] == 3 and b[1, 0] == 4
