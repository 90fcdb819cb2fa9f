"""Reports people can look at: the confusion matrix as a PNG (counts and row-normalised,
drawn with OpenCV) and one self-contained HTML page (no network: images are inlined) with the
metrics table, the confusion matrix and a gallery of misclassified crops."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass

import numpy as np

CELL, MARGIN = 64, 130


@dataclass(frozen=True)
class Misclassified:
    path: str            # as listed in data.json
    true_label: str
    predicted: str
    confidence: float
    thumbnail: np.ndarray  # RGB uint8


def _panel(matrix: np.ndarray, names: list[str], normalised: bool, title: str) -> np.ndarray:
    import cv2

    n = len(names)
    size = MARGIN + CELL * n + 10
    panel = np.full((size + 30, size, 3), 255, np.uint8)
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, float), where=rows > 0)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(panel, title, (10, 22), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        for j in range(n):
            x, y = MARGIN + j * CELL, MARGIN + i * CELL
            shade = int(255 - 200 * shares[i, j])
            cv2.rectangle(panel, (x, y), (x + CELL, y + CELL), (255, shade, shade), -1)
            cv2.rectangle(panel, (x, y), (x + CELL, y + CELL), (180, 180, 180), 1)
            text = f"{shares[i, j]:.2f}" if normalised else str(int(matrix[i, j]))
            colour = (255, 255, 255) if shares[i, j] > 0.6 else (0, 0, 0)
            cv2.putText(panel, text, (x + 8, y + CELL // 2 + 5), font, 0.45, colour, 1,
                        cv2.LINE_AA)
        cv2.putText(panel, names[i][:12], (8, MARGIN + i * CELL + CELL // 2 + 5), font, 0.45,
                    (0, 0, 0), 1, cv2.LINE_AA)
        label = np.full((20, MARGIN - 10, 3), 255, np.uint8)
        cv2.putText(label, names[i][:12], (2, 15), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        rotated = cv2.rotate(label, cv2.ROTATE_90_COUNTERCLOCKWISE)
        x = MARGIN + i * CELL + (CELL - rotated.shape[1]) // 2
        y = MARGIN - rotated.shape[0] - 2  # column labels end just above the grid
        panel[y:y + rotated.shape[0], x:x + rotated.shape[1]] = np.minimum(
            panel[y:y + rotated.shape[0], x:x + rotated.shape[1]], rotated)
    cv2.putText(panel, "predicted ->  (rows: true class)", (MARGIN, size + 20), font, 0.45,
                (80, 80, 80), 1, cv2.LINE_AA)
    return panel


def confusion_png(matrix: list[list[int]], names: list[str]) -> bytes:
    import cv2

    m = np.array(matrix)
    image = np.concatenate([_panel(m, names, False, "counts"),
                            _panel(m, names, True, "row-normalised")], axis=1)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _jpeg_b64(rgb: np.ndarray, side: int = 112) -> str:
    import cv2

    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    small = cv2.resize(rgb, (max(1, int(w * scale)), max(1, int(h * scale))))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    return base64.b64encode(buf.tobytes()).decode()


def _row(cells: list[str], tag: str = "td") -> str:
    return "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>"


def report_html(metrics: dict, png: bytes, misclassified: list[Misclassified],
                title: str, missed: list[Misclassified] | None = None) -> str:
    """The page. Numbers carry ``data-key`` attributes so tests can read them back."""
    def num(key: str, value: float) -> str:
        return f'<span data-key="{html.escape(key)}">{value:.4f}</span>'

    rows = [_row(["class", "precision", "recall", "F1", "support"], "th")]
    for name, m in metrics["per_class"].items():
        rows.append(_row([html.escape(name)] + [num(f"{name}.{k}", m[k])
                                                for k in ("precision", "recall", "f1")]
                         + [f'<span data-key="{html.escape(name)}.support">{m["support"]}'
                            "</span>"]))
    for avg in ("macro_avg", "weighted_avg"):
        rows.append(_row([avg] + [num(f"{avg}.{k}", metrics[avg][k])
                                  for k in ("precision", "recall", "f1")] + [""]))
    names = metrics["confusion_matrix"]["labels"]
    cm = [_row([""] + [html.escape(n) for n in names], "th")]
    for name, counts in zip(names, metrics["confusion_matrix"]["matrix"], strict=True):
        cm.append(_row([f"<b>{html.escape(name)}</b>"] + [str(c) for c in counts]))
    gallery = _gallery(misclassified)
    no_hand = "" if "no_hand_found" not in metrics else (
        f' No hand found in <span data-key="no_hand_found">{metrics["no_hand_found"]}</span> '
        f'(counted as {html.escape(metrics["no_hand_found_counted_as"])}).')
    hands = "" if "full_frame" not in metrics else _detection_html(metrics["full_frame"],
                                                                    missed or [])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
figure {{ display: inline-block; margin: 6px; width: 150px; vertical-align: top;
         font-size: 12px; word-break: break-all; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Accuracy {num("accuracy", metrics["accuracy"])} &middot; macro F1
{num("macro_avg.f1", metrics["macro_avg"]["f1"])} &middot;
<span data-key="images_evaluated">{metrics["images_evaluated"]}</span> images evaluated,
<span data-key="images_skipped">{metrics["images_skipped"]}</span> skipped.{no_hand}</p>
{hands}
<h2>Per class</h2><table>{"".join(rows)}</table>
<h2>Confusion matrix</h2><table id="confusion">{"".join(cm)}</table>
<img alt="confusion matrix" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Misclassified {"hands" if hands else "crops"} ({len(misclassified)})</h2>
<div id="gallery">{gallery}</div>
</body></html>
"""


def _gallery(items: list[Misclassified]) -> str:
    return "".join(
        f'<figure><img alt="{html.escape(m.path)}" src="data:image/jpeg;base64,'
        f'{_jpeg_b64(m.thumbnail)}"><figcaption>true <b>{html.escape(m.true_label)}</b><br>'
        f"predicted <b>{html.escape(m.predicted)}</b> ({m.confidence:.2f})<br>"
        f"<small>{html.escape(m.path)}</small></figcaption></figure>"
        for m in items)


def _detection_html(d: dict, missed: list[Misclassified]) -> str:
    """Full frames: the hands found against the annotated ones, and the missed ones."""
    def cell(key: str) -> str:
        value = d[key]
        shown = f"{value:.4f}" if isinstance(value, float) else str(value)
        return f'<span data-key="full_frame.{key}">{shown}</span>'

    return (f"<h2>Hands found</h2><p>{cell('annotated_hands')} annotated hands, "
            f"{cell('found_hands')} found, {cell('matched_hands')} matched at IoU &ge; "
            f"{d['match_iou']}: recall {cell('hand_recall')}, precision "
            f"{cell('hand_precision')}; {cell('missed_hands')} missed, {cell('false_hands')} "
            f"false. Gestures below are scored on the matched hands.</p>"
            f'<h2>Missed hands ({len(missed)})</h2><div id="missed">{_gallery(missed)}</div>')
