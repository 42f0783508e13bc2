# syntax=docker/dockerfile:1
# Multi-stage, static build of fordpass2mqtt on a distroless, non-root base
# (CA certificates and tzdata included). Builds for amd64 and arm64:
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=1.0.0 -t fordpass2mqtt .
# The image users run is built with -tags nodemo: it carries only the
# bridge, neither the demo's embedded broker nor the FordPass simulator.
# The demo has its own target:
#   docker build --target demo -t fordpass2mqtt-demo .

FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -tags nodemo -ldflags="-s -w -X main.version=${VERSION}" -o /out/fordpass2mqtt ./cmd/fordpass2mqtt
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/demo/fordpass2mqtt ./cmd/fordpass2mqtt
RUN mkdir -p /out/data && chmod 0700 /out/data

# The demo: the same image with the full binary (simulator and embedded
# broker included); docker compose --profile demo builds this target.
FROM gcr.io/distroless/static-debian12:nonroot AS demo
COPY --from=build /out/demo/fordpass2mqtt /usr/local/bin/fordpass2mqtt
COPY --from=build --chown=65532:65532 /out/data /data
ENV STATE_DIR=/data \
    HTTP_ADDR=:8080
EXPOSE 8080
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/fordpass2mqtt"]
CMD ["demo"]

# The Home Assistant add-on's image (config.yaml's image, one per
# architecture, built by .github/workflows/release.yml):
#   docker buildx build --platform linux/arm64 --target addon --build-arg BUILD_ARCH=aarch64 --build-arg VERSION=1.0.0 .
# No s6-overlay: the Supervisor runs the image's entrypoint with its
# environment (SUPERVISOR_TOKEN, TZ) and this one (STATE_DIR, HTTP_ADDR),
# and the binary is that entrypoint, so nothing resets the environment.
# It runs as root: the Supervisor creates the add-on's /data as root and
# runs the image's user.
FROM gcr.io/distroless/static-debian12 AS addon
ARG VERSION=dev
ARG BUILD_ARCH=amd64
LABEL io.hass.type="addon" \
      io.hass.name="fordpass2mqtt" \
      io.hass.description="Your Ford on MQTT with Home Assistant discovery" \
      io.hass.version="${VERSION}" \
      io.hass.arch="${BUILD_ARCH}" \
      io.hass.url="https://github.com/fordpass2mqtt/fordpass2mqtt" \
      org.opencontainers.image.source="https://github.com/fordpass2mqtt/fordpass2mqtt" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/fordpass2mqtt /usr/local/bin/fordpass2mqtt
ENV STATE_DIR=/data \
    HTTP_ADDR=:8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/fordpass2mqtt", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fordpass2mqtt"]
CMD ["run"]

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="fordpass2mqtt" \
      org.opencontainers.image.description="Keeps a Ford vehicle on MQTT, with Home Assistant discovery" \
      org.opencontainers.image.source="https://github.com/fordpass2mqtt/fordpass2mqtt" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/fordpass2mqtt /usr/local/bin/fordpass2mqtt
COPY --from=build --chown=65532:65532 /out/data /data
ENV STATE_DIR=/data \
    HTTP_ADDR=:8080
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/fordpass2mqtt", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/fordpass2mqtt"]
CMD ["run"]
