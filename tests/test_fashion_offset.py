"""The worst-recalled class's logit offset: chosen on validation by the rule, folded into the served model."""
import numpy as np
import pytest
import torch

import config
from cvtasks.fashion import offset
from cvtasks.models.fashion_classifier import fold_offset
from cvtasks.models.fashion_nets import create_fashion_net


def _scores(n_per_class: int = 200, classes: int = 4, penalty: float = 1.0, seed: int = 0):
    """Noisy one-hot scores whose class 2 is pushed down by ``penalty``: its recall suffers."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    scores = 2.0 * np.eye(classes)[y] + rng.normal(0, 1, (len(y), classes))
    scores[:, 2] -= penalty
    return scores, y


def test_the_rule_lifts_the_worst_recalled_class_and_raises_the_minimum():
    scores, y = _scores()
    precision, recall = offset.per_class(scores.argmax(1), y, 4)
    assert recall.argmin() == 2 and recall[2] < 0.6 < precision[2]
    choice = offset.choose(scores, y, config.FASHION_OFFSET_GRID)
    assert choice["class"] == 2 and 0.5 <= choice["offset"] <= 1.5
    assert choice["val_min_pr_after"] > choice["val_min_pr_before"] + 0.1
    shifted = scores + np.eye(4)[2] * choice["offset"]
    assert offset.worst(shifted.argmax(1), y, 4) == pytest.approx(choice["val_min_pr_after"])


def test_no_offset_when_none_raises_the_minimum():
    scores, y = _scores(penalty=0.0)
    choice = offset.choose(scores, y, (0.0, 1.5, 2.0))   # large steps only: each one hurts
    assert choice["offset"] == 0.0 and choice["val_min_pr_after"] == choice["val_min_pr_before"]


def test_fold_adds_the_offset_to_that_logit_only():
    torch.manual_seed(0)
    net = create_fashion_net("resnet", 10, dropout=0.0, batchnorm=True, width=8, depth=1).eval()
    x = torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        before = net(x)
        after = fold_offset(net, {"class": 6, "offset": 0.75})(x)
    expected = before.clone()
    expected[:, 6] += 0.75
    assert torch.allclose(after, expected, atol=1e-5)
    assert fold_offset(net, None) is net and fold_offset(net, {"class": 1, "offset": 0.0}) is net
