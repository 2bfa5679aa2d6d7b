"""batchctl: Azure ML batch endpoints on any machine."""

__version__ = "0.1.0"
