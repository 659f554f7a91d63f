# syntax=docker/dockerfile:1
#
# streamscore container image.
#
#   docker build -t streamscore:local .
#   docker run --rm streamscore:local run --config /etc/streamscore/streamscore.yaml --brokers kafka:9092
#
# Stages:
#   build        Go toolchain; builds ./cmd/streamscore with cgo (onnxruntime_go uses cgo + dlopen)
#   onnxruntime  pulls libonnxruntime.so 1.29.0 out of the official onnxruntime manylinux wheel
#   (final)      debian:bookworm-slim runtime with the binary, the ONNX Runtime library, testdata
#                and the default config

ARG ORT_VERSION=1.29.0

# The build stage must not use a newer glibc than the runtime stage (cgo binary):
# golang:1.26 with the -bookworm variant matches debian:bookworm-slim below.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=1 GOOS=linux GOARCH=amd64 GOFLAGS=-mod=readonly
COPY go.mod go.sum* ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/streamscore ./cmd/streamscore

FROM python:3.12-slim-bookworm AS onnxruntime
ARG ORT_VERSION
WORKDIR /tmp/ort
RUN pip download --no-cache-dir --disable-pip-version-check --no-deps --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --python-version 3.12 --implementation cp \
        "onnxruntime==${ORT_VERSION}" -d /tmp/ort/wheel \
 && python -c "import glob, re, shutil, sys, zipfile; \
whl = glob.glob('/tmp/ort/wheel/onnxruntime-*.whl')[0]; \
z = zipfile.ZipFile(whl); \
pat = r'onnxruntime/capi/libonnxruntime\.so\.' + re.escape('${ORT_VERSION}'.rsplit('.', 1)[0]) + r'\.[0-9]+'; \
names = [n for n in z.namelist() if re.fullmatch(pat, n)]; \
len(names) == 1 or sys.exit('expected one libonnxruntime.so in %s, found %r' % (whl, names)); \
shutil.copyfileobj(z.open(names[0]), open('/tmp/ort/libonnxruntime.so', 'wb')); \
print('extracted', names[0], 'from', whl)"

FROM debian:bookworm-slim
ARG ORT_VERSION
LABEL org.opencontainers.image.title="streamscore" \
      org.opencontainers.image.description="Scores Kafka event streams with ONNX models" \
      org.opencontainers.image.source="https://github.com/streamscore/streamscore"
# libstdc++6/libgcc-s1: needed by libonnxruntime.so; ca-certificates: TLS brokers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgcc-s1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /opt/streamscore --shell /usr/sbin/nologin streamscore
COPY --from=onnxruntime /tmp/ort/libonnxruntime.so /usr/local/lib/libonnxruntime.so
RUN ldconfig
ENV ONNXRUNTIME_LIB=/usr/local/lib/libonnxruntime.so
COPY --from=build /out/streamscore /usr/local/bin/streamscore
COPY testdata/ /opt/streamscore/testdata/
COPY streamscore.yaml /etc/streamscore/streamscore.yaml
WORKDIR /opt/streamscore
USER streamscore
EXPOSE 7591
ENTRYPOINT ["/usr/local/bin/streamscore"]
CMD ["run", "--config", "/etc/streamscore/streamscore.yaml"]
