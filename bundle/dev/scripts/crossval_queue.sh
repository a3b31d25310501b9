#!/usr/bin/env bash
# Developer queue for the training runs of docs/results.md on a CPU machine, resumable: each step is skipped when
# its result exists, and every training resumes from its last saved state. From anywhere:
#   nohup bash bundle/dev/scripts/crossval_queue.sh >> runs/cv_queue.log 2>&1 &
# 1. The weights to ship (rule 3): the recipe on every case but the embedded sample's, 20,000 iterations, cosine over all of them
#    (runs/cv/fold_all). runs/ does not always survive from one CPU session to the next: at the end of a session
#    `bash bundle/dev/scripts/keep_training_state.sh` copies the newest training state of that run into
#    models/in_training/ to be committed, and this queue resumes from there when runs/ has none.
# 2. Per step N = 2000, 4000, ...: diffusion folds to N, score (the learning curve). At 2,000 and 10,000: tiles over
#    tissue boxes (rule 5, scored on the diffusion snapshots) and the baseline folds to N with their score. At 4,000:
#    the faint-lesion branch (rule 7, from the states at 2,000), the 1.5x wider network to 2,500 iterations (the CPU
#    of the default's 4,000; rule 9) and the coarse head on the 2,000-iteration snapshots (rule 4).
cd "$(dirname "$0")/../../.."  # the bundle root
py=.venv/bin/python
ship=runs/cv/fold_all
if ! ls $ship/resume_checkpoint_*.pt > /dev/null 2>&1 && ls models/in_training/resume_checkpoint_*.pt > /dev/null 2>&1; then
  mkdir -p $ship && cp models/in_training/resume_checkpoint_*.pt $ship/ && echo "queue: resuming $ship from models/in_training"
fi
$py -m bundle crossval train --folds all --until 20000 || exit 1
for n in 2000 4000 6000 8000 10000; do
  [ -f runs/cv/score_$n/metrics.json ] || { $py -m bundle crossval train --until $n && $py -m bundle crossval score --iterations $n; } || exit 1
  if [ $n = 4000 ]; then
    [ -f runs/cv_faint/score_$n/metrics.json ] || { $py -m bundle crossval train --model faint_lesions --until $n && $py -m bundle crossval score --model faint_lesions --iterations $n; } || exit 1
    [ -f runs/cv_wide/score_2500/metrics.json ] || { $py -m bundle crossval train --model wide --until 2500 && $py -m bundle crossval score --model wide --iterations 2500; } || exit 1
    base=2000
    [ -f runs/cv_hybrid/base_$base/score_500/metrics.json ] || { $py -m bundle crossval train --model hybrid --output_dir runs/cv_hybrid/base_$base --base_iterations $base && $py -m bundle crossval score --model hybrid --output_dir runs/cv_hybrid/base_$base --iterations 500 && $py -m bundle crossval score --model coarse --output_dir runs/cv_hybrid/base_$base --iterations 500; } || exit 1
  fi
  case $n in 2000|10000) ;; *) continue ;; esac
  [ -f runs/cv/tissue_boxes_score_$n/metrics.json ] || $py -m bundle crossval score --model tissue_boxes --iterations $n || exit 1
  [ -f runs/cv_baseline/score_$n/metrics.json ] || { $py -m bundle crossval train --model baseline --until $n && $py -m bundle crossval score --model baseline --iterations $n; } || exit 1
done
