#!/usr/bin/env bash
# Issue 15, roads: the measurements that need more compute than the shared 2-core box had (one GPU:
# about 5-10 minutes). Writes benchmarks/results/road_selection.{json,md} and, under ${OUT:-/tmp/out},
# the outer 5-fold cross-validation of the old default (select_by val) and the new one (select_by auto
# = 4-fold CV inside each outer fold's 16 images). Run from the repository root:
#   BIODL_ROADS=path/to/roads_epfl bash benchmarks/road_selection_device.sh
set -euo pipefail
ROADS=${BIODL_ROADS:-../shared/datasets/images/roads_epfl}
OUT=${OUT:-/tmp/out}
PY=${PY:-python}
mkdir -p "$OUT"
export BIODL_ROADS=$ROADS PYTHONPATH=src
# 1. selection rules from leave-4-images-out folds (5 trainings of 100 epochs at the default 0.25 scale)
$PY benchmarks/road_selection.py train --fold all --epochs 100 --every 5 --work "$OUT/selection" > "$OUT/selection.log" 2>&1
$PY benchmarks/road_selection.py analyse --work "$OUT/selection"
cp benchmarks/results/road_selection.* "$OUT/"
# 2. the product defaults, outer 5-fold CV over the 20 images: old (select_by val) vs new (select_by auto)
for mode in val auto; do
  /usr/bin/time -v $PY -m biodl train --data-type image --data-path "$ROADS/images" --mask-dir "$ROADS/groundtruth" \
    --mask-threshold 128 --model vgg_autoencoder --cv 5 --select-by $mode --output-dir "$OUT/cv_$mode" \
    --set train.progress_bar=false > "$OUT/cv_$mode.log" 2>&1
  $PY -c "import json,sys; m=json.load(open('$OUT/cv_$mode/metrics.json')); print('$mode', m['test']['patch_f1'], m['cv']['test_std']['patch_f1'], [round(f['test']['patch_f1'],3) for f in m['cv']['per_fold']])" | tee -a "$OUT/summary.txt"
done
