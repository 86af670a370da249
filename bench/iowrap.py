#!/usr/bin/env python3
"""Runs a command and records the bytes it (and every process it started) wrote.

    iowrap.py OUT_FILE [--device NAME] -- COMMAND...

Linux adds a reaped child's I/O counters to its parent's, so this process's own
/proc/self/io, read before and after waiting for COMMAND, gives the command's totals:
`wchar` (bytes handed to write() and friends: the output, scratch files, stdout) and
`write_bytes` (bytes the command caused to be sent to storage; page-cache writeback
charged to it). With --device NAME (e.g. loop3), the delta of that block device's
sectors-written counter (/sys/block/NAME/stat, field 7, after a sync) is recorded too:
the bytes that really reached the output's disk, whoever wrote them. Writes OUT_FILE as
key=value lines and exits with COMMAND's status.
"""
import os
import subprocess
import sys


def io():
    with open("/proc/self/io") as f:
        return {k: int(v) for k, v in (line.split(": ") for line in f.read().splitlines())}


def sectors_written(dev):
    with open(f"/sys/block/{dev}/stat") as f:
        return int(f.read().split()[6])


def main():
    args = sys.argv[1:]
    out = args.pop(0)
    dev = None
    if args and args[0] == "--device":
        dev = args[1]
        args = args[2:]
    if args and args[0] == "--":
        args = args[1:]
    if dev:
        os.sync()
        s0 = sectors_written(dev)
    before = io()
    rc = subprocess.call(args)
    after = io()
    lines = [f"wchar={after['wchar'] - before['wchar']}", f"write_bytes={after['write_bytes'] - before['write_bytes']}"]
    if dev:
        os.sync()
        lines.append(f"device_bytes={(sectors_written(dev) - s0) * 512}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    sys.exit(rc)


if __name__ == "__main__":
    main()
