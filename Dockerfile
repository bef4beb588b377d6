# Multi-stage build of the carbondesk binary: a static executable on a
# distroless base, running as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/carbondesk ./cmd/carbondesk

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/carbondesk /usr/local/bin/carbondesk
USER nonroot:nonroot
EXPOSE 7070 8080
ENTRYPOINT ["/usr/local/bin/carbondesk"]
