"""The multilabel metrics against values worked out by hand on a 4-image, 4-class case."""

from __future__ import annotations

import numpy as np
import pytest

from amlvision.detection.why import class_prior_map
from amlvision.training.multilabel_metrics import multilabel_heldout_scores, multilabel_metrics

# class 3 has no positive: its AP is undefined and it is left out of the class averages
TARGETS = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
PROBS = np.array(
    [
        [0.9, 0.2, 0.6, 0.1],
        [0.6, 0.7, 0.1, 0.2],
        [0.4, 0.8, 0.3, 0.3],
        [0.2, 0.1, 0.7, 0.4],
    ]
)


def test_multilabel_metrics_match_hand_computed_values():
    m = multilabel_metrics(TARGETS, PROBS, ["a", "b", "c", "d"], threshold=0.5)
    # AP by hand. a: ranks 0.9(+) 0.6(-) 0.4(+) -> (1/1 + 2/3) / 2; b: both positives ranked first -> 1;
    # c: 0.7(-) then 0.6(+) -> 1/2.
    ap = {"a": (1 + 2 / 3) / 2, "b": 1.0, "c": 0.5}
    for name, value in ap.items():
        assert m["per_class"][name]["average_precision"] == pytest.approx(value)
    assert m["per_class"]["d"]["average_precision"] is None
    assert m["classes_with_positives"] == 3
    assert m["map_macro"] == pytest.approx(sum(ap.values()) / 3)
    # micro AP: 5 positives among 16 pairs; thresholds 0.9, 0.8, 0.7, 0.6, 0.4 give (recall, precision)
    # = (.2, 1), (.4, 1), (.6, 3/4), (.8, 4/6), (1, 5/8) (d's 0.4 is a negative); AP = sum(0.2 * precision)
    assert m["map_micro"] == pytest.approx(0.2 * (1 + 1 + 3 / 4 + 4 / 6 + 5 / 8))
    # at 0.5: a TP1 FP1 FN1, b TP2, c TP1 FP1, d nothing predicted
    cp, cr = (0.5 + 1 + 0.5) / 3, (0.5 + 1 + 1) / 3
    assert m["CP"] == pytest.approx(cp)
    assert m["CR"] == pytest.approx(cr)
    assert m["CF1"] == pytest.approx(2 * cp * cr / (cp + cr))
    op, orr = 4 / 6, 4 / 5
    assert m["OP"] == pytest.approx(op)
    assert m["OR"] == pytest.approx(orr)
    assert m["OF1"] == pytest.approx(2 * op * orr / (op + orr))
    assert m["subset_accuracy"] == pytest.approx(1 / 4)  # only the first image's set is exactly right
    assert m["per_class"]["a"]["support"] == 2


def test_heldout_scores_and_class_prior_baseline():
    scores = multilabel_heldout_scores(TARGETS, PROBS, loss=1.5)
    assert scores["val_accuracy"] == pytest.approx(0.25)
    assert scores["val_map"] == pytest.approx(((1 + 2 / 3) / 2 + 1 + 0.5) / 3)
    # balanced accuracy per class with a positive: a (TPR 1/2, TNR 1/2), b (1, 1), c (1, 2/3)
    assert scores["val_balanced_accuracy"] == pytest.approx((0.5 + 1 + (1 + 2 / 3) / 2) / 3)
    # a constant score per class ranks every image equally: each class's AP is its prevalence
    prior = class_prior_map(np.array([[1, 0, 0, 0], [1, 1, 1, 0]]), TARGETS)
    assert prior["map_macro"] == pytest.approx((2 / 4 + 2 / 4 + 1 / 4) / 3)
    with pytest.raises(ValueError, match="must be equal N x K"):
        multilabel_metrics(TARGETS[:, :2], PROBS, ["a", "b"])
