#!/usr/bin/env python3
"""Writes an OCI layout of real files for the compact-bundle benchmark (bench/compact.sh).

    realcorpus.py DIR GZIPWRITE

Three images whose layers are tars of this machine's own trees (no random filler),
written by GNU tar with fixed owners and times, and gzipped by GZIPWRITE (Go's own
compress/gzip at its default level, the way Docker pushes; tests/go/gzipwrite built with
Go 1.19). `python-slim` holds a layer similar to, but not the same as, `python`'s (the
same library without tests and caches), and shares its perl layer: what versions of one
image look like. The raw tars are kept in DIR/raw/ for the `zstd --long` reference; the
layout's index.json names the images `python:1`, `go:1`, `python-slim:1`.
"""
import hashlib
import json
import os
import subprocess
import sys

LAYERS = {
    "py": ["usr/lib/python3.11"],
    "perl": ["usr/share/perl", "usr/lib/x86_64-linux-gnu/perl"],
    "gosrc": ["usr/share/go-1.19/src"],
    "pyslim": ["--exclude=__pycache__", "--exclude=test", "--exclude=idlelib", "usr/lib/python3.11"],
    "i18n": ["usr/share/i18n"],
}
IMAGES = {"python": ["py", "perl"], "go": ["gosrc"], "python-slim": ["pyslim", "perl", "i18n"]}


def put(blobs, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}


def main():
    out, gzipwrite = sys.argv[1], sys.argv[2]
    blobs = os.path.join(out, "layout", "blobs", "sha256")
    raw_dir = os.path.join(out, "raw")
    os.makedirs(blobs, exist_ok=True)
    os.makedirs(raw_dir, exist_ok=True)
    with open(os.path.join(out, "layout", "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    layers = {}
    for name, args in LAYERS.items():
        raw = subprocess.run(
            ["tar", "--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner",
             "-cf", "-", "-C", "/", *args],
            check=True, stdout=subprocess.PIPE).stdout
        with open(os.path.join(raw_dir, name + ".tar"), "wb") as f:
            f.write(raw)
        gz = subprocess.run([gzipwrite, "-1", "-", "-"], input=raw, check=True,
                            stdout=subprocess.PIPE).stdout
        desc = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(blobs, gz)}
        layers[name] = (desc, "sha256:" + hashlib.sha256(raw).hexdigest())
        print(f"layer {name}: {len(raw)} bytes raw, {len(gz)} gzip", file=sys.stderr)
    manifests = []
    for image, names in IMAGES.items():
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Labels": {"img": image}},
            "rootfs": {"type": "layers", "diff_ids": [layers[n][1] for n in names]},
        }).encode()
        cdesc = put(blobs, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cdesc},
            "layers": [layers[n][0] for n in names],
        }).encode()
        mdesc = put(blobs, manifest)
        # The small blobs go into the reference stream too.
        with open(os.path.join(raw_dir, "small"), "ab") as f:
            f.write(config + manifest)
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **mdesc,
                "annotations": {"org.opencontainers.image.ref.name": f"{image}:1"}}
        manifests.append(desc)
    with open(os.path.join(out, "layout", "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": manifests}, f)


if __name__ == "__main__":
    main()
