"""Insights from the caller's own work: progress figures, the profile timeline, weekly and quarterly reports."""
