# syntax=docker/dockerfile:1
# postern's container image, from the operator's side: built in one stage with the dev dependencies
# (TypeScript), run in another with the production dependencies and the compiled output only.
#
#   docker build -t postern .
#   docker run --rm -p 9000:9000 postern                      # the built-in example tree on FastCGI :9000
#   docker run --rm -p 9000:9000 -v "$PWD/app:/srv/app:ro" postern --mount /=/srv/app/app.js
#   docker run --rm -v "$PWD/postern.yaml:/etc/postern/postern.yaml:ro" -e POSTERN_CONFIG=/etc/postern/postern.yaml postern
#
# Every option is a POSTERN_* variable (docs/configuration.md); flags after the image name win over
# them. test/integration/ship-docker.test.ts replays these steps (and test/unit/dockerfile.test.ts lints
# them): keep to ARG, FROM, WORKDIR, COPY, RUN, ENV, USER, EXPOSE, STOPSIGNAL, HEALTHCHECK, ENTRYPOINT, CMD.

# Node.js 24 is the LTS line CI tests on (.ci/run). Pin a digest for reproducible production builds:
#   docker build --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:… .
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so the layer is reused until the lockfile changes. `prepare` (tsc) needs the
# sources, which are not here yet: the build runs explicitly below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY protocols/ protocols/
COPY src/ src/
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the runtime dependencies need none, and `prepare` would look for tsc.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin/ bin/
COPY config/ config/
COPY --from=build /app/dist/ dist/

# The image's own node user (uid 1000): it owns nothing in /app, so the app cannot rewrite itself.
USER node

# Container defaults (all overridable with -e or flags): FastCGI on every interface of the container,
# the health path on a separate plain-HTTP listener so no app can shadow it, JSON-line logs (the event
# log on stderr, the access log on stdout), and a stop deadline below Docker's default 10 s grace
# (in-flight requests, then the apps' shutdown hooks: 6 s + 2 s).
ENV POSTERN_FASTCGI=:9000 \
    POSTERN_STATUS_LISTEN=:9001 \
    POSTERN_PING_PATH=/ping \
    POSTERN_STATUS_PATH=/status \
    POSTERN_LOG_FORMAT=json \
    POSTERN_ACCESS_LOG=- \
    POSTERN_ACCESS_LOG_FORMAT=json \
    POSTERN_SHUTDOWN_TIMEOUT_MS=6000 \
    POSTERN_APP_CLOSE_TIMEOUT_MS=2000

EXPOSE 9000 9001

# SIGTERM: stop accepting, let in-flight requests finish (up to POSTERN_SHUTDOWN_TIMEOUT_MS), close the
# apps (up to POSTERN_APP_CLOSE_TIMEOUT_MS), exit 0.
STOPSIGNAL SIGTERM

# `postern health` reads the same POSTERN_* variables and GETs the ping path on the status listener.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["node", "/app/bin/postern.js", "health", "--timeout-ms", "2500"]

ENTRYPOINT ["node", "/app/bin/postern.js"]
CMD []
