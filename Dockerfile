# syntax=docker/dockerfile:1
#
# sluice container image.
#
#   docker build -t sluice:0.1.0 .
#   docker run --rm -p 8080:8080 -p 9090:9090 \
#     -v "$PWD/sluice.yaml:/etc/sluice/sluice.yaml:ro" sluice:0.1.0
#
# Base: Node 24 (an LTS line). The project's CI runs the whole test suite on Node 24 as well as on
# the minimum supported Node 20, so 24 is the newest line sluice is verified on; Node 22 is older
# and leaves support first. Move to a newer LTS by changing NODE_VERSION once CI runs on it.
# "-slim" (Debian, glibc) rather than alpine (musl): the same libc the tests run on, for some tens
# of MB more.
#
# Expected size: about 255 MB uncompressed, give or take 20 MB (roughly 85 MB compressed when
# pulled), of which sluice itself is about 25 MB. Estimated, not measured (no Docker engine where
# this was written):
#   node:24-slim base, about 230 MB uncompressed (about 75 MB compressed) for linux/amd64
#   + production node_modules 24 MB (apparent size after `npm ci --omit=dev --ignore-scripts`,
#     which is what a layer stores; `du -sh` counts disk blocks and shows more)
#   + dist/ 0.3 MB
# test/packaging/image-entrypoint.test.ts reproduces the runtime stage in a clean directory and
# prints the last two numbers.

ARG NODE_VERSION=24

# ---- build: all dependencies, compile TypeScript to dist/ ----
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the build needs tsc only, no dependency's install script.
RUN --mount=type=cache,target=/root/.npm npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

# ---- runtime: production dependencies and dist/ only ----
FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts
COPY --from=build /app/dist/ dist/
COPY LICENSE ./

# The files above belong to root and are read-only for the process: it runs as the image's
# unprivileged "node" user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

# Client traffic and the admin endpoints (/metrics /healthz /readyz /state), as in the default
# configuration. No HEALTHCHECK: Kubernetes ignores it (the Helm chart uses probes on /healthz and
# /readyz), the admin port is configurable, and the slim image has no curl.
EXPOSE 8080 9090

# No configuration is baked in: mount one at /etc/sluice/sluice.yaml (a ConfigMap in Kubernetes).
# The path is the default command rather than SLUICE_CONFIG in the environment, so that arguments
# after the image name replace it: quick mode (`docker run IMAGE --target URL --rate 20/s`) refuses
# to run when a configuration file is also named, and sluice reads an image-wide SLUICE_CONFIG even
# when `docker run -e SLUICE_CONFIG=` empties it. Another path: `docker run IMAGE --config PATH`.
# (The default command's --config wins over a SLUICE_CONFIG set at run time.)
# sluice handles SIGTERM itself (drain at the allowed rate for shutdown.grace, then exit 0), so it
# runs as PID 1 without an init process.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["--config", "/etc/sluice/sluice.yaml"]
