"""`amlvision why` on the real coco-tiny: every statistic recomputed here from the raw JSON, independently."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from amlvision.cli import main as cli


def _independent(raw: dict[str, dict]) -> dict:
    images = {im["id"]: im for split in raw.values() for im in split["images"]}
    anns = [a for split in raw.values() for a in split["annotations"]]
    per_image = defaultdict(list)
    for a in anns:
        per_image[a["image_id"]].append(a)
    cats_per_image = [len({a["category_id"] for a in per_image[i]}) for i in images]
    wh = np.array([a["bbox"][2:] for a in anns], float)
    area = wh[:, 0] * wh[:, 1]
    size_of = np.array([[images[a["image_id"]]["width"], images[a["image_id"]]["height"]] for a in anns], float)
    side32 = np.sqrt(wh[:, 0] * 32 / size_of[:, 0] * wh[:, 1] * 32 / size_of[:, 1])
    counts = Counter(a["category_id"] for a in anns)
    x = np.array(list(counts.values()), float)
    gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())  # mean-difference form
    top_cat, top_count = counts.most_common(1)[0]
    ambiguous = []
    for i in images:
        by_cat = defaultdict(float)
        for a in per_image[i]:
            by_cat[a["category_id"]] += a["bbox"][2] * a["bbox"][3]
        if by_cat:
            ambiguous.append(max(by_cat.values()) / sum(by_cat.values()) < 0.5)
    return {
        "images": len(images),
        "instances": len(anns),
        "multi": np.mean(np.array(cats_per_image) >= 2),
        "small": np.mean(area < 32**2),
        "large": np.mean(area >= 96**2),
        "under4_32": np.mean(side32 < 4),
        "under2_32": np.mean(side32 < 2),
        "gini": gini,
        "ratio": x.max() / x.min(),
        "top_share": top_count / len(anns),
        "top_images": sum(any(a["category_id"] == top_cat for a in per_image[i]) for i in images) / len(images),
        "ambiguous": np.mean(ambiguous),
    }


def test_why_report_statistics_match_the_raw_annotations(coco_tiny, raw_coco, small_cifar, tmp_path):
    out = tmp_path / "why"
    assert cli(["why", str(coco_tiny), "--out", str(out), "--contrast", str(small_cifar)]) == 0
    doc = json.loads((out / "why.json").read_text())
    data, expected = doc["data"], _independent(raw_coco)
    assert data["images"] == expected["images"] == 160
    assert data["instances"] == expected["instances"] == 705 + 815
    assert data["share_images_2plus_categories"] == pytest.approx(expected["multi"])
    assert data["coco_size_shares"]["small"] == pytest.approx(expected["small"])
    assert data["coco_size_shares"]["large"] == pytest.approx(expected["large"])
    assert data["resized_object_size"]["32x32"]["share_under_4px"] == pytest.approx(expected["under4_32"])
    assert data["resized_object_size"]["32x32"]["share_under_2px"] == pytest.approx(expected["under2_32"])
    assert data["imbalance_gini"] == pytest.approx(expected["gini"])
    assert data["imbalance_max_min_ratio"] == pytest.approx(expected["ratio"])
    assert data["largest_class"] == "person"
    assert data["largest_class_share_of_instances"] == pytest.approx(expected["top_share"])
    assert data["largest_class_share_of_images"] == pytest.approx(expected["top_images"])
    assert data["share_ambiguous_images"] == pytest.approx(expected["ambiguous"])
    # majority baseline: train's most frequent dominant label, scored on val's dominant labels
    dominant = {}
    for split, raw in raw_coco.items():
        areas = defaultdict(lambda: defaultdict(float))
        for a in raw["annotations"]:
            areas[a["image_id"]][a["category_id"]] += a["bbox"][2] * a["bbox"][3]
        dominant[split] = [max(c, key=c.get) for c in areas.values()]
    majority = Counter(dominant["train"]).most_common(1)[0][0]
    assert doc["data"]["baselines"]["majority_top1_dominant"] == pytest.approx(
        np.mean([d == majority for d in dominant["val"]])
    )
    # the contrast: 10 classes, one full-frame object per image, balanced
    c = doc["contrast"]
    assert (c["images"], c["instances"], c["classes_present"]) == (600, 600, 10)
    assert c["share_images_2plus_categories"] == 0 and c["imbalance_gini"] == pytest.approx(0)
    assert c["resized_object_size"]["32x32"]["share_under_4px"] == 0
    assert c["coco_size_shares"]["medium"] == 1.0  # 32x32 = 1024 px, COCO's small/medium edge
    # conclusions come from those numbers, largest effect first, and the report shows them
    effects = [f["effect"] for f in doc["conclusions"]]
    assert effects == sorted(effects, key=lambda e: -abs(e)) and len(effects) >= 4
    report = (out / "report.md").read_text()
    assert f"| images with >= 2 categories | {expected['multi']:.1%} | 0.0% |" in report
    for plot in doc["plots"]:
        assert (out / plot).stat().st_size > 1000


def test_why_names_missing_annotations(tmp_path: Path, capsys):
    assert cli(["why", str(tmp_path), "--out", str(tmp_path / "why")]) == 2
    assert "instances_<split>.json" in capsys.readouterr().err
