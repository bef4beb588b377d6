# syntax=docker/dockerfile:1
#
# The carbondesk image: one static binary that runs as any of the services
# (carbondesk serve registry|catalog|matching|talent|gateway), the single
# all-in-one process (no arguments) or the client verbs (seed, token, ...).
#
#   docker build -t carbondesk .
#
# Build stage: a static executable (no cgo), reproducible paths, no symbol
# tables. The module download is its own layer so a source change does not
# download the modules again; the cache mounts keep Go's caches between builds.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/carbondesk ./cmd/carbondesk \
 && mkdir -p /out/data

# Final stage: distroless static (CA certificates, tzdata, /etc/passwd with
# nonroot = 65532, no shell and no package manager). It has no tool a Docker
# HEALTHCHECK could run, so none is declared here: Kubernetes probes the gRPC
# health natively (deploy/k8s/), and docker-compose.yml says what it does.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/carbondesk /carbondesk
# /data: the default --data folder (development token key, embedded store of
# the all-in-one process), owned by the non-root user so that a named volume
# mounted there starts out writable.
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
USER 65532:65532
# 7070 gRPC, 8080 REST gateway and console, 9090 Prometheus metrics.
EXPOSE 7070 8080 9090
ENTRYPOINT ["/carbondesk"]
