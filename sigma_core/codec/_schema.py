"""What the encoders and the verifier share about the schema: the file identifier, the union's
body types and the integer limits of its scalar types."""

from __future__ import annotations

from typing import Any, Final

from sigma_core._wire.Body import Body as _WireBodyEnum

# The generated code is untyped to mypy (its .pyi stubs do not pass it: numpy import, invalid
# Literal[...]; see the follow_imports overrides in pyproject.toml).
_WireBody: Any = _WireBodyEnum

#: Bytes 4..7 of every envelope (``file_identifier`` in ``schemas/sigma.fbs``).
FILE_IDENTIFIER: Final = b"SGM1"

_U16_MAX: Final = 0xFFFF
_U32_MAX: Final = 0xFFFF_FFFF
_U64_MAX: Final = 0xFFFF_FFFF_FFFF_FFFF
# The builder refuses buffers of 2 GiB and more; the fast paths refuse them a little earlier.
_MAX_FAST_BYTES: Final = 2**31 - 1024
