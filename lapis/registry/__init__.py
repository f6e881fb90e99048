"""The model registry: registered models, numbered versions, stages, aliases and tags."""
