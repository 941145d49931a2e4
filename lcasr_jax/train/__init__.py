"""Training: optimizers, schedules, jitted step, checkpoints, loop, CLI."""
