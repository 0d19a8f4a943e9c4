#!/usr/bin/env python3
"""Writes an OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md) of one
image from a root filesystem: one gzip layer, the config (non-root user, entrypoint, labels) and a manifest, named
by a tag in index.json. No container engine is involved: skopeo copies the result to any registry.

    image/oci-layout.py --rootfs DIR --out DIR --tag 0.1.0 --revision COMMIT --created EPOCH_SECONDS [--source URL]

Reproducible: entries sorted, owner 0:0, every timestamp the given --created (use the commit's time, as
SOURCE_DATE_EPOCH does), gzip without a name or time; the same root filesystem and arguments give the same digests.
"""

import argparse
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile


def layer_tar(rootfs: str, mtime: int) -> bytes:
    """The root filesystem as an uncompressed tar: sorted, owned by 0:0, one timestamp."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = []
        for directory, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs + files):
                paths.append(os.path.join(directory, name))
        for path in sorted(paths, key=lambda p: os.path.relpath(p, rootfs)):
            info = tar.gettarinfo(path, arcname=os.path.relpath(path, rootfs))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = mtime
            info.pax_headers = {}
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def gzipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rootfs", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--revision", required=True)
    parser.add_argument("--created", required=True, type=int)
    parser.add_argument("--source", default="https://github.com/pullsecret-injector/pullsecret-injector")
    args = parser.parse_args()

    created = datetime.datetime.fromtimestamp(args.created, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    entrypoint = os.path.join(args.rootfs, "pullsecret-injector")
    if not os.path.isfile(entrypoint) or not os.stat(entrypoint).st_mode & stat.S_IXUSR:
        raise SystemExit(f"oci-layout.py: {entrypoint} is missing or not executable (run image/rootfs.sh first)")

    tar = layer_tar(args.rootfs, args.created)
    layer = gzipped(tar)
    labels = {
        "org.opencontainers.image.title": "pullsecret-injector",
        "org.opencontainers.image.description": "Kubernetes mutating admission webhook that adds the "
        "imagePullSecrets the kubelet will actually use",
        "org.opencontainers.image.version": args.tag,
        "org.opencontainers.image.revision": args.revision,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.source": args.source,
    }
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            # Numeric, not a name: the kubelet verifies runAsNonRoot without reading /etc/passwd.
            "User": "65532:65532",
            "Entrypoint": ["/pullsecret-injector"],
            "Cmd": ["serve"],
            "ExposedPorts": {"8443/tcp": {}, "8080/tcp": {}},
            "Env": ["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "Labels": labels,
        },
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
        "history": [{"created": created, "created_by": "image/rootfs.sh + image/oci-layout.py (make image)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256(layer),
                "size": len(layer),
            }
        ],
        "annotations": {k: v for k, v in labels.items() if k != "org.opencontainers.image.description"},
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256(manifest_bytes),
                "size": len(manifest_bytes),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": args.tag},
            }
        ],
    }

    shutil.rmtree(args.out, ignore_errors=True)
    blobs = os.path.join(args.out, "blobs", "sha256")
    os.makedirs(blobs)
    for data in (layer, config_bytes, manifest_bytes):
        with open(os.path.join(blobs, sha256(data).split(":", 1)[1]), "wb") as f:
            f.write(data)
    with open(os.path.join(args.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(args.out, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True, separators=(",", ":"))
    print(f"{args.out}: {args.tag} {sha256(manifest_bytes)} ({len(layer) / 1048576:.1f} MiB compressed)")


if __name__ == "__main__":
    main()
