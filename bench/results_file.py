"""Where every benchmark writes its figures: bench/results/<name>.json (git-ignored)."""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, figures: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"wrote {out}")
    return out
