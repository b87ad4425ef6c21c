"""Training engine: data sources, models, the training loop and data-parallel plumbing."""
