"""The tasks behind train.py, eval.py and predict.py, and what they share."""
