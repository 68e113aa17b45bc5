"""The imbalance techniques: class-weight strategies, losses, deferred re-weighting, post-hoc adjustment."""
