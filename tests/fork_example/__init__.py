"""A fork's new modality, kept entirely in tests/: 8x8 uint8 digit images and a tiny CNN.

It proves the data-to-model contract (README, "Forking the template"): a datamodule, a backbone and
two YAML files reach `train.py` / `eval.py` through Hydra's search path, with no edit to `src/`.
"""
