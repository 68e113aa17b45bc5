"""A fork's datamodule over a torch Dataset that reads one file per sample (tests/test_dataset_example.py)."""
