"""A fork's datamodule over a torch Dataset, one file per sample (tests/data/test_dataset_example.py)."""
