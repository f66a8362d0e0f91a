import numpy as np
import pytest

from cvtasks.metrics import binary_detection_metrics, classification_metrics, per_class_table


def test_classification_metrics_by_hand():
    y = [0, 0, 1, 1, 2, 2, 3, 3]
    probs = np.eye(4)[[0, 1, 1, 1, 2, 0, 3, 3]]          # two mistakes
    probs[1, 0] = 0.5                                     # true class 0 is the runner-up
    m = classification_metrics(y, probs, prefix="val", top_k=2)
    assert m["val/accuracy"] == pytest.approx(6 / 8)
    # class 0: P=1/2 R=1/2; class 1: P=2/3 R=1; class 2: P=1 R=1/2; class 3: P=R=1
    assert m["val/min_class_precision"] == pytest.approx(0.5)
    assert m["val/min_class_recall"] == pytest.approx(0.5)
    f1 = [0.5, 0.8, 2 / 3, 1.0]
    assert m["val/macro_f1"] == pytest.approx(np.mean(f1))
    assert m["val/top2"] == pytest.approx(7 / 8)


def test_per_class_table():
    table = per_class_table([0, 1, 1], [0, 1, 0], ["a", "b"])
    assert list(table.index) == ["a", "b"] and table.loc["b", "recall"] == 0.5
    assert table["support"].tolist() == [1, 2]


def test_binary_detection_metrics():
    y = [0, 0, 0, 0, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.8, 0.7, 0.9]
    m = binary_detection_metrics(y, scores, threshold=0.5)
    assert m["test/tpr"] == 1.0 and m["test/tnr"] == 0.75
    assert m["test/roc_auc"] == pytest.approx(7 / 8)


def test_verdict_calls_a_miss_inside_the_spread_no_difference():
    from cvtasks.stats import verdict

    assert verdict(0.95, 0.95, at_least=True) == "yes"
    assert verdict(0.843, 0.85, at_least=True, low=0.821, high=0.865) == "no difference"
    assert verdict(0.80, 0.85, at_least=True, low=0.78, high=0.83) == "NO"
    assert verdict(0.80, 0.85, at_least=True) == "NO"                      # no spread: the figure decides
    assert verdict(1.52, 1.5, at_least=False, low=1.45) == "no difference"
    assert verdict(1.60, 1.5, at_least=False, low=1.55) == "NO"
