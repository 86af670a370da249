#!/usr/bin/env python3
"""Writes a synthetic OCI layout for the bytes-written measurement (bench/onewrite.sh).

    synth.py DIR IMAGES LAYER_MIB[,LAYER_MIB...]

IMAGES images `img0` … each with one layer per LAYER_MIB size: a tar of one file of
seeded random bytes (incompressible, as real layers mostly are once gzipped), gzipped at
level 1. Every layer is distinct. The layout's index.json names them `imgN:1`.
"""
import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile


def put(blobs, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}


def main():
    out, images, sizes = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3].split(",")]
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    manifests = []
    for i in range(images):
        layers, diff_ids = [], []
        for j, mib in enumerate(sizes):
            rnd = random.Random(i * 1000 + j)
            content = rnd.randbytes(mib << 20)
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
                info = tarfile.TarInfo(f"data/{i}-{j}")
                info.size = len(content)
                info.mtime = 0
                t.addfile(info, io.BytesIO(content))
            raw = buf.getvalue()
            diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
            gz = gzip.compress(raw, compresslevel=1, mtime=0)
            layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **put(blobs, gz)})
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"img": str(i)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }).encode()
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **put(blobs, config)},
            "layers": layers,
        }).encode()
        desc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **put(blobs, manifest)}
        desc["annotations"] = {"org.opencontainers.image.ref.name": f"img{i}:1"}
        manifests.append(desc)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": manifests}, f)


if __name__ == "__main__":
    main()
