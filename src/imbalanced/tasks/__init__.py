"""The tasks behind train.py, eval.py and predict.py: recipes that read top to bottom."""
