#!/usr/bin/env bash
# Copy the newest training state of the weights-to-ship run (runs/cv/fold_all) into models/in_training/, replacing
# the one there, so that a commit carries it to the next CPU session when runs/ does not survive
# (bundle/dev/scripts/crossval_queue.sh resumes from it). Remove models/in_training/ when the run has finished.
cd "$(dirname "$0")/../../.."  # the bundle root
newest=$(ls runs/cv/fold_all/resume_checkpoint_epoch=*.pt 2> /dev/null | sort -t= -k2 -n | tail -1)
[ -n "$newest" ] || { echo "error: runs/cv/fold_all has no training state to keep"; exit 1; }
mkdir -p models/in_training
rm -f models/in_training/resume_checkpoint_epoch=*.pt
cp "$newest" models/in_training/ && echo "kept $newest in models/in_training/"
