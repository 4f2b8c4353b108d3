#!/usr/bin/env bash
# Issue 15, roads: the measurements that need more compute than the shared 2-core box had. Two parts,
# each one command on one GPU (estimated, not run: `cv` 5-8 minutes, `rules` 2-4 minutes):
#   BIODL_ROADS=path/to/roads_epfl OUT=/tmp/out bash benchmarks/road_selection_device.sh cv
#   BIODL_ROADS=path/to/roads_epfl OUT=/tmp/out bash benchmarks/road_selection_device.sh rules
# cv:    outer 5-fold CV over the 20 images of the plain `biodl train --model vgg_autoencoder` defaults,
#        old (--select-by val: epoch and threshold on 3-4 validation images) and new (select_by auto:
#        4-fold CV inside each outer fold's 16 images, then one model on all 16); summary in $OUT/summary.txt.
# heldout K...: the same outer folds as `cv` (auto), one fold per process via benchmarks/road_heldout.py, so
#        the folds fit separate calls (e.g. `heldout 0 1` then `heldout 2 3 4`); then `--summary`.
# rules: benchmarks/road_selection.py at the default 0.25 scale, 100 epochs (selection rules compared
#        with choices made on other folds only; the pooled out-of-fold learning curve).
set -euo pipefail
ROADS=${BIODL_ROADS:-../shared/datasets/images/roads_epfl}
OUT=${OUT:-/tmp/out}
PY=${PY:-python}
mkdir -p "$OUT"
export BIODL_ROADS=$ROADS PYTHONPATH=src
QUIET=(--set train.progress_bar=false --set evaluate.baselines=[] --set evaluate.report=false --set evaluate.plots=false)
case "${1:-cv}" in
  cv)
    for mode in auto val; do
      start=$(date +%s)
      $PY -m biodl train --data-type image --data-path "$ROADS/images" --mask-dir "$ROADS/groundtruth" \
        --mask-threshold 128 --model vgg_autoencoder --cv 5 --select-by $mode --output-dir "$OUT/cv_$mode" \
        "${QUIET[@]}" ${EXTRA:-} > "$OUT/cv_$mode.log" 2>&1
      $PY -c "import json; m=json.load(open('$OUT/cv_$mode/metrics.json')); print('select_by $mode: test patch F1', round(m['test']['patch_f1'],4), '+-', round(m['cv']['test_std']['patch_f1'],4), [round(f['test']['patch_f1'],3) for f in m['cv']['per_fold']], 'val', round(m['val']['patch_f1'],4), '$(( $(date +%s) - start ))s')" | tee -a "$OUT/summary.txt"
    done ;;
  heldout)
    shift
    folds=("$@"); [ ${#folds[@]} -eq 0 ] && folds=(0 1 2 3 4)
    for k in "${folds[@]}"; do
      $PY benchmarks/road_heldout.py --fold "$k" --work "$OUT/heldout" > "$OUT/heldout_$k.log" 2>&1
    done
    $PY benchmarks/road_heldout.py --summary --work "$OUT/heldout" --command "BIODL_ROADS=... bash benchmarks/road_selection_device.sh heldout $*"
    cp benchmarks/results/road_heldout.* "$OUT/" ;;
  rules)
    $PY benchmarks/road_selection.py train --fold all --epochs 100 --every 5 --work "$OUT/selection" > "$OUT/selection.log" 2>&1
    $PY benchmarks/road_selection.py analyse --work "$OUT/selection"
    cp benchmarks/results/road_selection.* "$OUT/" ;;
  *) echo "usage: $0 cv|heldout [K...]|rules" >&2; exit 2 ;;
esac
