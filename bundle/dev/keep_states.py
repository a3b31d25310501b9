"""Carry the developer queue's training across CPU sessions whose ``runs/`` is not kept.

``keep`` mirrors what the queue (``bundle/dev/scripts/crossval_queue.sh``) needs to go on into ``models/in_training/``,
to be committed: for every training directory of the queue (``runs/cv*/``: ``runs/cv/fold_all``, ``runs/cv/fold_k``,
``runs/cv_faint/fold_k``, ...) its newest training state, compacted, and every per-fold score
(``score_<N>/fold_k/metrics.json``). ``restore`` copies them back where ``runs/`` has nothing newer, with the weight snapshot of the restored state's
iteration (``net_model_iteration=N.pt``, as the training writes them) where it is missing, so that a snapshot not yet
scored, or one a later step starts from, can still be used (its weights carry the bf16 rounding below).

A compact state is the full state (``resume_checkpoint_epoch=E.pt``: model, optimizer, learning-rate schedule,
trainer, RNG) with the model weights and the optimizer's moments (AdamW's ``exp_avg``, ``exp_avg_sq``) in bf16: 4.7 MB
instead of 9 MB for the shipped width. Training resumed from it goes on at the same iteration, learning rate and
optimizer state (``Optimizer.load_state_dict`` casts the moments back to the weights' float32); weights and moments
carry bf16 rounding once (relative 2^-9), below what bf16 autocast already does to every forward pass. (Dropping
the moments instead, as states kept before 2026-12-07 did, restarts AdamW's bias correction: its first steps move
every weight by about the full learning rate.)
"""

from __future__ import annotations

import glob
import os
import re
import shutil

import torch

KEPT = os.path.join("models", "in_training")
STATE = re.compile(r"resume_checkpoint_epoch=(\d+)\.pt")


def _newest_state(directory: str) -> tuple[int, str]:
    found = [(int(m.group(1)), os.path.join(directory, name)) for name in os.listdir(directory)
             if (m := STATE.fullmatch(name))] if os.path.isdir(directory) else []
    return max(found) if found else (-1, "")


def _bf16(value):
    return value.to(torch.bfloat16) if torch.is_tensor(value) and value.is_floating_point() else value


def compact_state(source: str, target: str) -> None:
    """Write the compact copy of the training state ``source`` to ``target`` (module docstring)."""
    state = torch.load(source, map_location="cpu", weights_only=True)
    state["model"] = {k: _bf16(v) for k, v in state["model"].items()}
    if "optimizer" in state:
        state["optimizer"]["state"] = {
            index: {name: _bf16(value) if name != "step" else value for name, value in moments.items()}
            for index, moments in state["optimizer"]["state"].items()
        }
    os.makedirs(os.path.dirname(target), exist_ok=True)
    torch.save(state, target + ".part")
    os.replace(target + ".part", target)


QUEUE_DIRS = "cv*"  # the queue's output directories under runs/ (runs/cv, runs/cv_faint, runs/cv_hybrid, ...)


def _training_dirs(root: str) -> list[str]:
    pattern = os.path.join(root, QUEUE_DIRS, "**", "resume_checkpoint_epoch=*.pt")
    return sorted({os.path.dirname(p) for p in glob.glob(pattern, recursive=True)})


def _copy_scores(source_root: str, target_root: str, only_missing: bool) -> list[str]:
    """Copy every per-fold score (``*score_<N>/fold_k/metrics.json``) of the queue's directories from one root to
    the other, where the target lacks it (or, unless ``only_missing``, holds an older copy)."""
    written = []
    pattern = os.path.join(source_root, QUEUE_DIRS, "**", "*score_*", "fold_*", "metrics.json")
    for score in glob.glob(pattern, recursive=True):
        target = os.path.join(target_root, os.path.relpath(score, source_root))
        if os.path.isfile(target) and (only_missing or os.path.getmtime(target) >= os.path.getmtime(score)):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(score, target)
        written.append(target)
    return written


def keep(bundle_root: str = ".") -> list[str]:
    """Mirror the newest compact state of every training directory under ``runs/`` and every per-fold score into
    ``models/in_training/`` (older kept states of the same directory are removed); returns the files written."""
    runs, kept = os.path.join(bundle_root, "runs"), os.path.join(bundle_root, KEPT)
    written = []
    for directory in _training_dirs(runs):
        epoch, source = _newest_state(directory)
        target_dir = os.path.join(kept, os.path.relpath(directory, runs))
        if _newest_state(target_dir)[0] == epoch:
            continue
        for old in glob.glob(os.path.join(target_dir, "resume_checkpoint_epoch=*.pt")):
            os.remove(old)
        target = os.path.join(target_dir, os.path.basename(source))
        compact_state(source, target)
        written.append(target)
    written += _copy_scores(runs, kept, only_missing=False)
    for path in written:
        print(f"kept {path}")
    return written


def restore(bundle_root: str = ".") -> list[str]:
    """Copy each kept state into ``runs/`` where its directory has no state as new, and each kept per-fold score
    where ``runs/`` lacks it; returns the files written."""
    runs, kept = os.path.join(bundle_root, "runs"), os.path.join(bundle_root, KEPT)
    written = []
    for directory in _training_dirs(kept):
        epoch, source = _newest_state(directory)
        target_dir = os.path.join(runs, os.path.relpath(directory, kept))
        if _newest_state(target_dir)[0] >= epoch:
            continue
        os.makedirs(target_dir, exist_ok=True)
        shutil.copy2(source, os.path.join(target_dir, os.path.basename(source)))
        written.append(os.path.join(target_dir, os.path.basename(source)))
        state = torch.load(source, map_location="cpu", weights_only=True)
        snapshot = os.path.join(target_dir, f"net_model_iteration={state['trainer']['iteration']}.pt")
        if not os.path.isfile(snapshot):
            torch.save({k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}, snapshot)
            written.append(snapshot)
    written += _copy_scores(kept, runs, only_missing=True)
    for path in written:
        print(f"restored {path}")
    return written
