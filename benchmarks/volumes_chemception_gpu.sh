#!/usr/bin/env bash
# Issue 17 device check (one GPU, ~12 min): the figures the shared 2-core CPU could not produce in time.
#   1. AdrenalMNIST3D 28³: 5-fold CV over train+val, seeds 0 1 2 (single networks, flip vs dihedral TTA, seed ensembles,
#      logistic regression / random forest on 7³ voxels in the same folds);
#   2. Tox21 Chemception, the contract command with today's defaults (stem stride 2): metrics.json test.auroc;
#   3. ESOL Chemception (RMSE bar 1.0).
# Run from the repository root with ../shared/datasets present (or DATA=path/to/datasets); results go to $OUT.
set -u
OUT=${OUT:-/tmp/h17_out}
DATA=${DATA:-../shared/datasets}
PY=${PY:-python}
export PYTHONPATH=src
mkdir -p "$OUT"
T="NR-AR NR-AR-LBD NR-AhR NR-Aromatase NR-ER NR-ER-LBD NR-PPAR-gamma SR-ARE SR-ATAD5 SR-HSE SR-MMP SR-p53"
nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/device.txt" 2>&1
( cd benchmarks && timeout 200 $PY adrenal_cv.py --seeds 0 1 2 --threads 4 && $PY adrenal_cv.py --combine ) > "$OUT/adrenal_cv.log" 2>&1
cp benchmarks/results/adrenal_cv* "$OUT/" 2>/dev/null
timeout 240 $PY -m biodl train --data-type molecule --model chemception --data-path "$DATA/molecules/moleculenet/tox21.csv" \
    --smiles-column smiles --target-columns $T --task classification --skip-invalid --output-dir "$OUT/tox21_chemception" \
    --set train.progress_bar=false > "$OUT/tox21_chemception.log" 2>&1
timeout 240 $PY -m biodl train --data-type molecule --model chemception --data-path "$DATA/molecules/moleculenet/delaney.csv" \
    --target-columns logp --task regression --output-dir "$OUT/esol_chemception" --set train.progress_bar=false \
    > "$OUT/esol_chemception.log" 2>&1
grep -h '"auroc"\|"rmse"' "$OUT"/*/metrics.json | head -20
