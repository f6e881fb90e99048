"""The package version, importable without loading the SDK (which ``import lapis`` names)."""

__version__ = "0.1.0"
