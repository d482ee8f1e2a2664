"""The wire facts: which wire versions wireclient speaks, and a server's limits by default.

Each number here has this one home; every module that needs one imports it. The integer
bounds and the default ``maxMessageSizeBytes`` are the codec's (``protocol``, below this
layer, frames messages by them), named here for the layers above. Pure: no I/O.
"""

from __future__ import annotations

from typing import Optional

from wireclient.protocol._common import _INT32_MAX, _INT32_MIN, _INT64_MAX, _INT64_MIN
from wireclient.protocol._common import DEFAULT_MAX_MESSAGE_SIZE as DEFAULT_MAX_MESSAGE_SIZE

INT32_MIN, INT32_MAX = _INT32_MIN, _INT32_MAX
INT64_MIN, INT64_MAX = _INT64_MIN, _INT64_MAX

# -- wire versions ------------------------------------------------------------------------

MIN_SUPPORTED_WIRE_VERSION = 4  # MongoDB 3.2: the find / getMore / killCursors commands
MIN_SUPPORTED_MONGODB = "3.2"
MAX_SUPPORTED_WIRE_VERSION = 25  # MongoDB 8.0
OP_MSG_WIRE_VERSION = 6  # MongoDB 3.6: OP_MSG; older servers take commands in OP_QUERY

# -- a server's limits when its hello leaves them out ---------------------------------------

DEFAULT_MAX_BSON_SIZE = 16 * 1024 * 1024  # maxBsonObjectSize: 16 MiB
DEFAULT_MAX_WRITE_BATCH_SIZE = 100_000  # maxWriteBatchSize
# DEFAULT_MAX_MESSAGE_SIZE (maxMessageSizeBytes, 48 MB) is imported from the codec above.

# How much larger than maxBsonObjectSize a command document (or an update or delete
# statement) may be: the server's own allowance for the command around a user document.
COMMAND_OVERHEAD = 16 * 1024


def wire_version_error(where: str, min_wire_version: int, max_wire_version: int) -> Optional[str]:
    """Why wireclient cannot talk to the server at ``where``, or None when the server's wire
    range overlaps wireclient's."""
    ours = f"{MIN_SUPPORTED_WIRE_VERSION} to {MAX_SUPPORTED_WIRE_VERSION}"
    if min_wire_version > MAX_SUPPORTED_WIRE_VERSION:
        return (
            f"server at {where} requires wire version {min_wire_version} or newer (it speaks "
            f"{min_wire_version} to {max_wire_version}: minWireVersion {min_wire_version}), "
            f"but this version of wireclient speaks only wire versions {ours}"
        )
    if max_wire_version < MIN_SUPPORTED_WIRE_VERSION:
        return (
            f"server at {where} speaks only wire versions {min_wire_version} to "
            f"{max_wire_version} (maxWireVersion {max_wire_version}), but wireclient needs wire "
            f"version {MIN_SUPPORTED_WIRE_VERSION} or newer (MongoDB {MIN_SUPPORTED_MONGODB}+; "
            f"wireclient speaks {ours})"
        )
    return None


__all__ = [
    "COMMAND_OVERHEAD",
    "DEFAULT_MAX_BSON_SIZE",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_WRITE_BATCH_SIZE",
    "INT32_MAX",
    "INT32_MIN",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_SUPPORTED_WIRE_VERSION",
    "MIN_SUPPORTED_MONGODB",
    "MIN_SUPPORTED_WIRE_VERSION",
    "OP_MSG_WIRE_VERSION",
    "wire_version_error",
]
