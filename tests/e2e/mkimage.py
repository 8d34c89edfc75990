#!/usr/bin/env python3
"""Packs a busybox rootfs as a `docker save` tar (manifest.json + config +
layer.tar), which both `ctr image import` and `podman load` accept.

    mkimage.py OUT.tar REPO:TAG [BUSYBOX]

The image's default command serves /www with busybox httpd on port 8080:
GET /cgi-bin/host answers the container's hostname (so a test can tell which
pod answered through a host port) without writing anything (a CRI sandbox
container's rootfs is read-only). (busybox wget segfaults in such an image: the
static glibc resolver; the tests use nc/httpd only.)
"""
import hashlib
import io
import json
import sys
import tarfile
import time

APPLETS = """sh ash cat echo hostname httpd nc ping ip ifconfig route sleep ls mkdir
printf sed grep head tail wc true false test [ env id ps kill sysctl cut tr
netstat ipneigh timeout date""".split()

SERVE = ["/bin/httpd", "-f", "-p", "8080", "-h", "/www"]
HOST_CGI = b"#!/bin/sh\necho 'Content-Type: text/plain'\necho\nhostname\n"


def add(tar, name, kind, data=b"", mode=0o755, target=""):
    info = tarfile.TarInfo(name)
    info.mtime = int(time.time())
    info.mode = mode
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = target
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def layer(busybox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "run",
                  "www", "www/cgi-bin"):
            add(tar, d, "dir", mode=0o1777 if d == "tmp" else 0o755)
        with open(busybox, "rb") as f:
            add(tar, "bin/busybox", "file", f.read())
        for a in APPLETS:
            add(tar, "bin/" + a, "link", target="busybox")
        add(tar, "etc/passwd", "file", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        add(tar, "etc/group", "file", b"root:x:0:\n", 0o644)
        add(tar, "www/index.html", "file", b"weft-e2e\n", 0o644)
        add(tar, "www/cgi-bin/host", "file", HOST_CGI)
    return buf.getvalue()


def main():
    out, ref = sys.argv[1], sys.argv[2]
    busybox = sys.argv[3] if len(sys.argv) > 3 else "/bin/busybox"
    if ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    lay = layer(busybox)
    diff_id = "sha256:" + hashlib.sha256(lay).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin"],
            "Cmd": SERVE,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "weft tests/e2e/mkimage.py"}],
    }, sort_keys=True).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    layer_dir = diff_id.split(":")[1]
    manifest = json.dumps([{
        "Config": cfg_name,
        "RepoTags": [ref],
        "Layers": [layer_dir + "/layer.tar"],
    }]).encode()
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, layer_dir, "dir")
        add(tar, layer_dir + "/layer.tar", "file", lay, 0o644)
        add(tar, layer_dir + "/VERSION", "file", b"1.0", 0o644)
        add(tar, cfg_name, "file", config, 0o644)
        add(tar, "manifest.json", "file", manifest, 0o644)
        add(tar, "repositories", "file", json.dumps(
            {ref.rsplit(":", 1)[0]: {ref.rsplit(":", 1)[1]: layer_dir}}).encode(), 0o644)


if __name__ == "__main__":
    main()
