"""Training parts the configs name: the discrepancy loss, batch preparation, lesion synthesis, augmentations."""
