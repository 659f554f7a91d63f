#!/usr/bin/env bash
# Installs the ONNX Runtime shared library (CPU build, version below) into the cache,
# where streamscore finds it: ${STREAMSCORE_CACHE:-~/.cache/streamscore}/onnxruntime/.
# It comes from a registry package: the onnxruntime wheel on PyPI (capi/libonnxruntime.so.*),
# or, if pip cannot get it, the npm package onnxruntime-node (install script skipped).
# Idempotent: does nothing when the library is already there.
set -euo pipefail

ORT_VERSION="${ORT_VERSION:-1.29.0}"
CACHE="${STREAMSCORE_CACHE:-$HOME/.cache/streamscore}"
DEST="$CACHE/onnxruntime"
LIB="$DEST/libonnxruntime.so"

if [[ -f "$LIB" && -f "$DEST/VERSION" && "$(cat "$DEST/VERSION")" == "$ORT_VERSION" ]]; then
  echo "ONNX Runtime $ORT_VERSION already installed: $LIB"
  exit 0
fi
case "$(uname -m)" in
  x86_64) plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64); npmarch=x64 ;;
  aarch64) plat=(--platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64); npmarch=arm64 ;;
  *) echo "install-onnxruntime: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

mkdir -p "$DEST"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

from_wheel() {
  local py
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || return 1
  "$py" -m pip download -q --no-deps --only-binary=:all: "${plat[@]}" \
    --python-version 3.12 --implementation cp -d "$tmp/whl" "onnxruntime==$ORT_VERSION" || return 1
  local whl
  whl="$(ls "$tmp"/whl/onnxruntime-*.whl 2>/dev/null | head -n1)"
  [[ -n "$whl" ]] || return 1
  "$py" - "$whl" "$tmp/lib" <<'PY'
import sys, zipfile, re, os
whl, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if re.search(r"onnxruntime/capi/libonnxruntime\.so\.\d", n)]
    if not names:
        sys.exit("no libonnxruntime.so in " + whl)
    with z.open(names[0]) as src, open(os.path.join(out, "libonnxruntime.so"), "wb") as dst:
        dst.write(src.read())
PY
}

from_npm() {
  command -v npm >/dev/null || return 1
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_VERSION" >/dev/null) || return 1
  tar -xzf "$tmp"/onnxruntime-node-*.tgz -C "$tmp" "package/bin/napi-v6/linux/$npmarch/libonnxruntime.so.1" || return 1
  mkdir -p "$tmp/lib" && cp "$tmp/package/bin/napi-v6/linux/$npmarch/libonnxruntime.so.1" "$tmp/lib/libonnxruntime.so"
}

if from_wheel; then
  src="PyPI wheel onnxruntime==$ORT_VERSION"
elif from_npm; then
  src="npm onnxruntime-node@$ORT_VERSION"
else
  echo "install-onnxruntime: could not download ONNX Runtime $ORT_VERSION with pip (python3) or npm." >&2
  echo "Install one of them, or set ONNXRUNTIME_LIB to an existing libonnxruntime.so (1.29 or newer)." >&2
  exit 1
fi
mv "$tmp/lib/libonnxruntime.so" "$LIB"
echo "$ORT_VERSION" > "$DEST/VERSION"
echo "installed ONNX Runtime $ORT_VERSION from $src: $LIB"
