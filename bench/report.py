#!/usr/bin/env python3
"""Writes bench/results.md from one bench/run.sh run directory.

    report.py RUN_DIR RESULTS_MD

Reads RUN_DIR/times.tsv (scenario, side, run, wall seconds, max RSS KiB, exit code, busy
processes), meta.env, facts.env, corpus*.env, ls.json, images.txt and cmds/*.sh. Nothing
here is measured: every number comes from those files. Medians over the successful runs;
a side with a failed run says so.
"""
import glob
import json
import os
import statistics
import sys

MB = 1_000_000
MEM_LIMIT = 150 * MB

# scenario -> (what, peer side for the ratio, goal text, test on the ratio)
SCENARIOS = [
    ("save", "registry → bundle.tar.zst", "skopeo", "≤ 0.5× the peer's time", lambda r: r <= 0.5),
    ("push", "push bundle → empty registry", "skopeo", "≤ 0.5×", lambda r: r <= 0.5),
    ("push-again", "push again (target has everything)", "skopeo", "≤ 0.2× and 0 bytes uploaded", lambda r: r <= 0.2),
    ("load", "load bundle → Docker", "docker", "≤ 1.2×", lambda r: r <= 1.2),
    ("docker-archive", "save from docker-archive (uncompressed layers)", "gzip", "≥ 1.7× faster (ratio ≤ 0.59)", lambda r: r <= 1 / 1.7),
    ("verify", "verify bundle.tar.zst", "sha256sum", "≥ 1.5× faster (ratio ≤ 0.67)", lambda r: r <= 1 / 1.5),
]
PEER_TEXT = {
    ("save", "skopeo"): "skopeo copy --all of every image into one OCI layout, then tar | zstd -T0",
    ("push", "skopeo"): "skopeo sync --all --src dir (dir: copies made beforehand, untimed)",
    ("push-again", "skopeo"): "the same skopeo sync into the full registry",
    ("load", "docker"): "docker load -i of docker save's output (the same images)",
    ("docker-archive", "gzip"): "gzip -6 of each layer tar, one after another (1 core)",
    ("docker-archive", "pigz2"): "pigz -6 -p 2 of each layer tar (both cores; reference only)",
    ("verify", "sha256sum"): "sha256sum of the bundle's bytes",
    ("verify", "zstd-sha256sum"): "zstd -dc bundle | sha256sum (reference only)",
}


def read_env(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


def esc(s):
    return s.replace("|", "\\|")


def mb(n):
    return f"{n / MB:,.1f} MB"


def main():
    run, out = sys.argv[1], sys.argv[2]
    meta = read_env(os.path.join(run, "meta.env"))
    facts = read_env(os.path.join(run, "facts.env"))
    corpus = read_env(os.path.join(run, "corpus.env"))
    rows = {}
    busy_runs = 0
    total_runs = 0
    for line in open(os.path.join(run, "times.tsv")):
        scen, side, r, wall, rss, rc, busy, *more = line.rstrip("\n").split("\t")
        e = rows.setdefault((scen, side), {"walls": [], "rss": [], "wchar": [], "failed": 0})
        total_runs += 1
        if int(busy) > 0:
            busy_runs += 1
        if rc != "0":
            e["failed"] += 1
            continue
        e["walls"].append(float(wall))
        e["rss"].append(int(rss) * 1024)
        if more and int(more[0]) > 0:
            e["wchar"].append(int(more[0]))

    def med(scen, side):
        e = rows.get((scen, side))
        if not e or not e["walls"]:
            return None
        return statistics.median(e["walls"])

    def cell(scen, side):
        e = rows.get((scen, side))
        if not e:
            return "—"
        if not e["walls"]:
            return f"FAILED ({e['failed']} runs)"
        s = f"{statistics.median(e['walls']):.2f} s"
        s += f" ({', '.join(f'{w:.2f}' for w in e['walls'])})"
        if e["failed"]:
            s += f", {e['failed']} FAILED"
        return s

    def peak(scen, side):
        e = rows.get((scen, side))
        return max(e["rss"]) if e and e["rss"] else None

    L = []
    L.append("# airlock benchmark results")
    L.append("")
    L.append(f"Written by `bench/report.py` from the run below; rerun with `{meta.get('command', 'bash bench/run.sh')}`.")
    L.append("")
    L.append(f"- date: {meta.get('date')}; command: `{meta.get('command')}`")
    L.append(f"- machine: {meta.get('nproc')} cores ({meta.get('cpu')}), {meta.get('mem')}, {meta.get('kernel')}")
    L.append(f"- {meta.get('airlock')}; {meta.get('skopeo')}; {meta.get('dockerd')}; {meta.get('docker_registry')}; {meta.get('zstd')}; {meta.get('gzip')}")
    cache_txt = ("cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before every timed run, both sides"
                 if meta.get("cold") == "1" else "warm: page cache not dropped (both sides alike)")
    L.append(f"- runs per side: {meta.get('runs')}, alternating (the order flips every run); page cache {cache_txt}")
    load = f"load average {meta.get('loadavg_start')} at the start, {meta.get('loadavg_end')} at the end"
    if busy_runs:
        L.append(f"- **the machine was shared**: other people's compilers (rustc/cc/ld) were running during {busy_runs} of {total_runs} timed runs; {load}. Ratios are side by side, but expect noise.")
    else:
        L.append(f"- no other compiler was seen running during the timed runs; {load}")
    L.append("")

    # --- corpus
    L.append(f"## Corpus (`--size {meta.get('size')}`)")
    L.append("")
    images = [l.strip() for l in open(os.path.join(run, "images.txt")) if l.strip()]
    repos = sorted({i.rsplit(":", 1)[0] for i in images})
    L.append(f"{len(images)} tags in {len(repos)} repositories, {corpus.get('blob_count')} unique blobs, "
             f"**{mb(int(corpus.get('blob_bytes', 0)))} of unique compressed blobs** (the source registry's blob store), "
             "all built by Docker 20.10 from a debootstrap'd Debian bookworm minbase and real files of this machine, "
             "layers gzip-compressed by `docker push`.")
    for f in sorted(glob.glob(os.path.join(run, "corpus-*.env"))):
        o = read_env(f)
        L.append(f"At `--size {o.get('size')}` (memory runs): {o.get('tags')} tags, {o.get('blob_count')} unique blobs, {mb(int(o.get('blob_bytes', 0)))}.")
    L.append("")
    L.append("Images: " + ", ".join(f"`{i}`" for i in images))
    L.append("")
    L.append("`bench/multi:1.0` is a two-platform index (linux/amd64 and a linux/arm64/v8 child whose config is "
             "re-labelled; same layers). `appNN:1.1` is `appNN:1.0` plus one small layer; `latest` tags point at 1.1. "
             "Apps 01–06 are built on `python`, 07–10 on `tools`, 11–12 on `base`.")
    L.append("")

    # --- scenarios
    L.append("## Scenarios")
    L.append("")
    L.append("Median wall time (all runs in brackets); ratio = airlock median / peer median.")
    L.append("")
    L.append("| scenario | airlock | peer | peer time | ratio | goal | met |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    for scen, what, peer, goal, test in SCENARIOS:
        if not any(k[0] == scen for k in rows):
            continue
        a, p = med(scen, "airlock"), med(scen, peer)
        ratio = a / p if a is not None and p else None
        met = "—" if ratio is None else ("yes" if test(ratio) else "**no**")
        if scen == "push-again":
            up = [v for k, v in facts.items() if k.startswith("push_again_uploaded_bytes_")]
            zero = bool(up) and all(v == "0" for v in up)
            goal_extra = f"; uploaded bytes per run: {', '.join(up) or '?'}"
            if ratio is not None:
                met = "yes" if test(ratio) and zero else "**no**"
        else:
            goal_extra = ""
        L.append(f"| {what} | {cell(scen, 'airlock')} | {esc(PEER_TEXT.get((scen, peer), peer))} | {cell(scen, peer)} | "
                 f"{'—' if ratio is None else f'{ratio:.2f}×'} | {goal}{goal_extra} | {met} |")
        for (s2, side) in rows:
            if s2 == scen and side not in ("airlock", peer):
                p2 = med(scen, side)
                r2 = a / p2 if a is not None and p2 else None
                L.append(f"| {what} (reference) | | {esc(PEER_TEXT.get((scen, side), side))} | {cell(scen, side)} | "
                         f"{'—' if r2 is None else f'{r2:.2f}×'} | — | — |")

    # bundle size
    bb = int(facts.get("bundle_bytes", 0))
    blobs = int(corpus.get("blob_bytes", 0))
    if bb and blobs:
        r = bb / blobs
        L.append(f"| bundle size | {mb(bb)} (bundle.tar.zst) | sum of unique compressed blobs | {mb(blobs)} | "
                 f"{r:.4f}× | ≤ 1.01× | {'yes' if r <= 1.01 else '**no**'} |")
    L.append("")
    extra = []
    if "save_skopeo_bytes" in facts:
        extra.append(f"skopeo's OCI layout as tar.zst: {mb(int(facts['save_skopeo_bytes']))}")
    if "dircopy_bytes" in facts:
        extra.append(f"the `dir:` copies for skopeo sync: {mb(int(facts['dircopy_bytes']))} on disk "
                     f"({int(facts['dircopy_bytes']) / blobs:.2f}× the unique blobs)" if blobs else "")
    if "archive_layer_bytes" in facts:
        extra.append(f"docker-archive input: {facts.get('archive_layers')} uncompressed layers, {mb(int(facts['archive_layer_bytes']))}; "
                     f"airlock's bundle {mb(int(facts.get('archive_airlock_bytes', 0)))}, gzip -6 output {mb(int(facts.get('archive_gzip_bytes', 0)))}")
    if "load_storage_driver" in facts:
        extra.append(f"the load scenario's dockerd uses the `{facts['load_storage_driver']}` storage driver")
    loads = sorted((k, v) for k, v in facts.items() if k.startswith("load_") and k.endswith("_images"))
    if loads:
        extra.append("images in the engine after each load run: " + ", ".join(f"{k[5:]}={v}" for k, v in loads))
    pushes = sorted((k, v) for k, v in facts.items() if k.startswith("push_") and k.endswith("_repos"))
    if pushes:
        extra.append("repositories in the target after each push run: " + ", ".join(f"{k[5:-6]}={v}" for k, v in pushes))
    for e in extra:
        if e:
            L.append(f"- {e}")
    L.append("")

    # --- bytes written (issue 10)
    written = [(side, e) for (scen, side), e in sorted(rows.items()) if scen == "save" and side.startswith("airlock") and e["wchar"]]
    if written:
        L.append("## Bytes written by save (issue 10)")
        L.append("")
        L.append("`wchar` from the process's own `/proc/<pid>/io` (`bench/iowrap.py`): every byte handed to write(), "
                 "the bundle and any scratch space (`--scratch`, the system temp dir) alike, so an upper bound on what "
                 "reached the output's file system. Goal: ≤ 1.02× the bundle. `bench/onewrite.sh` measures the output's "
                 "block device itself on a loop-mounted file system.")
        L.append("")
        L.append("| binary | bundle | written (median) | written / bundle | save time | peak RSS |")
        L.append("| --- | --- | --- | --- | --- | --- |")
        for side, e in written:
            bundle = int(facts.get(f"save_{side}_bytes", 0))
            w = statistics.median(e["wchar"])
            ratio = f"{w / bundle:.3f}×" if bundle else "—"
            L.append(f"| {side} | {mb(bundle) if bundle else '—'} | {mb(w)} | {ratio} | {cell('save', side)} | {mb(peak('save', side))} |")
        a, b = med("save", "airlock"), med("save", "airlock-before")
        if a and b:
            L.append("")
            L.append(f"Save time, this airlock / the earlier one (`--before`), same run: {a / b:.2f}×.")
        L.append("")

    # --- memory
    L.append("## Peak memory (max RSS, `/usr/bin/time -v`)")
    L.append("")
    L.append("| command | size | peak RSS | goal ≤ 150 MB |")
    L.append("| --- | --- | --- | --- |")
    size = meta.get("size")
    for scen in ("save", "push", "verify"):
        pk = peak(scen, "airlock")
        if pk is not None:
            L.append(f"| airlock {scen} | {size} | {mb(pk)} | {'yes' if pk <= MEM_LIMIT else '**no**'} |")
        for (s2, side) in sorted(rows):
            if s2.startswith("mem-") and s2.endswith("-" + scen):
                pk = peak(s2, side)
                other = s2[4:-(len(scen) + 1)]
                if pk is None:
                    L.append(f"| airlock {scen} | {other} | FAILED | **no** |")
                else:
                    w = med(s2, side)
                    L.append(f"| airlock {scen} | {other} | {mb(pk)} ({w:.1f} s) | {'yes' if pk <= MEM_LIMIT else '**no**'} |")
    L.append("")
    L.append("Peers' peak RSS in the same runs: " + "; ".join(
        f"{s} {side} {mb(peak(s, side))}" for (s, side) in sorted(rows)
        if side != "airlock" and peak(s, side) is not None) + ".")
    L.append("")

    # --- commands
    L.append("## The exact commands")
    L.append("")
    L.append("Each side runs one script under `/usr/bin/time -v` (timed from outside). Environment: "
             "`AIRLOCK` the release binary, `SRC` the source registry (127.0.0.1:PORT serving the cached corpus), "
             "`LIST` the image list (`$SRC/` + each tag above), `IMAGES` the tags, `BUNDLE` the .tar.zst from the save "
             "scenario, `TARGET` a registry started empty for each push run (push-again: one registry filled once by "
             "an untimed airlock push), `DIRCOPY` `skopeo sync --src docker --dest dir` of every repository, "
             "`DOCKER_SAVE` `docker save` of the load images, `LOAD_IMAGES` those images, `WORK` scratch space.")
    L.append("")
    for f in sorted(glob.glob(os.path.join(run, "cmds", "*.sh"))):
        L.append(f"`{os.path.basename(f)[:-3]}`:")
        L.append("```sh")
        L.append(open(f).read().rstrip())
        L.append("```")
    L.append("")
    open(out, "w").write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
