"""Checkpoint formats: the released PyTorch files and converted model dirs."""
