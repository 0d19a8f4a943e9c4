#!/usr/bin/env bash
# The container's root filesystem, from a release binary and the host's own files: the binary, the shared libraries
# it is linked against (glibc and libgcc only: TLS is rustls with ring, no OpenSSL) with their loader, the CA
# certificates (registries' TLS for `verify`), /etc/passwd and /etc/group naming the non-root user 65532, and the
# libraries' copyright files. No shell, no package manager.
#
#   image/rootfs.sh BINARY ROOTFS
#
# `make image` runs it on the build machine; the Dockerfile runs it in its build stage, so both images hold the
# same files.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: image/rootfs.sh BINARY ROOTFS" >&2; exit 2; }
binary=$1 rootfs=$2
[ -x "$binary" ] || { echo "rootfs.sh: $binary is not an executable" >&2; exit 2; }
certs=/etc/ssl/certs/ca-certificates.crt
[ -r "$certs" ] || { echo "rootfs.sh: $certs is missing (apt-get install ca-certificates)" >&2; exit 2; }

rm -rf "$rootfs"
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/usr/share/doc"
# Without its symbol table: a third of the size, and nothing a crash report in production uses.
strip --strip-all -o "$rootfs/pullsecret-injector" "$binary"
chmod 0755 "$rootfs/pullsecret-injector"

# Every library ldd resolves, and the loader, at the paths the binary asks for.
libraries=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
for lib in $libraries; do
  install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
done
unexpected=$(ldd "$binary" | awk '$2 == "=>" { print $1 }' | grep -vE '^(libc|libm|libgcc_s)\.so' || true)
[ -z "$unexpected" ] || { echo "rootfs.sh: unexpected shared libraries: $unexpected" >&2; exit 1; }

install -m 0644 "$certs" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' \
  > "$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' > "$rootfs/etc/group"
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
for package in libc6 libgcc-s1 ca-certificates; do
  if [ -r "/usr/share/doc/$package/copyright" ]; then
    install -D -m 0644 "/usr/share/doc/$package/copyright" "$rootfs/usr/share/doc/$package/copyright"
  fi
done
