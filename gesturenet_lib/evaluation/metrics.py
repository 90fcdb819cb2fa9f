"""Classification metrics people can read: accuracy, per-class precision, recall, F1 and
support, macro and weighted averages, and the confusion matrix with class names."""

from __future__ import annotations

import statistics

import numpy as np


def classification_metrics(truth: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    """Metrics of integer labels ``truth`` vs ``pred`` over classes ``names`` (index order).
    A prediction of -1 means "no answer" (a hand_landmarks model that found no hand and has
    no "random" class): it counts against recall and accuracy, and is in no matrix column."""
    n = len(names)
    matrix = np.zeros((n, n), dtype=np.int64)
    answered = pred >= 0
    np.add.at(matrix, (truth[answered], pred[answered]), 1)
    actual_counts = np.bincount(truth, minlength=n) if len(truth) else np.zeros(n, np.int64)
    per_class = {}
    for i, name in enumerate(names):
        tp = int(matrix[i, i])
        predicted, actual = int(matrix[:, i].sum()), int(actual_counts[i])
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1,
                           "support": actual}
    support = np.array([per_class[c]["support"] for c in names], dtype=float)
    total = support.sum()

    def average(key: str) -> dict:
        values = np.array([per_class[c][key] for c in names])
        weighted = float((values * support).sum() / total) if total else 0.0
        return {"macro": float(values.mean()) if n else 0.0, "weighted": weighted}

    return {
        "accuracy": float(np.trace(matrix) / total) if total else 0.0,
        "per_class": per_class,
        "macro_avg": {k: average(k)["macro"] for k in ("precision", "recall", "f1")},
        "weighted_avg": {k: average(k)["weighted"] for k in ("precision", "recall", "f1")},
        "confusion_matrix": {"labels": list(names), "matrix": matrix.tolist()},
    }


def metrics_table(metrics: dict) -> str:
    """The stdout table."""
    lines = [f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name, m in metrics["per_class"].items():
        lines.append(f"{name:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}"
                     f"{m['support']:>9d}")
    support = sum(m["support"] for m in metrics["per_class"].values())
    for key in ("macro_avg", "weighted_avg"):
        a = metrics[key]
        lines.append(f"{key:<14}{a['precision']:>10.4f}{a['recall']:>10.4f}{a['f1']:>10.4f}"
                     f"{support:>9d}")
    lines.append(f"accuracy {metrics['accuracy']:.4f} on {metrics['images_evaluated']} images"
                 f" ({metrics['images_skipped']} skipped)")
    if "no_hand_found" in metrics:
        lines.append(f"no hand found in {metrics['no_hand_found']} images (counted as "
                     f"{metrics['no_hand_found_counted_as']})")
    return "\n".join(lines)


def fold_summary(fold_metrics: list[dict]) -> dict:
    """Mean and spread (population standard deviation) of accuracy and macro-F1 over folds."""
    summary: dict = {"folds": len(fold_metrics)}
    for key, pick in (("accuracy", lambda m: m["accuracy"]),
                      ("macro_f1", lambda m: m["macro_avg"]["f1"])):
        values = [pick(m) for m in fold_metrics]
        summary[f"{key}_mean"] = statistics.fmean(values) if values else 0.0
        summary[f"{key}_std"] = statistics.pstdev(values) if len(values) > 1 else 0.0
    return summary
