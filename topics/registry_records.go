package topics

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultRegistryTopic is where models and their activations live unless configured.
const DefaultRegistryTopic = "streamscore.models"

// ChunkSize is the largest piece of a model file in one record: half of the broker's
// default max.message.bytes (~1 MB), leaving room for the key, headers and batch overhead
// without asking anyone to raise a broker limit.
const ChunkSize = 512 << 10

// Role is what an activation makes of a version.
type Role string

// The roles: the live version scores every event and its predictions are the outputs; a
// shadow version scores the same rows beside it into the shadow topic.
const (
	RoleLive      Role = "live"
	RoleShadow    Role = "shadow"
	RoleShadowOff Role = "shadow-off" // no shadow from now on; Version may be empty
)

// Reasons an activation was written.
const (
	ReasonActivate = "activate"
	ReasonRollback = "rollback"
)

// Errors of the registry; wrapped with the name and version concerned.
var (
	ErrModelNotFound   = errors.New("model version not in the registry")
	ErrModelIncomplete = errors.New("model version stored incompletely")
)

// ModelMeta is the record model/<name>/<version>: what a version is, written only after
// every chunk of its file is acknowledged.
type ModelMeta struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"` // the first 8 hex digits of SHA256
	SHA256    string    `json:"sha256"`  // of the whole file, hex
	Bytes     int64     `json:"bytes"`
	Chunks    int       `json:"chunks"`
	ChunkSize int       `json:"chunk_size"`
	Width     int       `json:"width"` // input features per row
	PushedAt  time.Time `json:"pushed_at"`
	PushedBy  string    `json:"pushed_by"`
	// Manifest is the optional bundle manifest (threshold, feature spec hash, reference
	// statistics, golden rows) as a JSON object; the registry stores it untouched.
	Manifest json.RawMessage `json:"manifest,omitempty"`
}

// Activation is the record activation/<name>/<seq>: from here on, Version of Name has
// Role. The log order (Offset) is the order in which activations apply; Seq only makes
// the key unique, so that compaction never removes one.
type Activation struct {
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Role    Role      `json:"role"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
	By      string    `json:"by"`
	// Rules are what RoleServe makes serve Name (registry_routes.go).
	Rules []Rule `json:"rules,omitempty"`
	// Experiment is what RoleExperiment starts and RoleExperimentStop ends.
	Experiment *Experiment `json:"experiment,omitempty"`

	Seq    uint64 `json:"-"` // from the key
	Offset int64  `json:"-"` // in the registry topic; -1 before it is written
}

// Mark is the record mark/<topic>/<partition>/<offset>: from input Offset of Topic's
// Partition on, events were scored by Version of Name. The live operator writes one when
// a partition's version changes, so that a backfill can score each event with the version
// that was live for it.
type Mark struct {
	Topic     string `json:"-"`
	Partition int32  `json:"-"`
	Offset    int64  `json:"-"`
	Name      string `json:"name"`
	Version   string `json:"version"`
	// Routing, when set, is the routing (Routing) in force with Version as the live
	// version: a replay routes each event by it.
	Routing json.RawMessage `json:"routing,omitempty"`
}

// Malformed is a record of the registry topic that no reader understands (a foreign
// writer or a newer format). Readers skip it and report it rather than failing: a
// compacted topic would keep the record, and the registry, broken forever.
type Malformed struct {
	Offset int64
	Key    string
	Err    error
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidModelName says why name cannot name a model (it becomes part of record keys).
func ValidModelName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("model name %q: want letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit)", name)
	}
	return nil
}

func blobKey(name, version string, i int) string {
	return "blob/" + name + "/" + version + "/" + strconv.Itoa(i)
}
func modelKey(name, version string) string { return "model/" + name + "/" + version }
func activationKey(name string, seq uint64) string {
	return fmt.Sprintf("activation/%s/%020d", name, seq)
}

// MarkKey is the record key of a switch marker.
func MarkKey(topic string, partition int32, offset int64) string {
	return fmt.Sprintf("mark/%s/%d/%020d", topic, partition, offset)
}

// EncodeMark returns the key and value of m's record, for a writer that produces it with
// its own producer (the live operator, inside its transaction in exactly-once mode).
func EncodeMark(m Mark) (key, value []byte, err error) {
	if m.Topic == "" || strings.Contains(m.Topic, "/") || m.Partition < 0 || m.Offset < 0 {
		return nil, nil, fmt.Errorf("encoding switch marker for %s/%d@%d: invalid position", m.Topic, m.Partition, m.Offset)
	}
	v, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding switch marker: %w", err)
	}
	return []byte(MarkKey(m.Topic, m.Partition, m.Offset)), v, nil
}

func decodeActivation(rec *kgo.Record) (Activation, error) {
	var a Activation
	parts := strings.Split(string(rec.Key), "/")
	if len(parts) != 3 {
		return a, errors.New("activation key: want activation/<name>/<seq>")
	}
	seq, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil {
		return a, fmt.Errorf("activation key: sequence: %w", err)
	}
	if err := json.Unmarshal(rec.Value, &a); err != nil {
		return a, fmt.Errorf("activation value: %w", err)
	}
	if a.Name != parts[1] {
		return a, fmt.Errorf("activation of %q under the key of %q", a.Name, parts[1])
	}
	a.Seq, a.Offset = seq, rec.Offset
	return a, nil
}

func decodeMark(rec *kgo.Record) (Mark, error) {
	var m Mark
	parts := strings.Split(string(rec.Key), "/")
	if len(parts) != 4 {
		return m, errors.New("mark key: want mark/<topic>/<partition>/<offset>")
	}
	if err := json.Unmarshal(rec.Value, &m); err != nil {
		return m, fmt.Errorf("mark value: %w", err)
	}
	p, err := strconv.ParseInt(parts[2], 10, 32)
	if err != nil {
		return m, fmt.Errorf("mark key: partition: %w", err)
	}
	off, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return m, fmt.Errorf("mark key: offset: %w", err)
	}
	m.Topic, m.Partition, m.Offset = parts[1], int32(p), off
	return m, nil
}
