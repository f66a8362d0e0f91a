"""Uncertainty sampling against random sampling, the simulated annotator, auto-labelling."""
import numpy as np
import pytest

from cvtasks import active_learning as al


def test_uncertainty_scores_by_hand():
    p = np.array([[0.9, 0.05, 0.05], [0.4, 0.35, 0.25]])
    np.testing.assert_allclose(al.uncertainty(p, "least_confidence"), [0.1, 0.6])
    np.testing.assert_allclose(al.uncertainty(p, "margin"), [-0.85, -0.05])
    entropy = -(p * np.log(p)).sum(1)
    np.testing.assert_allclose(al.uncertainty(p, "entropy"), entropy)
    for s in ("least_confidence", "margin", "entropy"):
        assert np.argmax(al.uncertainty(p, s)) == 1     # the second row is the unsure one
    with pytest.raises(ValueError, match="unknown strategy"):
        al.uncertainty(p, "vibes")


def test_annotator_counts_queries():
    ann = al.SimulatedAnnotator([3, 1, 2])
    np.testing.assert_array_equal(ann.label([2, 0]), [2, 3])
    assert ann.queries == 2


def _blobs(n_per_class, seed):
    """Many easy points far from the boundaries and a few hard ones near them."""
    centres = np.random.default_rng(100).normal(0, 1.2, (6, 10))   # the same classes in every draw
    rng = np.random.default_rng(seed)
    x, y = [], []
    for c, n in enumerate(n_per_class):
        x.append(centres[c] + rng.normal(0, 1.6, (n, 10)))
        y.append(np.full(n, c))
    return np.concatenate(x), np.concatenate(y)


def test_uncertainty_sampling_beats_random_on_a_small_case():
    x, y = _blobs([200, 150, 100, 80, 40, 30], seed=0)
    tx, ty = _blobs([60, 60, 60, 60, 60, 60], seed=1)
    kw = dict(initial=12, batch=12, rounds=8, pca_dims=10)
    margin = al.simulate(x, y, tx, ty, strategy="margin", seed=0, **kw)
    randoms = [al.simulate(x, y, tx, ty, strategy="random", seed=s, **kw) for s in range(3)]
    n, random_acc = al.mean_curve(randoms)
    assert margin.n_labels == list(n) and n[0] == 12 and n[-1] == 12 + 8 * 12
    # area under the learning curve: margin sampling learns faster than random picks
    assert np.mean(margin.accuracy[1:]) > np.mean(random_acc[1:]) + 0.01
    reach = al.labels_to_reach(n, random_acc, 0.6)
    assert al.labels_to_reach(np.array(margin.n_labels), np.array(margin.accuracy), 0.6) < reach


def test_autolabel_is_measured_against_the_truth():
    x, y = _blobs([60, 60, 60], seed=2)
    curve = al.simulate(x, y, x, y, strategy="entropy", initial=9, batch=9, rounds=2, pca_dims=5, seed=0)
    out = al.autolabel(curve, x, y, threshold=0.9)
    rest = np.setdiff1d(np.arange(len(y)), curve.labelled)
    assert out["n_rest"] == len(rest) == len(y) - 27
    probs = curve.model.predict_proba(x[rest])
    sure = probs.max(1) >= 0.9
    assert out["n_auto"] == sure.sum()
    assert out["accuracy"] == pytest.approx((curve.model.classes_[probs.argmax(1)][sure] == y[rest][sure]).mean())


def test_bad_session_settings_are_refused():
    x, y = _blobs([10, 10], seed=0)
    with pytest.raises(ValueError, match="initial"):
        al.simulate(x, y, x, y, strategy="margin", initial=1, batch=2, rounds=1, pca_dims=2, seed=0)
