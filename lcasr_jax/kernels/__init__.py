"""Compute kernels: attention backends and the CTC loss."""
