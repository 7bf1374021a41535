# syntax=docker/dockerfile:1
#
# sluice container image.
#
#   docker build -t sluice:dev .
#   docker run --rm --stop-timeout 40 -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/sluice.yaml:/etc/sluice/sluice.yaml:ro" sluice:dev
#
# Releases are built by .github/workflows/release.yml (linux/amd64 and linux/arm64, pushed to
# ghcr.io/sluice-proxy/sluice:<version>, signed, with an SBOM and provenance).
#
# Base: Node 24 (an LTS line) on Debian 12 "bookworm", slim. CI runs the whole test suite on Node 24
# as well as on the minimum supported Node 20, so 24 is the newest line sluice is verified on.
# Debian (glibc) rather than alpine (musl): the same libc the tests run on, for some tens of MB more.
#
# The base is pinned by codename and by the digest of its multi-platform index, so that a rebuild
# of the same commit uses the same bytes. renovate.json has Renovate open a pull request when the
# tag points at a new digest (Debian and Node security updates); the release workflow checks that
# the digest is an index holding both linux/amd64 and linux/arm64 before it builds.
# The one FROM that names an image is this one; the stages below start from it by name, so
# there is one reference to keep current, and `buildah build --from IMAGE` / `podman build --from
# IMAGE` (which replace the first FROM) build the same Dockerfile from a local base image.
FROM node:24-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d AS base

# ---- build: all dependencies, compile TypeScript to dist/ ----
FROM base AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the build needs tsc only, no dependency's install script.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build \
  && find dist -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.ts.map' \) -delete

# ---- production dependencies, without type declarations or source maps ----
FROM base AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete

# ---- runtime: node, production dependencies and dist/; no npm, no corepack ----
FROM base AS runtime
# npm, npx and corepack are not needed to run sluice, and what is not there cannot be used or
# flagged by a scanner. (The base layer still holds their files; the image's file system does not.)
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
  /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-* \
  && ! command -v npm
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules/ node_modules/
COPY --from=build /app/dist/ dist/
COPY LICENSE ./

# OCI annotations. The release workflow sets version, revision and created from the tag and the
# commit (docker/metadata-action), and they then override these as labels.
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="sluice" \
  org.opencontainers.image.description="A rate-limiting HTTP proxy and Kubernetes sidecar: queues requests per upstream key and releases them at the allowed rate." \
  org.opencontainers.image.source="https://github.com/sluice-proxy/sluice" \
  org.opencontainers.image.url="https://github.com/sluice-proxy/sluice" \
  org.opencontainers.image.documentation="https://github.com/sluice-proxy/sluice/blob/main/docs/deployment.md" \
  org.opencontainers.image.licenses="Apache-2.0" \
  org.opencontainers.image.vendor="sluice-proxy" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${REVISION}" \
  org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"

# The files above belong to root and are read-only for the process: it runs as the image's
# unprivileged "node" user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

# Client traffic and the admin endpoints (/metrics /healthz /readyz /state), as in the default
# configuration. No HEALTHCHECK: Kubernetes ignores it (the Helm chart uses probes on /healthz and
# /readyz), the admin port is configurable, and the slim image has no curl.
EXPOSE 8080 9090

# sluice drains on SIGTERM: /readyz turns 503, queued requests keep being released at the allowed
# rate for shutdown.grace (25 s by default), then it exits 0. Docker, Podman and Compose send the
# stop signal and kill after 10 s unless told otherwise, which cuts the drain short: give them
#   stop timeout >= shutdown.grace + the slowest in-flight request (its upstream timeout) + a margin
# e.g. `docker run --stop-timeout 40` / `podman stop -t 40` / Compose `stop_grace_period: 40s`
# for the defaults (25 s + 10 s + 5 s).
STOPSIGNAL SIGTERM

# No configuration is baked in: mount one at /etc/sluice/sluice.yaml (a ConfigMap in Kubernetes).
# The path is the default command rather than SLUICE_CONFIG in the environment, so that arguments
# after the image name replace it: quick mode (`docker run IMAGE --target URL --rate 20/s`) refuses
# to run when a configuration file is also named, and sluice reads an image-wide SLUICE_CONFIG even
# when `docker run -e SLUICE_CONFIG=` empties it. Another path: `docker run IMAGE --config PATH`.
# (The default command's --config wins over a SLUICE_CONFIG set at run time.)
# sluice handles SIGTERM itself, so it runs as PID 1 without an init process: node is the
# entrypoint, not npm or a shell, so the signal reaches it.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/etc/sluice/sluice.yaml"]
