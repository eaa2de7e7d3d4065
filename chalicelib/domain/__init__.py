"""The model and its rules: jobs and phases, settings, errors, image references, patterns. Imports nothing above it."""
