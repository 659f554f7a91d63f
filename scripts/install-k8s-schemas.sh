#!/usr/bin/env bash
# Installs the Kubernetes JSON schemas that kubeconform validates the Helm chart against
# (make chart) into ${STREAMSCORE_CACHE:-~/.cache/streamscore}/k8s-schemas-$K8S_VERSION/.
# kubeconform's default downloads them from GitHub at run time; here they come from a
# registry package instead: PyPI's kubernetes-validate wheel bundles the schemas of every
# Kubernetes release (kubernetes-json-schema/v<version>-local-strict/<kind>-<group>-<version>.json
# plus one _definitions.json). Those files find _definitions.json through their "$id"
# (https://kubernetes.io/api/...), which a file loader cannot fetch; this script drops each
# kind file's "$id" and makes its "$ref"s relative, so that they resolve next to it.
# Idempotent: does nothing when the schemas are already there.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.0}"
WHEEL_VERSION="${K8S_SCHEMAS_WHEEL_VERSION:-1.37.0}" # the kubernetes-validate release that has it
CACHE="${STREAMSCORE_CACHE:-$HOME/.cache/streamscore}"
DEST="$CACHE/k8s-schemas-$K8S_VERSION"

if [[ -f "$DEST/.installed" ]]; then
  exit 0
fi
command -v python3 >/dev/null || { echo "install-k8s-schemas: python3 is required" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "install-k8s-schemas: kubernetes-validate==$WHEEL_VERSION from PyPI (Kubernetes $K8S_VERSION schemas)" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "kubernetes-validate==$WHEEL_VERSION" ||
  { echo "install-k8s-schemas: pip could not download kubernetes-validate==$WHEEL_VERSION from PyPI" >&2; exit 1; }
rm -rf "$DEST.tmp"
python3 - "$tmp"/kubernetes_validate-*.whl "v$K8S_VERSION-local-strict" "$DEST.tmp" <<'PY'
import json, os, sys, zipfile
wheel, folder, dest = sys.argv[1:4]
prefix = "kubernetes_validate/kubernetes-json-schema/%s/" % folder
os.makedirs(dest)
n = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if not name.startswith(prefix) or not name.endswith(".json"):
            continue
        base = name[len(prefix):]
        doc = json.loads(z.read(name))
        if base != "_definitions.json":
            doc.pop("$id", None)
        text = json.dumps(doc).replace('"/api/_definitions.json#', '"_definitions.json#')
        with open(os.path.join(dest, base), "w") as f:
            f.write(text)
        n += 1
if n == 0:
    sys.exit("install-k8s-schemas: %s holds no %s" % (os.path.basename(wheel), folder))
print("install-k8s-schemas: %d schemas" % n, file=sys.stderr)
PY
touch "$DEST.tmp/.installed"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
