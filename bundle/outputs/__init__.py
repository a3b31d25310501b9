"""Outputs of a case and a batch: report and review flag, review PNG, the batch review page."""
