"""wireclient: a MongoDB client from sockets up, with pymongo-2.x style requests."""

from __future__ import annotations

__version__ = "0.1.0"

from wireclient import errors

__all__ = ["errors", "__version__"]
