"""core-api, an example backend service of the aic.gateway collection."""

__version__ = "1.0.0"
