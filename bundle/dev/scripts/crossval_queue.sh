#!/usr/bin/env bash
# Developer queue for the training runs of docs/results.md on a 2-core CPU machine, resumable: each step is skipped
# when its result exists, and every training resumes from its last saved state. From anywhere:
#   nohup bash bundle/dev/scripts/crossval_queue.sh [cv|cv2|ship|both] >> runs/cv_queue.log 2>&1 &
# Two lanes, one core each (two 1-thread training processes make more iterations than one 2-thread process,
# docs/training.md "Throughput"); `both` runs both, one lane name that lane alone on both cores (default: cv);
# `cv2` runs the cv lane twice side by side, one thread each: each fold is locked while one of them trains and
# scores it (flock on DIR/.fold_K.lock), so the other takes the next free fold or step (fold_pass below).
# ship: the weights to ship (rule 3): the recipe on every case but the embedded sample's, 20,000 iterations, cosine
#   over all of them (runs/cv/fold_all). It made the 0.16.0 weights; run it again only to retrain them.
# cv: per step N = 2000, 4000, 10000: each diffusion fold trained to N and its held-out cases scored at N, then the
#   pooled score (the learning curve). At 4,000: four samples over tissue boxes (rule 13, the same snapshots), then
#   the faint-lesion branch (rule 7, from the states at 2,000), then the lesion-balanced crops (rule 17, from the
#   same states). At
#   10,000: tiles over tissue boxes (rule 5) and with four DDIM steps (rule 16), both on the diffusion snapshots, and
#   the baseline folds; last the 1.5x wider
#   network to 2,500 iterations (the CPU of the default's 4,000; rule 9). Its processes take both cores once the
#   ship lane has finished.
# runs/ does not always survive from one CPU session to the next: at the end of a session
# `python -m bundle.dev keep-states` mirrors the newest (compact) training states and the per-fold scores into
# models/in_training/ to be committed, and the queue starts by restoring them where runs/ has nothing newer.
cd "$(dirname "$0")/../../.."  # the bundle root
py=.venv/bin/python
lane=${1:-cv}
mkdir -p runs

ship_lane() {  # ship_lane THREADS
  OMP_NUM_THREADS=$1 $py -m bundle crossval train --folds all --until 20000
}

cv_threads=0  # 0: decide per process (below); cv2 sets 1

threads() {  # 1 while a weights-to-ship training runs beside or in the cv2 lanes, else 2
  if [ "$cv_threads" != 0 ]; then echo "$cv_threads"
  elif pgrep -f "crossval train --folds all" > /dev/null; then echo 1; else echo 2; fi
}

fold_pass() {  # fold_pass WAIT MODEL N OUTPUT_DIR SCORE_PREFIX TRAIN(yes|no) [extra train flags]
  # each fold trained (TRAIN=yes) and scored unless done; a fold another lane holds is skipped (WAIT=-n) or waited
  # for (WAIT=""); the lane that finds all four scored pools them
  local wait=$1 model=$2 n=$3 dir=$4 prefix=$5 train=$6 k rc
  shift 6
  mkdir -p "$dir"
  scored() { [ -f "$dir/${prefix}_$n/fold_$1/metrics.json" ]; }
  for k in 0 1 2 3; do
    scored $k && continue
    (
      flock $wait 9 || exit 75
      scored $k && exit 0
      if [ "$train" = yes ]; then
        OMP_NUM_THREADS=$(threads) $py -m bundle crossval train --model "$model" --output_dir "$dir" --folds $k "$@" \
          || exit 1
      fi
      OMP_NUM_THREADS=$(threads) $py -m bundle crossval score --model "$model" --output_dir "$dir" --folds $k \
        --iterations "$n"
    ) 9> "$dir/.fold_$k.lock"
    rc=$?
    [ $rc = 0 ] || [ $rc = 75 ] || return 1
  done
  for k in 0 1 2 3; do scored $k || return 0; done
  ( flock 9; pooled "$dir/${prefix}_$n/metrics.json" \
      || $py -m bundle crossval score --model "$model" --output_dir "$dir" --iterations "$n" ) 9> "$dir/.pooled.lock"
}

# fold by fold, then pooled. fold_steps moves on past a fold the other cv2 lane holds: that lane finishes and pools
# it, and a later step on the same OUTPUT_DIR (same fold locks) skips that fold too until the holder gets there;
# fold_steps_wait waits for it, before a step that reads all four folds from another directory.
fold_steps() { fold_pass -n "$@"; }
fold_steps_wait() { fold_pass "" "$@"; }

pooled() {  # pooled METRICS_JSON: true when it pools all four folds
  [ -f "$1" ] && $py -c "import json, sys; sys.exit(len(json.load(open('$1'))['settings']['folds']) != 4)"
}

cv_lane() {
  # the learning curve first, the candidates where their rules compare, the wider network (rule 9) last
  local n step
  for n in 2000 4000 10000; do
    if [ $n = 2000 ]; then step=fold_steps_wait; else step=fold_steps; fi  # the branches below copy the states at 2,000
    $step diffusion $n runs/cv score yes --until $n || return 1
    if [ $n = 2000 ]; then  # the faint-lesion branch starts from the states at 2,000 (copied, before they move on)
      ( flock 9; for k in 0 1 2 3; do $py -m bundle crossval train --model faint_lesions --folds $k --until 2000 || exit 1; done
      ) 9> runs/.faint_branch.lock || return 1
    fi
    if [ $n = 4000 ]; then  # rule 13's accuracy part (its speed part passed), then rule 7
      fold_steps samples_4_tissue_boxes $n runs/cv samples_4_tissue_boxes_score no || return 1
      fold_steps faint_lesions $n runs/cv_faint score yes --until $n || return 1
      fold_steps balanced_crops $n runs/cv_balanced score yes --until $n || return 1  # rule 17
    fi
  done
  fold_steps tissue_boxes 10000 runs/cv tissue_boxes_score no || return 1
  fold_steps tissue_boxes_steps_4 10000 runs/cv tissue_boxes_steps_4_score no || return 1  # rule 16 re-applied
  fold_steps baseline 10000 runs/cv_baseline score yes --until 10000 || return 1
  fold_steps wide 2500 runs/cv_wide score yes --until 2500 || return 1
}

$py -m bundle.dev restore-states || exit 1
case $lane in
  ship) ship_lane 2 ;;
  cv) cv_lane ;;
  cv2) cv_threads=1; cv_lane & other=$!; cv_lane; rc=$?; wait $other || rc=1; exit $rc ;;
  both) ship_lane 1 & cv_lane; wait ;;
  *) echo "usage: $0 [cv|cv2|ship|both]"; exit 2 ;;
esac
