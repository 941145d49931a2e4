"""Figures and summary tables of the paper, drawn from results tables and analysis arrays."""
