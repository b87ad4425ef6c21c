"""Run train.py on a target: this Python environment, a local Docker container, or Azure ML."""
