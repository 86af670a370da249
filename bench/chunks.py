#!/usr/bin/env python3
"""Splits a pool of real files into consecutive chunks of about N bytes each.

    chunks.py --chunk-bytes N --chunks K --out DIR POOLDIR...

Walks the pool directories (sorted, so the split is the same on every run), keeps
regular files only, and writes DIR/chunk-01.lst ... DIR/chunk-K.lst: NUL-separated
absolute paths for `tar --null -T`. Fails if the pool holds fewer than K*N bytes.
"""
import argparse
import os
import stat
import sys


def walk(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_size > 0 and os.access(path, os.R_OK):
                yield path, st.st_size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunk-bytes", type=int, required=True)
    ap.add_argument("--chunks", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("pool", nargs="+")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    files = []
    for root in a.pool:
        if os.path.isdir(root):
            files.extend(walk(root))
    i, n = 0, 0
    for k in range(1, a.chunks + 1):
        total = 0
        paths = []
        while total < a.chunk_bytes and i < len(files):
            path, size = files[i]
            i += 1
            paths.append(path)
            total += size
        if total < a.chunk_bytes:
            sys.exit(f"chunks.py: the pool ran out at chunk {k} (needs {a.chunks} x {a.chunk_bytes} bytes)")
        with open(os.path.join(a.out, f"chunk-{k:02d}.lst"), "wb") as f:
            f.write(b"".join(p.encode() + b"\0" for p in paths))
        n += total
    print(f"{a.chunks} chunks, {n} bytes from {i} files")


if __name__ == "__main__":
    main()
