"""Training: mesh + sharding, optimizers, schedules, jitted step, checkpoints, loop, CLI."""
