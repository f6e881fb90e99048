"""MLflow search grammar translated to SQL."""
