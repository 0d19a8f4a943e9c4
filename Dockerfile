# syntax=docker/dockerfile:1
#
# Container image of pullsecret-injector, for those who build with Docker:
#   docker build --build-arg PULLSECRET_INJECTOR_COMMIT=$(git rev-parse --short=12 HEAD) \
#     -t ghcr.io/pullsecret-injector/pullsecret-injector:0.1.0 .
#
# `make image` builds the same image without any container engine (image/rootfs.sh, then image/oci-layout.py):
# both run image/rootfs.sh on a release binary, so both hold the same files: the binary, glibc and libgcc with
# their loader, CA certificates, /etc/passwd naming the non-root user 65532. No shell, no package manager.

# Build stage. Debian bookworm, like the machines `make image` runs on: the libraries copied into the image are
# the ones the binary was linked against here.
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build reads, so `target/`, `certs/` (private keys) and the rest of the work tree never enter
# the build. A new build input (a [[bench]]/[[test]] target with an explicit path in Cargo.toml) must be added here.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY image/rootfs.sh ./image/rootfs.sh
# No .git here: the commit comes from the build argument (else `unknown`).
ARG PULLSECRET_INJECTOR_COMMIT=unknown
# --locked: build exactly the dependency versions in Cargo.lock, fail instead of resolving new ones.
# The cache mounts (BuildKit) keep downloaded crates and compiled dependencies between builds; they are not
# part of any image layer, hence the copy out of target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    PULLSECRET_INJECTOR_COMMIT=$PULLSECRET_INJECTOR_COMMIT cargo build --release --locked --bin pullsecret-injector \
    && bash image/rootfs.sh target/release/pullsecret-injector /out/rootfs

FROM scratch
COPY --from=build /out/rootfs /
LABEL org.opencontainers.image.title="pullsecret-injector" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that adds the imagePullSecrets the kubelet will actually use" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Numeric, not a name: the kubelet can then verify runAsNonRoot without reading /etc/passwd in the image.
USER 65532:65532
# 8443: HTTPS admission (POST /mutate); 8080: plain HTTP /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/pullsecret-injector"]
CMD ["serve"]
