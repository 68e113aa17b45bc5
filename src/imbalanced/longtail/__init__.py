"""The long-tail techniques: class-weight strategies, losses, deferred re-weighting, post-hoc
adjustment, the decision rule and calibration."""
