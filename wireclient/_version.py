"""wireclient's version: the one place it is written (``wireclient.__version__`` reads it)."""

__version__ = "0.1.0"
