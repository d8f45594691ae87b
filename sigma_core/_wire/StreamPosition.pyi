from __future__ import annotations

import flatbuffers
import numpy as np

import typing

uoffset: typing.TypeAlias = flatbuffers.number_types.UOffsetTFlags.py_type

class StreamPosition(object):
  @classmethod
  def SizeOf(cls) -> int: ...

  def Init(self, buf: bytes, pos: int) -> None: ...
  def Epoch(self) -> int: ...
  def Offset(self) -> int: ...

def CreateStreamPosition(builder: flatbuffers.Builder, epoch: int, offset: int) -> uoffset: ...

