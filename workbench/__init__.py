"""Headless core of the Explainability Workbench: config, safe inputs, CLI, jobs."""
