"""Training: the session, the trainer and where it runs, losses and optimizers, schedules, the loss history, runs compared, metrics, devices and undo."""
