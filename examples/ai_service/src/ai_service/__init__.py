"""ai-service, an example model-serving service of the aic.gateway collection."""

__version__ = "1.0.0"
