"""One module per registry (or physical limit) the harness can install, start and stop."""
