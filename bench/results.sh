#!/usr/bin/env bash
# Every run of docs/results.md: train, then evaluate (FID, KID, FID_inf, precision/recall of
# prior samples at N images); two runs at a time, one BLAS thread each.
#
#   pip install -e ".[fid]" pythae==0.1.2
#   bash bench/results.sh                       # every run on MNIST, into runs/results/
#   DATASETS="mnist fashion" bash bench/results.sh
#   SEEDS="0" bash bench/results.sh vae wae-mmd  # only the labels given
#   python bench/results_table.py runs/results   # the tables of docs/results.md
#
# Settings for a 2-core CPU (the WAE paper trains 100 epochs of its larger conv nets on a
# GPU): the small conv net (32-64-128 channels) for both libraries and every model, 2,000
# steps of batch 100 (20 epochs of 10,000 training images: the shared MNIST ones, the first
# 10,000 of Fashion-MNIST's 60,000), the paper's learning-rate drops
# (/2, then /5) at the same fractions (30 % and 50 %) of the shorter run. Each preset keeps
# its own objective (the official cost scale 0.05 for the WAE presets). A run that already
# has metrics.json is skipped, so the script resumes. Wall-clock times go to
# $OUT/times.tsv.
set -euo pipefail -o noglob

DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/results}
N=${N:-2000}
SEEDS=${SEEDS:-0 1 2}
DATASETS=${DATASETS:-mnist}
PARALLEL=${PARALLEL:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

common() {  # the data set's settings: 2,000 steps of batch 100 with the WAE schedule
  case $1 in
    mnist) echo "--set data.root=$DATA --set model.net=small --set train.epochs=20 --set train.lr_milestones=[6,10]" ;;
    fashion) echo "--set data.root=$DATA --set data.name=fashion-mnist --set data.limit=10000 --set model.net=small --set train.epochs=20 --set train.lr_milestones=[6,10]" ;;
  esac
}

# label | training command (the preset's objective, with the label's change)
LABELS=(
  "vae|waekit train --preset vae-mnist"
  "wae-mmd|waekit train --preset wae-mmd-mnist"
  "wae-gan|waekit train --preset wae-gan-mnist"
  "infovae|waekit train --preset infovae-mnist"
  "pythae-vae|python bench/pythae_peer.py --preset vae-mnist"
  "pythae-wae-mmd|python bench/pythae_peer.py --preset wae-mmd-mnist"
  "vae-fp32|waekit train --preset vae-mnist --set train.precision=fp32"
  "wae-mmd-fp32|waekit train --preset wae-mmd-mnist --set train.precision=fp32"
  "wae-mmd-scale1|waekit train --preset wae-mmd-mnist --set model.recon_scale=1.0"
)

run_job() {
  set -euf -o pipefail
  local name=$1 train=$2 dir=$OUT/$1 t0 t1 t2 log
  [ -f "$dir/metrics.json" ] && { echo "have $name"; return 0; }
  log=$OUT/logs/${name//\//_}
  mkdir -p "$OUT/logs"
  rm -rf "$dir"
  t0=$(date +%s.%N)
  case $train in
    waekit*) $train --out "$dir" --no-progress --no-report ;;
    *) $train --out "$dir" ;;
  esac > "$log.train.log" 2>&1
  t1=$(date +%s.%N)
  waekit evaluate "$dir" -n "$N" --fid-sets samples --device cpu > "$log.evaluate.log" 2>&1
  t2=$(date +%s.%N)
  printf '%s\t%.0f\t%.0f\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" \
    >> "$OUT/times.tsv"
  echo "done $name"
}
export -f run_job
export OUT N

mkdir -p "$OUT"
jobs=()
for seed in $SEEDS; do  # seed by seed, so a cut-short sweep still has whole seeds
  for data in $DATASETS; do
    for entry in "${LABELS[@]}"; do
      label=${entry%%|*}
      if [ $# -eq 0 ] || [[ " $* " == *" $label "* ]]; then
        jobs+=("$data/$label/seed-$seed" "${entry#*|} $(common "$data") --set train.seed=$seed")
      fi
    done
  done
done
printf '%s\0' "${jobs[@]}" | xargs -0 -n 2 -P "$PARALLEL" bash -c 'run_job "$@"' _
