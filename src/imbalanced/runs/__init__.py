"""What keeps a run safe and its files whole: the checks before anything loads, the run-directory
guard, resume, refit, the training budget, safe checkpoint loading, atomic writes, sweep summaries
and exit codes. A fork that adds data, a backbone or a loss reads nothing here."""
