from __future__ import annotations

import flatbuffers
import numpy as np

import typing
from typing import cast

uoffset: typing.TypeAlias = flatbuffers.number_types.UOffsetTFlags.py_type

class Body(object):
  NONE = cast(int, ...)
  Hello = cast(int, ...)
  Welcome = cast(int, ...)
  Data = cast(int, ...)
  Ack = cast(int, ...)
  Ping = cast(int, ...)
  Pong = cast(int, ...)
  Subscribe = cast(int, ...)
  Unsubscribe = cast(int, ...)
  Subscribed = cast(int, ...)
  Unsubscribed = cast(int, ...)
  Presence = cast(int, ...)
  Error = cast(int, ...)
  Goodbye = cast(int, ...)
  Refresh = cast(int, ...)
  Refreshed = cast(int, ...)

