"""The shipped model's benchmark record: the summary table of BENCHMARKS.md as
src/beadseg/models/weights/default_benchmarks.json, which the model card of
`beadseg export default --format bioimageio` quotes (beadseg.integrations.export.model_card).

BENCHMARKS.md is the one source: after editing its summary table (a new model, new numbers), run

    python benchmarks/model_card.py          # rewrite default_benchmarks.json
    python benchmarks/model_card.py --check  # exit 1 while the two differ (tests/test_model_card.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "src" / "beadseg" / "models" / "weights" / "default_benchmarks.json"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from beadseg.integrations.export.model_card import parse_benchmarks

    text = json.dumps(parse_benchmarks((ROOT / "BENCHMARKS.md").read_text()), indent=1) + "\n"
    if "--check" in argv:
        same = RECORD.is_file() and RECORD.read_text() == text
        print(f"{RECORD.name} {'matches' if same else 'differs from'} BENCHMARKS.md")
        return 0 if same else 1
    RECORD.write_text(text)
    print(f"wrote {RECORD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
