#!/usr/bin/env bash
# Every benchmark, in sequence (one at a time: the numbers are for a 2-core machine).
# Results land in bench-out/; `python benchmarks/report.py` turns them into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/bench_analyze.py
$PY benchmarks/bench_predict.py --frames 100
$PY benchmarks/bench_accuracy.py --set real --folds 4 --variants unet:align,unet:raw --minutes 6
$PY benchmarks/bench_train.py --minutes 10
$PY benchmarks/bench_accuracy.py --set synthetic --folds 4 --variants unet:raw --minutes 4
$PY benchmarks/report.py
