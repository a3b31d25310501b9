"""Compact training states carried across sessions: kept small, restored only where runs/ has nothing newer, and
loaded by the training's own checkpoint loader to go on at the same iteration and learning rate."""

from __future__ import annotations

import json
import os

import torch
from ignite.engine import Engine
from monai.handlers import CheckpointLoader

from bundle.dev.keep_states import keep, restore


def _objects(seed: int):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Linear(64, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    trainer = Engine(lambda e, b: None)
    return net, opt, sched, trainer


def _save_state(path, epoch: int):
    net, opt, sched, trainer = _objects(0)
    for _ in range(epoch):  # a few real optimiser steps, so there are moments to keep
        opt.zero_grad()
        net(torch.randn(8, 64)).pow(2).mean().backward()
        opt.step()
        sched.step()
    trainer.state.epoch, trainer.state.iteration, trainer.state.max_epochs = epoch, epoch * 10, 20
    trainer.state.epoch_length = 10
    state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "lr_scheduler": sched.state_dict(),
             "trainer": trainer.state_dict()}
    os.makedirs(path, exist_ok=True)
    torch.save(state, os.path.join(path, f"resume_checkpoint_epoch={epoch}.pt"))
    return net, opt, sched


def test_kept_states_are_compact_and_resume_where_the_run_stopped(tmp_path):
    fold = tmp_path / "runs" / "cv" / "fold_0"
    _save_state(str(fold), 2)
    trained, trained_opt, sched = _save_state(str(fold), 3)
    score = tmp_path / "runs" / "cv" / "tissue_boxes_score_2000" / "fold_0" / "metrics.json"
    score.parent.mkdir(parents=True)
    score.write_text(json.dumps({"cases": [{"id": "a", "dice": 0.5}]}))

    written = keep(str(tmp_path))
    kept = tmp_path / "models" / "in_training" / "cv" / "fold_0" / "resume_checkpoint_epoch=3.pt"
    assert str(kept) in written and not (kept.parent / "resume_checkpoint_epoch=2.pt").exists()  # only the newest
    assert kept.stat().st_size < 0.6 * (fold / "resume_checkpoint_epoch=3.pt").stat().st_size
    assert keep(str(tmp_path)) == []  # nothing new to keep
    _save_state(str(tmp_path / "runs" / "finetune"), 1)  # not the queue's: not kept
    assert keep(str(tmp_path)) == []

    (fold / "resume_checkpoint_epoch=2.pt").unlink()
    (fold / "resume_checkpoint_epoch=3.pt").unlink()
    score.unlink()
    restored = restore(str(tmp_path))
    assert len(restored) == 3 and json.loads(score.read_text())["cases"][0]["dice"] == 0.5
    snapshot = torch.load(fold / "net_model_iteration=30.pt", weights_only=True)  # the weights at the state's iteration
    for name, value in trained.state_dict().items():
        torch.testing.assert_close(snapshot[name], value, rtol=2**-8, atol=1e-6)

    net, opt, new_sched, trainer = _objects(1)
    load_dict = {"model": net, "optimizer": opt, "lr_scheduler": new_sched, "trainer": trainer}
    CheckpointLoader(load_path=str(fold / "resume_checkpoint_epoch=3.pt"), load_dict=load_dict)(trainer)
    assert trainer.state.epoch == 3 and trainer.state.iteration == 30
    assert new_sched.last_epoch == sched.last_epoch and opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    for name, value in trained.state_dict().items():
        assert net.state_dict()[name].dtype == torch.float32
        torch.testing.assert_close(net.state_dict()[name], value, rtol=2**-8, atol=1e-6)  # bf16 rounding only
    moments, expected = opt.state_dict()["state"], trained_opt.state_dict()["state"]
    assert moments.keys() == expected.keys() and moments  # the moments go on: AdamW's bias correction is not reset
    for index, values in expected.items():
        assert float(moments[index]["step"]) == float(values["step"]) == 3
        for name in ("exp_avg", "exp_avg_sq"):
            assert moments[index][name].dtype == torch.float32 and moments[index][name].abs().sum() > 0
            torch.testing.assert_close(moments[index][name], values[name], rtol=2**-8, atol=1e-12)


def test_restore_leaves_a_newer_state_in_runs_alone(tmp_path):
    _save_state(str(tmp_path / "runs" / "cv" / "fold_all"), 2)
    keep(str(tmp_path))
    _save_state(str(tmp_path / "runs" / "cv" / "fold_all"), 5)
    assert restore(str(tmp_path)) == []
