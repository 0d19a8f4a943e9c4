# syntax=docker/dockerfile:1
#
# Container image of pullsecret-injector:
#   docker build -t ghcr.io/pullsecret-injector/pullsecret-injector:0.1.0 .
#
# Two stages: a full Rust toolchain builds the binary, and only the binary ships, on a distroless base (no
# shell, no package manager: nothing for an attacker to use, little for scanners to flag).

# Build stage. Debian bookworm on purpose: the runtime image below is Debian 12 (bookworm) too, so the glibc the
# binary is linked against here is the glibc it finds at run time. The binary is dynamically linked against
# glibc only (TLS is rustls with ring, no OpenSSL), so a static musl build is not needed.
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build reads, so `target/`, `certs/` (private keys) and the rest of the work tree never enter
# the build. A new build input (build.rs, or a [[bench]]/[[test]] target with an explicit path in Cargo.toml)
# must be added here.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# --locked: build exactly the dependency versions in Cargo.lock, fail instead of resolving new ones.
# The cache mounts (BuildKit) keep downloaded crates and compiled dependencies between builds; they are not
# part of any image layer, hence the copy out of target/.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pullsecret-injector \
    && install -D -m 0755 target/release/pullsecret-injector /out/pullsecret-injector

# Runtime stage: glibc, libgcc, CA certificates and /etc/passwd entries, nothing else. The :nonroot tag runs as
# uid/gid 65532 (the user the Deployment's securityContext also requires).
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pullsecret-injector" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that adds the imagePullSecrets the kubelet will actually use" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/pullsecret-injector /pullsecret-injector
# Numeric, not a name: the kubelet can then verify runAsNonRoot without reading /etc/passwd in the image.
USER 65532:65532
# 8443: HTTPS admission (POST /mutate); 8080: plain HTTP /healthz, /readyz, /metrics.
EXPOSE 8443 8080
ENTRYPOINT ["/pullsecret-injector"]
CMD ["serve"]
