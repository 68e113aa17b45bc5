"""Lightning callbacks of the template (configs/callbacks/); those that guard a run are in `runs/`."""
