"""Processes: templates and live instances, their steps and substeps (the checklist), and directories."""
