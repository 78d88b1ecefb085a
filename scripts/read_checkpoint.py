#!/usr/bin/env python3
"""Reads a vaec checkpoint (.vaeckpt; the format is docs/checkpoint.md) with NumPy.

As a program, prints the model, the step and each tensor's name, shape and statistics:

    scripts/read_checkpoint.py runs/fashion_gauss/checkpoint.vaeckpt

As a module, gives the tensors as arrays of their shapes:

    from read_checkpoint import read_checkpoint
    ckpt = read_checkpoint("runs/fashion_gauss/checkpoint.vaeckpt")
    w = ckpt["params"]["encoder.h.weight"]          # numpy float32 [784, 400]
    ckpt["m"], ckpt["v"]                            # Adam's moments (None when not saved)

It checks what vaec's loader checks (magic number, version, CRC-32, lengths) and
also that nothing follows the last tensor.
"""
import argparse
import struct
import sys
import zlib

import numpy as np

MAGIC = b"VAECKPT\0"
VERSION = 1


class CheckpointError(Exception):
    pass


class _Reader:
    def __init__(self, data, end, path):
        self.data, self.pos, self.end, self.path = data, 0, end, path

    def take(self, n):
        if self.pos + n > self.end:
            raise CheckpointError(f"{self.path}: the checkpoint is truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def floats(self, count):
        raw = self.take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def read_checkpoint(path):
    """The checkpoint at path as a dict: model, version, step, has_optimizer, and
    params, m, v (dicts of name -> float32 array in the tensors' order; m and v are
    None without optimiser state)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 16 or data[:8] != MAGIC:
        raise CheckpointError(f"{path}: not a vaec checkpoint (bad magic number)")
    version = struct.unpack_from("<I", data, 8)[0]
    if version != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version} is not supported (this reads {VERSION})")
    if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise CheckpointError(f"{path}: the checkpoint is truncated or corrupt (checksum mismatch)")
    r = _Reader(data, len(data) - 4, path)
    r.pos = 12
    model = r.take(r.u32()).decode("utf-8")
    shapes = []
    for _ in range(r.u32()):
        name = r.take(r.u32()).decode("utf-8")
        ndims = r.u32()
        shapes.append((name, tuple(r.u32() for _ in range(ndims))))
    has_optimizer = r.u32() != 0
    step = struct.unpack("<q", r.take(8))[0]
    total = sum(int(np.prod(shape)) for _, shape in shapes)

    def tensors():
        flat, out, at = r.floats(total), {}, 0
        for name, shape in shapes:
            size = int(np.prod(shape))
            out[name] = flat[at : at + size].reshape(shape)
            at += size
        return out

    params = tensors()
    m = tensors() if has_optimizer else None
    v = tensors() if has_optimizer else None
    if r.pos != r.end:
        raise CheckpointError(f"{path}: {r.end - r.pos} bytes follow the last tensor")
    return {"model": model, "version": version, "step": step, "has_optimizer": has_optimizer,
            "params": params, "m": m, "v": v}


def main():
    ap = argparse.ArgumentParser(description="Print a vaec checkpoint's tensors: name, shape and statistics.")
    ap.add_argument("checkpoint")
    args = ap.parse_args()
    try:
        ckpt = read_checkpoint(args.checkpoint)
    except (CheckpointError, OSError) as e:
        sys.exit(f"read_checkpoint.py: error: {e}")
    params = ckpt["params"]
    count = sum(a.size for a in params.values())
    state = f"optimiser state saved, step {ckpt['step']}" if ckpt["has_optimizer"] else "no optimiser state"
    print(f"{args.checkpoint}: model {ckpt['model']}, format version {ckpt['version']}, "
          f"{len(params)} tensors, {count} parameters, {state}")
    print(f"{'tensor':<28} {'shape':<18} {'mean':>10} {'std':>10} {'min':>10} {'max':>10}")
    for name, a in params.items():
        shape = "[" + ", ".join(str(d) for d in a.shape) + "]"
        stats = (a.mean(), a.std(), a.min(), a.max()) if a.size else (float("nan"),) * 4
        print(f"{name:<28} {shape:<18} " + " ".join(f"{x:>10.4g}" for x in stats))


if __name__ == "__main__":
    main()
