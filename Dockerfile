# syntax=docker/dockerfile:1
#
# silkroute container image.
#
#   docker build -t silkroute:dev .
#   docker run --rm -p 9464:9464 -e SILKROUTE__KAFKA__BOOTSTRAP_SERVERS=host:9092 silkroute:dev
#
# Stage 1 builds the release binary with the project's own toolchain version; stage 2 is
# distroless (glibc, libssl3, libgcc/libstdc++, CA certificates; no shell, no package manager)
# and runs as the numeric non-root user 65532, which is what the Kubernetes manifests expect
# (runAsNonRoot needs a numeric UID to verify).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# cmake: rdkafka is built with its `cmake-build` feature (librdkafka compiled from source).
# libssl-dev / pkg-config: the `ssl` feature links the system OpenSSL 3, which the runtime
# image also ships (libssl3).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*

# zlib is linked statically: the distroless runtime has no libz.so.1.
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never

WORKDIR /src
COPY . .

# The cache mounts keep the crates.io download and the target directory between builds;
# the binary is copied out of the cached target directory in the same step. The dynamic
# dependencies are checked here, so an image that cannot start in distroless never builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin silkroute \
 && install -D -m 0755 target/release/silkroute /out/silkroute \
 && unexpected="$(ldd /out/silkroute | awk '{print $1}' \
      | grep -vE '^(linux-vdso\.so|/lib64/ld-linux-x86-64\.so|ld-linux-aarch64\.so|/lib/ld-linux-aarch64\.so|libc\.so|libm\.so|libdl\.so|libpthread\.so|librt\.so|libgcc_s\.so|libstdc\+\+\.so|libssl\.so\.3|libcrypto\.so\.3)' || true)" \
 && if [ -n "$unexpected" ]; then echo "silkroute links libraries the runtime image lacks: $unexpected" >&2; exit 1; fi \
 && install -D -m 0644 config/default.toml /out/config/default.toml

FROM gcr.io/distroless/cc-debian12:nonroot

LABEL org.opencontainers.image.title="silkroute" \
      org.opencontainers.image.description="Turns official trade statistics into live indicators: Kafka in, indicators out." \
      org.opencontainers.image.licenses="Apache-2.0"

# The binary reads config/default.toml relative to its working directory; a deployment adds
# its overrides with `--config FILE` (the Kubernetes manifests mount /etc/silkroute/silkroute.toml)
# and SILKROUTE__SECTION__KEY environment variables.
WORKDIR /app
COPY --from=builder /out/silkroute /usr/local/bin/silkroute
COPY --from=builder /out/config/default.toml /app/config/default.toml

ENV SILKROUTE__LOG__FORMAT=json

USER 65532:65532
EXPOSE 9464

ENTRYPOINT ["/usr/local/bin/silkroute"]
CMD ["run"]
