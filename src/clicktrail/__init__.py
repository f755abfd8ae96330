"""clicktrail: self-hosted SMS link tracking and click attribution."""

__version__ = "0.1.0"
