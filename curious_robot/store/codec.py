"""Lossless image codecs of the replay store (no pickle).

- rgb8 images (uint8, (H, W, 3), RGB order) are stored as PNG. OpenCV encodes BGR, so the
  channels are swapped on the way in and out; a decoded image is bit-exact.
- Every other array (float32 depth in metres, ...) is stored as the zlib-compressed raw
  little-endian bytes, with its dtype and shape kept beside it.

Each blob carries a CRC-32 of its stored bytes, so a damaged blob is reported as damaged
rather than decoded into wrong pixels.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import cv2
import numpy as np

PNG = "png"
ZLIB = "zlib"
#: PNG zlib level (0-9): 3 is about as small as 9 on rendered images and much faster.
PNG_LEVEL = 3
ZLIB_LEVEL = 3


class CodecError(ValueError):
    """A stored image cannot be decoded into its declared dtype and shape."""


@dataclass(frozen=True)
class EncodedImage:
    encoding: str
    dtype: str
    shape: tuple[int, ...]
    data: bytes
    crc32: int


def encode(img: np.ndarray) -> EncodedImage:
    """Compress one image losslessly."""
    img = np.asarray(img)
    shape = tuple(int(s) for s in img.shape)
    if img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3:
        bgr = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
        if not ok:
            raise CodecError(f"PNG encoding failed for an image of shape {shape}")
        data, encoding = buf.tobytes(), PNG
    else:
        little = np.ascontiguousarray(img, dtype=img.dtype.newbyteorder("<"))
        data, encoding = zlib.compress(little.tobytes(), ZLIB_LEVEL), ZLIB
    return EncodedImage(encoding, img.dtype.name, shape, data, zlib.crc32(data))


def decode(encoding: str, dtype: str, shape: tuple[int, ...], data: bytes,
           crc32: int | None = None) -> np.ndarray:
    """Decode a stored image and check it against its declared dtype and shape.

    Returns a new, writable, C-contiguous array; raises :class:`CodecError`.
    """
    data = bytes(data)
    if crc32 is not None and zlib.crc32(data) != crc32:
        raise CodecError(f"{encoding} blob of {len(data)} bytes fails its CRC-32")
    shape = tuple(int(s) for s in shape)
    if encoding == PNG:
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if bgr is None:
            raise CodecError(f"PNG blob of {len(data)} bytes does not decode")
        if bgr.dtype != np.uint8 or bgr.shape != shape or dtype != "uint8":
            raise CodecError(f"PNG decodes to {bgr.dtype} {bgr.shape}, declared {dtype} "
                             f"{shape}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if encoding == ZLIB:
        try:
            dt = np.dtype(dtype)
        except TypeError as exc:
            raise CodecError(f"unknown dtype {dtype!r}") from exc
        if dt.hasobject:
            raise CodecError(f"dtype {dtype!r} is not a plain numeric type")
        try:
            raw = zlib.decompress(data)
        except zlib.error as exc:
            raise CodecError(f"zlib blob of {len(data)} bytes does not decompress: "
                             f"{exc}") from exc
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dt.itemsize:
            raise CodecError(f"zlib blob holds {len(raw)} bytes, declared {dtype} {shape}")
        arr = np.frombuffer(raw, dtype=dt.newbyteorder("<")).reshape(shape)
        return arr.astype(dt.newbyteorder("="), copy=True)
    raise CodecError(f"unknown image encoding {encoding!r}")
