// Command kubecheck validates rendered Kubernetes manifests (`helm template` output on
// stdin) offline: each document is decoded strictly — unknown fields and wrong types are
// errors — into its typed Go struct, k8s.io/api's for the built-in kinds and the
// field-for-field copies in crds.go for KEDA's and the Prometheus Operator's, then
// checked for what a schema cannot see (a probe naming a port the container lacks, a
// selector that misses the pod template, a scale target that was not rendered).
//
// It exists because kubeconform, the usual tool, downloads its JSON schemas from GitHub at
// run time, which the machines of this project cannot reach; the Go types come from the Go
// module proxy like any dependency. A kind it does not know is an error, never a pass.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/yaml"
)

func main() {
	configs := flag.String("configmaps", "", "also write each key of each ConfigMap into this folder (to check the rendered files with their own tools)")
	flag.Parse()
	objs, err := check(os.Stdin)
	if err == nil && *configs != "" {
		err = writeConfigMaps(objs, *configs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubecheck:", err)
		os.Exit(1)
	}
	fmt.Printf("kubecheck: %d manifests valid\n", len(objs))
}

// writeConfigMaps writes the data of the ConfigMaps into dir, one file per key.
func writeConfigMaps(objs []object, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, o := range objs {
		if cm, ok := o.typed.(*corev1.ConfigMap); ok {
			for k, v := range cm.Data {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// check validates every document of r and returns them, decoded.
func check(r io.Reader) ([]object, error) {
	docs, err := split(r)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, errors.New("no manifests on stdin")
	}
	var objs []object
	var errs []error
	for _, d := range docs {
		o, err := decode(d.text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.source, err))
			continue
		}
		o.source = d.source
		objs = append(objs, o)
	}
	errs = append(errs, crossCheck(objs)...)
	return objs, errors.Join(errs...)
}

type doc struct {
	source string // "# Source:" line of helm template, or the document's index
	text   []byte
}

// split cuts a YAML stream at its "---" lines, dropping documents that hold only comments.
func split(r io.Reader) ([]doc, error) {
	var out []doc
	var cur bytes.Buffer
	source := ""
	flush := func() {
		if hasContent(cur.String()) {
			if source == "" {
				source = fmt.Sprintf("document %d", len(out)+1)
			}
			out = append(out, doc{source: source, text: append([]byte(nil), cur.Bytes()...)})
		}
		cur.Reset()
		source = ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " ") == "---" {
			flush()
			continue
		}
		if s, ok := strings.CutPrefix(line, "# Source: "); ok {
			source = s
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out, sc.Err()
}

func hasContent(s string) bool {
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// object is a decoded manifest.
type object struct {
	source   string
	kind     string
	name     string
	typed    any
	typeMeta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
}

// decode converts one YAML document to JSON and decodes it strictly into its type.
func decode(y []byte) (object, error) {
	var o object
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return o, fmt.Errorf("not YAML: %w", err)
	}
	if err := json.Unmarshal(j, &o.typeMeta); err != nil {
		return o, fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	gvk := o.typeMeta.APIVersion + "/" + o.typeMeta.Kind
	newT, ok := kinds[gvk]
	if !ok {
		return o, fmt.Errorf("%s: kubecheck has no type for it: add it to kinds (main.go) rather than let it pass unchecked", gvk)
	}
	o.kind, o.name, o.typed = o.typeMeta.Kind, o.typeMeta.Metadata.Name, newT()
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(o.typed); err != nil {
		return o, fmt.Errorf("%s %q: %w", gvk, o.name, err)
	}
	if o.name == "" {
		return o, fmt.Errorf("%s: metadata.name is empty", gvk)
	}
	if c, ok := o.typed.(interface{ check() error }); ok {
		if err := c.check(); err != nil {
			return o, fmt.Errorf("%s %q: %w", gvk, o.name, err)
		}
	}
	return o, nil
}
