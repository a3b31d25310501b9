"""The model and its sampling: denoiser network, DDIM scheduler, inferers, precision, checkpoints, TorchScript."""
