"""Texts (`data=text`): reading labelled text files, subword tokenization, batches of varied length.

`reading.py` reads and checks the files, `tokenizer.py` trains, loads and packs the tokenizer,
`batches.py` pads per batch and groups training batches by length, `datamodule.py` ties them to the
data-to-model contract. Needs the `text` extra (`pip install 'imbalanced[text]'`).
"""
