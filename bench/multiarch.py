#!/usr/bin/env python3
"""Makes the corpus' one multi-arch image in a plain registry, with nothing but the
distribution API (no container runs, no emulation):

    multiarch.py http://127.0.0.1:PORT SRC_REPO:TAG DST_REPO:TAG

Copies SRC's Docker schema-2 manifest into DST_REPO (layers and config mounted, the
manifest bytes unchanged: the linux/amd64 child), makes a linux/arm64/v8 child by
re-labelling a copy of the config (architecture/variant changed, so it gets its own
config blob and manifest digest; the layers are the same), and PUTs a Docker manifest
list naming both children at DST_REPO:TAG. Honest about what it is: the arm64 child's
files are amd64 binaries. Prints the index digest.
"""
import hashlib
import json
import sys
import urllib.request

V2 = "application/vnd.docker.distribution.manifest.v2+json"
LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def req(method, url, data=None, headers=None):
    r = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(r) as resp:
        return resp.status, dict(resp.headers), resp.read()


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def main():
    base, src, dst = sys.argv[1:4]
    src_repo, src_tag = src.rsplit(":", 1)
    dst_repo, dst_tag = dst.rsplit(":", 1)
    _, _, mbytes = req("GET", f"{base}/v2/{src_repo}/manifests/{src_tag}", headers={"Accept": V2})
    man = json.loads(mbytes)
    assert man["mediaType"] == V2, man.get("mediaType")
    for d in [man["config"]] + man["layers"]:
        st, _, _ = req("POST", f"{base}/v2/{dst_repo}/blobs/uploads/?mount={d['digest']}&from={src_repo}")
        assert st == 201, f"mount {d['digest']}: {st}"
    _, _, cbytes = req("GET", f"{base}/v2/{src_repo}/blobs/{man['config']['digest']}")
    cfg = json.loads(cbytes)
    cfg["architecture"] = "arm64"
    cfg["variant"] = "v8"
    arm_cfg = json.dumps(cfg, separators=(",", ":")).encode()
    _, h, _ = req("POST", f"{base}/v2/{dst_repo}/blobs/uploads/")
    loc = h["Location"]
    if loc.startswith("/"):
        loc = base + loc
    sep = "&" if "?" in loc else "?"
    req("PUT", f"{loc}{sep}digest={digest(arm_cfg)}", data=arm_cfg,
        headers={"Content-Type": "application/octet-stream"})
    arm = json.loads(mbytes)
    arm["config"] = {"mediaType": man["config"]["mediaType"], "size": len(arm_cfg), "digest": digest(arm_cfg)}
    arm_bytes = json.dumps(arm, indent=3).encode()
    children = []
    for body, plat in ((mbytes, {"architecture": "amd64", "os": "linux"}),
                       (arm_bytes, {"architecture": "arm64", "os": "linux", "variant": "v8"})):
        d = digest(body)
        req("PUT", f"{base}/v2/{dst_repo}/manifests/{d}", data=body, headers={"Content-Type": V2})
        children.append({"mediaType": V2, "size": len(body), "digest": d, "platform": plat})
    index = json.dumps({"schemaVersion": 2, "mediaType": LIST, "manifests": children}, indent=3).encode()
    _, h, _ = req("PUT", f"{base}/v2/{dst_repo}/manifests/{dst_tag}", data=index,
                  headers={"Content-Type": LIST})
    assert h.get("Docker-Content-Digest") == digest(index), h
    print(digest(index))


if __name__ == "__main__":
    main()
