"""``amlvision why``'s output: why.json, report.md and PNG plots, every number taken from the statistics.

Trained runs (``train.py --from-boxes MODE`` output folders) are read from their config.yaml,
metrics.json and predictions.npz; nothing is re-run. Conclusions are generated from the numbers
and ranked by the size of the measured effect (each is a share or a difference of shares, so they
sit on one 0-1 scale); none is written unless its number exists.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from amlvision.detection.derive import load_targets

HEADLINE = {"multilabel": "map_macro"}  # other modes: top-1 accuracy


def run_result(run_dir: str | Path) -> dict[str, Any]:
    """One trained run: its mode, input size, headline metric and, for ``dominant``, its errors that are not errors."""
    run_dir = Path(run_dir)
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text())
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except OSError as exc:
        raise FileNotFoundError(f"{run_dir}: not a finished train.py run ({exc})") from exc
    mode = config.get("from_boxes") or "none"
    width, height = config.get("scale") or (32, 32)
    if mode == "none":  # a plain classification run (e.g. CIFAR-10), shown for contrast
        width, height = metrics.get("input_size", (width, height))
    result: dict[str, Any] = {"run": str(run_dir), "mode": mode, "size": f"{width}x{height}"}
    if mode == "multilabel":
        result.update({k: metrics.get(k) for k in ("map_macro", "map_micro", "CF1", "OF1", "num_samples")})
        result["headline"], result["headline_metric"] = metrics.get("map_macro"), "mAP (macro)"
    else:
        result.update({k: metrics.get(k) for k in ("accuracy", "macro_f1", "macro_average_precision", "num_samples")})
        result["headline"], result["headline_metric"] = metrics.get("accuracy"), "top-1 accuracy"
    if mode == "dominant":
        result.update(errors_not_errors(run_dir))
    return result


def errors_not_errors(run_dir: Path) -> dict[str, Any]:
    """Share of a dominant run's wrong answers whose predicted class is present in the image."""
    predictions = np.load(run_dir / "predictions.npz")
    packed = [p for p in sorted((run_dir / "data").glob("dominant-*")) if p.is_dir()]
    if len(packed) != 1:
        raise FileNotFoundError(f"{run_dir}/data: expected one derived dominant-* directory, found {len(packed)}")
    targets = load_targets(packed[0], "val")
    labels, predicted = predictions["labels"], predictions["probabilities"].argmax(1)
    if len(targets) != len(labels):
        raise ValueError(f"{run_dir}: {len(labels)} predictions but {len(targets)} held-out targets")
    wrong = predicted != labels
    present = targets[np.arange(len(labels)), predicted].astype(bool)
    return {
        "wrong_answers": int(wrong.sum()),
        "wrong_but_present": int((wrong & present).sum()),
        "share_wrong_but_present": float(present[wrong].mean()) if wrong.any() else None,
        "accuracy_if_any_present_label_counts": float(np.mean(present)),
    }


def conclusions(data: dict, contrast: dict | None, runs: list[dict]) -> list[dict[str, Any]]:
    """Findings with their measured effect (a share or a difference of shares), largest effect first."""
    other = contrast or {}
    name = other.get("name", "the contrast set")
    found: list[dict[str, Any]] = []

    def add(effect: float | None, text: str) -> None:
        if effect is not None and np.isfinite(effect):
            found.append({"effect": round(float(effect), 4), "text": text})

    tiny = data["resized_object_size"]["32x32"]["share_under_4px"]
    tiny_c = (other.get("resized_object_size") or {}).get("32x32", {}).get("share_under_4px", 0.0) or 0.0
    add(
        tiny - tiny_c,
        f"{tiny:.0%} of the objects are smaller than 4 px once the image is squeezed to 32x32 "
        f"({name}: {tiny_c:.0%}); {data['resized_object_size']['64x64']['share_under_4px']:.0%} still are at 64x64.",
    )
    multi = data["share_images_2plus_categories"]
    multi_c = other.get("share_images_2plus_categories", 0.0)
    add(
        multi - multi_c,
        f"{multi:.0%} of the images hold two or more categories ({name}: {multi_c:.0%}), so one "
        f"label per image is wrong by construction; {data['categories_per_image']['mean']:.1f} categories per "
        "image on average.",
    )
    ambiguous = data["share_ambiguous_images"]
    add(
        ambiguous - other.get("share_ambiguous_images", 0.0),
        f"In {ambiguous:.0%} of the images the dominant "
        f"category covers under half of the annotated area: the 'dominant' label is a coin toss there.",
    )
    largest = data["largest_class_share_of_instances"]
    largest_c = other.get("largest_class_share_of_instances", 0.0)
    add(
        largest - largest_c,
        f"'{data['largest_class']}' alone is {largest:.0%} of the objects and appears in "
        f"{data['largest_class_share_of_images']:.0%} of the images ({name}'s largest class: {largest_c:.0%} of the "
        f"objects); imbalance max/min {data['imbalance_max_min_ratio']:.0f}, Gini {data['imbalance_gini']:.2f}.",
    )
    by_key = {(r["mode"], r["size"]): r for r in runs}
    base = data.get("baselines") or {}
    no_look = {
        "dominant": base.get("majority_top1_dominant"),
        "context": base.get("majority_top1_dominant"),
        "crops": base.get("majority_top1_crops"),
        "multilabel": (base.get("class_prior_map") or {}).get("map_macro"),
    }
    for r in runs:
        b = no_look.get(r["mode"])
        if b is not None and r["headline"] is not None:
            add(
                abs(r["headline"] - b),
                f"{r['mode']} at {r['size']}: {r['headline_metric']} {r['headline']:.3f} "
                f"against {b:.3f} for the no-look baseline ({r['headline'] - b:+.3f}).",
            )
    for r in runs:
        if r["mode"] == "dominant" and r.get("share_wrong_but_present") is not None:
            add(
                r["share_wrong_but_present"],
                f"{r['share_wrong_but_present']:.0%} of the dominant model's wrong "
                f"answers at {r['size']} ({r['wrong_but_present']} of {r['wrong_answers']}) name a class that is in "
                "the image: errors that are not errors.",
            )
    for (mode, size), r in by_key.items():
        for other_size in {s for m, s in by_key if m == mode and s != size}:
            o = by_key[(mode, other_size)]
            if _side(size) < _side(other_size) and r["headline"] is not None and o["headline"] is not None:
                add(
                    abs(o["headline"] - r["headline"]),
                    f"{mode}: {r['headline_metric']} {r['headline']:.3f} at "
                    f"{size} vs {o['headline']:.3f} at {other_size} ({o['headline'] - r['headline']:+.3f}).",
                )
        if mode == "crops" and ("dominant", size) in by_key:
            d = by_key[("dominant", size)]
            add(
                abs(r["headline"] - d["headline"]),
                f"At {size}, classifying each cropped object scores top-1 "
                f"{r['headline']:.3f} against {d['headline']:.3f} for whole images labelled by their dominant "
                f"category ({r['headline'] - d['headline']:+.3f}).",
            )
        if mode == "context" and ("dominant", size) in by_key:
            d = by_key[("dominant", size)]
            add(
                abs(d["headline"] - r["headline"]),
                f"At {size}, with the target's boxes masked out the model still "
                f"scores {r['headline']:.3f} (dominant with the object visible: {d['headline']:.3f}): what it "
                "learns from context alone.",
            )
    return sorted(found, key=lambda f: -abs(f["effect"]))


def _side(size: str) -> int:
    return int(size.split("x")[0])


def _row(label: str, fmt: str, value: Any, contrast: Any) -> str:
    show = lambda v: "-" if v is None else format(v, fmt)  # noqa: E731
    return f"| {label} | {show(value)} | {show(contrast)} |"


def headline_rows(data: dict, contrast: dict | None) -> list[str]:
    """The report's headline table as markdown rows (the data beside the contrast set)."""
    c = contrast or {}
    get = lambda d, *keys: _dig(d, keys)  # noqa: E731
    rows = [
        ("images", "d", ("images",)),
        ("instances (objects)", "d", ("instances",)),
        ("instances per image, mean", ".2f", ("instances_per_image", "mean")),
        ("categories per image, mean", ".2f", ("categories_per_image", "mean")),
        ("images with >= 2 categories", ".1%", ("share_images_2plus_categories",)),
        ("class imbalance max/min", ".1f", ("imbalance_max_min_ratio",)),
        ("class imbalance Gini", ".3f", ("imbalance_gini",)),
        ("largest class: share of instances", ".1%", ("largest_class_share_of_instances",)),
        ("largest class: share of images", ".1%", ("largest_class_share_of_images",)),
        ("COCO small / medium / large", "", ()),
        ("objects < 2 px at 32x32", ".1%", ("resized_object_size", "32x32", "share_under_2px")),
        ("objects < 4 px at 32x32", ".1%", ("resized_object_size", "32x32", "share_under_4px")),
        ("objects < 2 px at 64x64", ".1%", ("resized_object_size", "64x64", "share_under_2px")),
        ("objects < 4 px at 64x64", ".1%", ("resized_object_size", "64x64", "share_under_4px")),
        ("median object side at 32x32 (px)", ".1f", ("resized_object_size", "32x32", "median_side_px")),
        ("ambiguous images (dominant < half the area)", ".1%", ("share_ambiguous_images",)),
        ("baseline: majority-class top-1", ".3f", ("baselines", "majority_top1_dominant")),
        ("baseline: class-prior mAP (macro)", ".3f", ("baselines", "class_prior_map", "map_macro")),
    ]
    out = [f"| statistic | {data.get('name', 'data')} | {c.get('name', '-')} |", "| --- | --- | --- |"]
    for label, fmt, keys in rows:
        if not keys:
            out.append(f"| {label} | {_buckets(data)} | {_buckets(contrast)} |")
        else:
            out.append(_row(label, fmt, get(data, *keys), get(c, *keys) if contrast else None))
    return out


def _buckets(d: dict | None) -> str:
    if not d:
        return "-"
    return " / ".join(f"{d['coco_size_shares'][b]:.0%}" for b in ("small", "medium", "large"))


def _dig(d: Any, keys: tuple) -> Any:
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def runs_rows(runs: list[dict]) -> list[str]:
    sizes = sorted({r["size"] for r in runs}, key=_side)
    out = [f"| mode | metric | {' | '.join(sizes)} |", "| --- | --- |" + " --- |" * len(sizes)]
    for mode in ("dominant", "crops", "multilabel", "context", "none"):
        mine = {r["size"]: r for r in runs if r["mode"] == mode}
        if mine:
            metric = next(iter(mine.values()))["headline_metric"]
            cells = [
                f"{mine[s]['headline']:.3f}" if s in mine and mine[s]["headline"] is not None else "-" for s in sizes
            ]
            out.append(f"| {mode} | {metric} | {' | '.join(cells)} |")
    return out


def plot_report(data: dict, contrast: dict | None, runs: list[dict], out: Path) -> list[str]:
    """PNG plots beside report.md; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    sets = [(data, "tab:blue")] + ([(contrast, "tab:orange")] if contrast else [])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), dpi=100)
    for ax, key in zip(axes, ("instances_per_image", "categories_per_image"), strict=True):
        width = 0.8 / len(sets)
        for i, (d, color) in enumerate(sets):
            hist = d[key]["histogram"]
            xs, ys = [int(x) for x in hist], np.array(list(hist.values()), float) / max(1, d["images"])
            ax.bar(np.array(xs) + i * width, ys, width=width, color=color, label=d.get("name"))
        ax.set_xlabel(key.replace("_", " "))
        ax.set_ylabel("share of images")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "per_image_histograms.png")
    plt.close(fig)
    names.append("per_image_histograms.png")

    counts = sorted(data["instances_per_class"].items(), key=lambda kv: -kv[1])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.15 * len(counts) + 2), 3.5), dpi=100)
    ax.bar(range(len(counts)), [c for _, c in counts], color="tab:blue")
    ax.set_xticks(range(len(counts)), labels=[n for n, _ in counts], rotation=90, fontsize=6)
    ax.set_ylabel("instances")
    ax.set_title(f"instances per class (Gini {data['imbalance_gini']:.2f})")
    fig.tight_layout()
    fig.savefig(out / "class_instances.png")
    plt.close(fig)
    names.append("class_instances.png")

    sides = data.get("_sides") or {}
    if sides:
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for size, values in sides.items():
            v = np.sort(values)
            ax.plot(v, np.arange(1, len(v) + 1) / len(v), label=f"input {size}")
        for t in (2, 4):
            ax.axvline(t, color="gray", linestyle=":")
        ax.set_xscale("log")
        ax.set_xlabel("object side after resizing (px, sqrt of box area)")
        ax.set_ylabel("share of objects")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "object_sizes.png")
        plt.close(fig)
        names.append("object_sizes.png")

    if runs:
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        labels = [f"{r['mode']}\n{r['size']}" for r in runs]
        ax.bar(range(len(runs)), [r["headline"] or 0 for r in runs], color="tab:green")
        ax.set_xticks(range(len(runs)), labels=labels, fontsize=8)
        ax.set_ylabel("top-1 accuracy (multilabel: mAP)")
        fig.tight_layout()
        fig.savefig(out / "trained_results.png")
        plt.close(fig)
        names.append("trained_results.png")
    return names


def write_report(
    out: str | Path, data: dict, contrast: dict | None, runs: list[dict], commands: list[str] | None = None
) -> dict[str, Any]:
    """Write ``out/why.json``, ``out/report.md`` and the plots; returns the JSON document."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plots = plot_report(data, contrast, runs, out)
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("_")} if d else d  # noqa: E731
    found = conclusions(data, contrast, runs)
    document = {"data": strip(data), "contrast": strip(contrast), "runs": runs, "conclusions": found, "plots": plots}
    (out / "why.json").write_text(json.dumps(document, indent=2))
    lines = [
        f"# Why does image classification do badly on {data.get('name', 'this data')}?",
        "",
        "Every number below is computed from the annotations"
        + (" and the trained runs listed at the end" if runs else "")
        + " by `amlvision why`; the same numbers are in why.json. Definitions: amlvision/detection/why.py.",
        "",
        "## Conclusions, largest measured effect first",
        "",
        *[f"{i}. {f['text']} (effect {f['effect']:.2f})" for i, f in enumerate(found, 1)],
        "",
        "## Data",
        "",
        *headline_rows(data, contrast),
        "",
    ]
    if contrast is not None:
        lines += [f"{contrast.get('name')}: {contrast.get('definition', '')}", ""]
    if runs:
        lines += ["## Trained runs", "", *runs_rows(runs), ""]
        for r in runs:
            if r.get("share_wrong_but_present") is not None:
                lines.append(
                    f"- dominant at {r['size']}: {r['wrong_but_present']} of {r['wrong_answers']} wrong answers "
                    f"({r['share_wrong_but_present']:.0%}) predict a class present in the image; counting any "
                    f"present class as right, top-1 would be {r['accuracy_if_any_present_label_counts']:.3f}."
                )
        lines += ["", "Runs: " + ", ".join(f"`{r['run']}`" for r in runs), ""]
    lines += ["## Plots", "", *[f"![{p}]({p})" for p in plots], ""]
    if commands:
        lines += ["## Commands", "", "```", *commands, "```", ""]
    (out / "report.md").write_text("\n".join(lines))
    return document
