"""SASLprep (RFC 4013) of stored strings, for SCRAM-SHA-256 passwords. Pure, stdlib only.

Errors name the kind of problem, never the text or the character: the text is usually a
password.
"""

from __future__ import annotations

import stringprep
import unicodedata
from typing import Callable, Tuple

_PROHIBITED: Tuple[Tuple[Callable[[str], bool], str], ...] = (
    (stringprep.in_table_c12, "a non-ASCII space"),
    (stringprep.in_table_c21_c22, "a control character"),
    (stringprep.in_table_c3, "a private-use character"),
    (stringprep.in_table_c4, "a non-character code point"),
    (stringprep.in_table_c5, "a surrogate code point"),
    (stringprep.in_table_c6, "a character inappropriate for plain text"),
    (stringprep.in_table_c7, "a character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "a display-changing or deprecated character"),
    (stringprep.in_table_c9, "a tagging character"),
    (stringprep.in_table_a1, "an unassigned code point"),
)


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep of a stored string (unassigned code points refused).

    Raises ``ValueError`` naming the kind of problem, never the text or the character
    (the text is usually a password).
    """
    if text.isascii():
        # ASCII: nothing to map or normalize; only control characters are prohibited.
        if any(c < " " or c == "\x7f" for c in text):
            raise ValueError("SASLprep prohibits it: it contains a control character")
        return text
    mapped = "".join(
        " " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    for c in prepared:
        for in_table, kind in _PROHIBITED:
            if in_table(c):
                raise ValueError(f"SASLprep prohibits it: it contains {kind}")
    if any(stringprep.in_table_d1(c) for c in prepared):
        if any(stringprep.in_table_d2(c) for c in prepared):
            raise ValueError("SASLprep prohibits it: it mixes right-to-left and left-to-right")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise ValueError(
                "SASLprep prohibits it: right-to-left text must start and end with a "
                "right-to-left character"
            )
    return prepared


__all__ = ["saslprep"]
