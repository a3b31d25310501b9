#!/usr/bin/env bash
# Developer queue for the cross-validation runs on a CPU machine (docs/results.md), resumable: each step is skipped
# when its result exists, and every training resumes from its last saved state. From anywhere:
#   nohup bash bundle/dev/scripts/crossval_queue.sh > runs/cv_queue.log 2>&1 &
# Per step N = 2000, 4000, ...: diffusion folds to N, score (the learning curve); at 4000 the faint-lesion branch
# (rule 7). The candidates that are decided
# once (docs/results.md rules 4 and 5) run at the first step and again at the last: tiles over tissue boxes (scored
# on the diffusion snapshots), the baseline folds to N and their score, the coarse head on the diffusion snapshots
# (hybrid and head alone; first step only).
cd "$(dirname "$0")/../../.."  # the bundle root
py=.venv/bin/python
for n in 2000 4000 6000 8000 10000; do
  [ -f runs/cv/score_$n/metrics.json ] || { $py -m bundle crossval train --until $n && $py -m bundle crossval score --iterations $n; } || exit 1
  if [ $n = 4000 ]; then  # rule 7: the faint-lesion branch (from the states at 2,000) against the score at 4,000
    [ -f runs/cv_faint/score_$n/metrics.json ] || { $py -m bundle crossval train --model faint_lesions --until $n && $py -m bundle crossval score --model faint_lesions --iterations $n; } || exit 1
  fi
  case $n in 2000|10000) ;; *) continue ;; esac
  [ -f runs/cv/tissue_boxes_score_$n/metrics.json ] || $py -m bundle crossval score --model tissue_boxes --iterations $n || exit 1
  [ -f runs/cv_baseline/score_$n/metrics.json ] || { $py -m bundle crossval train --model baseline --until $n && $py -m bundle crossval score --model baseline --iterations $n; } || exit 1
  [ $n = 2000 ] || continue
  [ -f runs/cv_hybrid/base_$n/score_500/metrics.json ] || { $py -m bundle crossval train --model hybrid --output_dir runs/cv_hybrid/base_$n --base_iterations $n && $py -m bundle crossval score --model hybrid --output_dir runs/cv_hybrid/base_$n --iterations 500 && $py -m bundle crossval score --model coarse --output_dir runs/cv_hybrid/base_$n --iterations 500; } || exit 1
done
