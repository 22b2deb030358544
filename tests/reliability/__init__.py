"""Bad input and fault scenarios (issue 9): the config corpus, disk faults, the run-folder invariant."""
