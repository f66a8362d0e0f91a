"""Data sources: one module per source (our generators and the real loaders)."""
