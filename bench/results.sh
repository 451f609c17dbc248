#!/usr/bin/env bash
# Every run of docs/results.md: train, evaluate (FID at N images), report; two runs at a time.
#
#   pip install -e ".[fid]" pythae==0.1.2
#   bash bench/results.sh                 # all runs, into runs/results/
#   bash bench/results.sh vae-mnist       # the runs whose names are given
#
# Settings for a 2-core CPU (the WAE paper trains 100 epochs with its larger conv nets on a
# GPU): the small conv net (32-64-128 channels) for both libraries, 20 epochs of the 10,000
# shared MNIST training images, 5 epochs of the 60,000 Fashion-MNIST ones, the paper's
# learning-rate drops (/2, then /5) moved to the same fractions of the shorter runs, and one
# BLAS thread per run. Wall-clock times go to runs/results/times.tsv.
set -euo pipefail -o noglob

DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/results}
N=${N:-500}
PARALLEL=${PARALLEL:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

MNIST="--set data.root=$DATA --set model.net=small --set train.epochs=20 --set train.lr_milestones=[6,10]"
FASHION="--set data.root=$DATA --set data.name=fashion-mnist --set model.net=small --set train.epochs=5 --set train.lr_milestones=[2,3]"
ONE_D="--set data.root=$DATA --set train.epochs=30"

# name | training command (the run folder is $OUT/name) | evaluate flags
JOBS=(
  "vae-mnist|waekit train --preset vae-mnist $MNIST|"
  "wae-mmd-mnist|waekit train --preset wae-mmd-mnist $MNIST|"
  "wae-gan-mnist|waekit train --preset wae-gan-mnist $MNIST|"
  "infovae-mnist|waekit train --preset infovae-mnist $MNIST|"
  "pythae-vae-mnist|python bench/pythae_peer.py --preset vae-mnist $MNIST|"
  "pythae-wae-mmd-mnist|python bench/pythae_peer.py --preset wae-mmd-mnist $MNIST|"
  "wae-gan-mnist-1d|waekit train --preset wae-gan-mnist-1d $ONE_D|--no-fid"
  "vae-fashion|waekit train --preset vae-mnist $FASHION|"
  "wae-mmd-fashion|waekit train --preset wae-mmd-mnist $FASHION|"
  "wae-gan-fashion|waekit train --preset wae-gan-mnist $FASHION|"
  "infovae-fashion|waekit train --preset infovae-mnist $FASHION|"
  "pythae-vae-fashion|python bench/pythae_peer.py --preset vae-mnist $FASHION|"
  "pythae-wae-mmd-fashion|python bench/pythae_peer.py --preset wae-mmd-mnist $FASHION|"
)

run_job() {
  set -euf -o pipefail
  local name=${1%%|*} rest=${1#*|}
  local train=${rest%%|*} eval_flags=${rest#*|}
  local dir=$OUT/$name t0 t1 t2
  mkdir -p "$OUT/logs"
  t0=$(date +%s.%N)
  case $train in
    waekit*) $train --out "$dir" --no-progress --no-report ;;
    *) $train --out "$dir" ;;
  esac > "$OUT/logs/$name.train.log" 2>&1
  t1=$(date +%s.%N)
  # shellcheck disable=SC2086
  waekit evaluate "$dir" -n "$N" $eval_flags > "$OUT/logs/$name.evaluate.log" 2>&1
  t2=$(date +%s.%N)
  waekit report "$dir" > "$OUT/logs/$name.report.log" 2>&1
  printf '%s\t%.0f\t%.0f\n' "$name" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" \
    >> "$OUT/times.tsv"
  echo "done $name"
}
export -f run_job
export OUT N

mkdir -p "$OUT"
selected=()
for job in "${JOBS[@]}"; do
  name=${job%%|*}
  if [ $# -eq 0 ] || [[ " $* " == *" $name "* ]]; then selected+=("$job"); fi
done
printf '%s\0' "${selected[@]}" | xargs -0 -P "$PARALLEL" -I{} bash -c 'run_job "$@"' _ {}
