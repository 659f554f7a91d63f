package topics

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// RegistryOptions configures OpenRegistry.
type RegistryOptions struct {
	// Topic defaults to DefaultRegistryTopic.
	Topic string
	// Replication of the topic when OpenRegistry creates it; 0 means the broker default.
	Replication int16
}

// Registry stores model files and the activation log on one compacted, single-partition
// topic: one partition, so that its offsets order every activation and marker; compacted
// with a distinct key per chunk, version, activation and marker, so that compaction
// removes nothing but exact rewrites.
//
// Every method is safe for concurrent use. Reads (Models, GetModel, Activations, Marks,
// Snapshot) scan the topic from its start to the end offset captured when they are
// called, with a consumer of their own; writes go through one shared idempotent producer
// and return once acknowledged. Close waits for nothing: a method still running when
// Close is called fails.
type Registry struct {
	cc    ClientConfig
	topic string
	prod  *kgo.Client
	adm   *kadm.Client
}

// OpenRegistry connects to the registry topic, creating it (one partition,
// cleanup.policy=compact) when missing. An existing topic with more than one partition is
// refused: activations on different partitions would have no order.
func OpenRegistry(ctx context.Context, cc ClientConfig, o RegistryOptions) (*Registry, error) {
	if o.Topic == "" {
		o.Topic = DefaultRegistryTopic
	}
	repl := o.Replication
	if repl == 0 {
		repl = -1
	}
	adm, err := NewAdmin(cc)
	if err != nil {
		return nil, fmt.Errorf("opening model registry %s: %w", o.Topic, err)
	}
	defer adm.Close()
	compact := "compact"
	if err := adm.EnsureTopics(ctx, repl, TopicSpec{
		Name: o.Topic, Partitions: 1, Configs: map[string]*string{"cleanup.policy": &compact},
	}); err != nil {
		return nil, fmt.Errorf("opening model registry: %w", err)
	}
	n, err := partitionsOnceVisible(ctx, adm, o.Topic)
	if err != nil {
		return nil, fmt.Errorf("opening model registry: %w", err)
	}
	if n != 1 {
		return nil, fmt.Errorf("opening model registry: topic %s has %d partitions; the registry needs exactly one "+
			"so that offsets order every activation: delete it or name another topic", o.Topic, n)
	}
	opts, err := cc.opts("registry")
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(o.Topic),
		kgo.ProducerBatchCompression(kgo.Lz4Compression(), kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("opening model registry: creating producer: %w", err)
	}
	return &Registry{cc: cc, topic: o.Topic, prod: cl, adm: kadm.NewClient(cl)}, nil
}

// partitionsOnceVisible returns topic's partition count, waiting up to 15 s for a topic
// just created to appear in the metadata: Apache Kafka acknowledges CreateTopics before
// every broker's metadata cache knows the topic.
func partitionsOnceVisible(ctx context.Context, adm *Admin, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		md, err := adm.adm.Metadata(ctx, topic)
		if err == nil {
			if td, ok := md.Topics[topic]; ok && td.Err == nil && len(td.Partitions) > 0 {
				return len(td.Partitions), nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("topic %s does not appear in the metadata", topic)
			}
			return 0, fmt.Errorf("waiting for topic %s: %w", topic, err)
		case <-tick.C:
		}
	}
}

// Topic is the registry topic's name.
func (r *Registry) Topic() string { return r.topic }

// Close releases the producer.
func (r *Registry) Close() { r.prod.Close() }

// PutModel stores raw as version meta.Version of meta.Name: its chunks first, then, once
// every chunk is acknowledged, the model record, so that no reader ever sees a version
// whose file is incomplete. It fills SHA256, Bytes, Chunks, ChunkSize, and Version and
// PushedAt when empty; a Version that is not the SHA-256 prefix of raw is refused. When
// the version is already stored, PutModel writes nothing and returns the stored record.
func (r *Registry) PutModel(ctx context.Context, meta ModelMeta, raw []byte) (ModelMeta, error) {
	if err := ValidModelName(meta.Name); err != nil {
		return meta, fmt.Errorf("pushing model: %w", err)
	}
	if len(raw) == 0 {
		return meta, fmt.Errorf("pushing model %s: the file is empty", meta.Name)
	}
	sum := sha256.Sum256(raw)
	full := hex.EncodeToString(sum[:])
	if meta.Version == "" {
		meta.Version = full[:8]
	}
	if meta.Version != full[:8] {
		return meta, fmt.Errorf("pushing model %s: version %s is not the SHA-256 prefix %s of its bytes", meta.Name, meta.Version, full[:8])
	}
	if len(meta.Manifest) > 0 && !json.Valid(meta.Manifest) {
		return meta, fmt.Errorf("pushing model %s@%s: the manifest is not valid JSON", meta.Name, meta.Version)
	}
	meta.SHA256, meta.Bytes, meta.ChunkSize = full, int64(len(raw)), ChunkSize
	meta.Chunks = (len(raw) + ChunkSize - 1) / ChunkSize
	if meta.PushedAt.IsZero() {
		meta.PushedAt = time.Now().UTC()
	}

	snap, err := r.Snapshot(ctx)
	if err != nil {
		return meta, fmt.Errorf("pushing model %s@%s: %w", meta.Name, meta.Version, err)
	}
	for _, m := range snap.Models {
		if m.Name == meta.Name && m.Version == meta.Version {
			return m, nil
		}
	}

	recs := make([]*kgo.Record, 0, meta.Chunks)
	for i := 0; i < meta.Chunks; i++ {
		chunk := raw[i*ChunkSize : min((i+1)*ChunkSize, len(raw))]
		recs = append(recs, &kgo.Record{Key: []byte(blobKey(meta.Name, meta.Version, i)), Value: chunk})
	}
	if err := r.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return meta, fmt.Errorf("pushing model %s@%s: writing its %d chunks: %w", meta.Name, meta.Version, meta.Chunks, err)
	}
	v, err := json.Marshal(meta)
	if err != nil {
		return meta, fmt.Errorf("pushing model %s@%s: %w", meta.Name, meta.Version, err)
	}
	rec := &kgo.Record{Key: []byte(modelKey(meta.Name, meta.Version)), Value: v}
	if err := r.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return meta, fmt.Errorf("pushing model %s@%s: writing the model record after its chunks: %w", meta.Name, meta.Version, err)
	}
	return meta, nil
}

// GetModel reads version of name back, checking the chunk count, the size and the
// SHA-256 of the reassembled file. A version that is not stored is ErrModelNotFound; one
// whose chunks are missing or corrupt is ErrModelIncomplete.
func (r *Registry) GetModel(ctx context.Context, name, version string) ([]byte, ModelMeta, error) {
	var (
		meta   ModelMeta
		found  bool
		chunks = map[int][]byte{}
		prefix = "blob/" + name + "/" + version + "/"
		mkey   = modelKey(name, version)
	)
	err := r.scan(ctx, func(rec *kgo.Record) {
		k := string(rec.Key)
		switch {
		case k == mkey:
			var m ModelMeta
			if json.Unmarshal(rec.Value, &m) == nil {
				meta, found = m, true
			}
		case strings.HasPrefix(k, prefix):
			if i, err := strconv.Atoi(k[len(prefix):]); err == nil {
				chunks[i] = rec.Value
			}
		}
	})
	if err != nil {
		return nil, meta, fmt.Errorf("reading model %s@%s: %w", name, version, err)
	}
	if !found {
		return nil, meta, fmt.Errorf("reading model %s@%s: %w", name, version, ErrModelNotFound)
	}
	raw := make([]byte, 0, meta.Bytes)
	for i := 0; i < meta.Chunks; i++ {
		c, ok := chunks[i]
		if !ok {
			return nil, meta, fmt.Errorf("reading model %s@%s: chunk %d of %d is missing: %w (push the file again)",
				name, version, i, meta.Chunks, ErrModelIncomplete)
		}
		raw = append(raw, c...)
	}
	sum := sha256.Sum256(raw)
	if int64(len(raw)) != meta.Bytes || hex.EncodeToString(sum[:]) != meta.SHA256 {
		return nil, meta, fmt.Errorf("reading model %s@%s: reassembled %d bytes with SHA-256 %x, the record says %d bytes %s: %w (push the file again)",
			name, version, len(raw), sum, meta.Bytes, meta.SHA256, ErrModelIncomplete)
	}
	return raw, meta, nil
}

// Snapshot is everything the registry topic said up to one end offset.
type Snapshot struct {
	// Models are the versions whose chunks are all present, by name then push time.
	Models []ModelMeta
	// Activations in log order.
	Activations []Activation
	// Marks in log order.
	Marks []Mark
	// Malformed records, skipped.
	Malformed []Malformed
	// End is the offset after the last record read: Follow from here to see what comes
	// after the snapshot.
	End int64
}

// Snapshot reads the whole topic up to the end offset captured now.
func (r *Registry) Snapshot(ctx context.Context) (Snapshot, error) {
	var (
		s      Snapshot
		models []ModelMeta
		chunks = map[string]bool{}
	)
	end, err := r.endOffset(ctx)
	if err != nil {
		return s, err
	}
	s.End = end
	err = r.scanTo(ctx, end, func(rec *kgo.Record) {
		k := string(rec.Key)
		kind, _, _ := strings.Cut(k, "/")
		var err error
		switch kind {
		case "blob":
			chunks[k] = true
		case "model":
			var m ModelMeta
			if err = json.Unmarshal(rec.Value, &m); err == nil && modelKey(m.Name, m.Version) != k {
				err = errors.New("the key does not match the name and version of the value")
			}
			if err == nil {
				models = append(models, m)
			}
		case "activation":
			var a Activation
			if a, err = decodeActivation(rec); err == nil {
				s.Activations = append(s.Activations, a)
			}
		case "mark":
			var m Mark
			if m, err = decodeMark(rec); err == nil {
				s.Marks = append(s.Marks, m)
			}
		default:
			err = errors.New("unknown record kind")
		}
		if err != nil {
			s.Malformed = append(s.Malformed, Malformed{Offset: rec.Offset, Key: k, Err: err})
		}
	})
	if err != nil {
		return s, err
	}
	seen := map[string]bool{}
	for _, m := range models {
		complete := !seen[modelKey(m.Name, m.Version)]
		for i := 0; complete && i < m.Chunks; i++ {
			complete = chunks[blobKey(m.Name, m.Version, i)]
		}
		if complete {
			seen[modelKey(m.Name, m.Version)] = true
			s.Models = append(s.Models, m)
		}
	}
	sort.SliceStable(s.Models, func(i, j int) bool {
		if s.Models[i].Name != s.Models[j].Name {
			return s.Models[i].Name < s.Models[j].Name
		}
		return s.Models[i].PushedAt.Before(s.Models[j].PushedAt)
	})
	return s, nil
}

// Models lists the stored versions whose chunks are all present, by name then push time.
func (r *Registry) Models(ctx context.Context) ([]ModelMeta, error) {
	s, err := r.Snapshot(ctx)
	return s.Models, err
}

// Activations lists every activation in log order, the order in which they apply.
func (r *Registry) Activations(ctx context.Context) ([]Activation, error) {
	s, err := r.Snapshot(ctx)
	return s.Activations, err
}

// Marks lists every switch marker in log order.
func (r *Registry) Marks(ctx context.Context) ([]Mark, error) {
	s, err := r.Snapshot(ctx)
	return s.Marks, err
}

// Append writes an activation and returns it with its Seq and Offset. At defaults to now
// and Reason to ReasonActivate.
// Seq is the larger of the name's last Seq plus one and At in Unix nanoseconds: two
// writers that append at once would need the same nanosecond to collide on a key, which
// is what would let compaction drop one of them.
func (r *Registry) Append(ctx context.Context, a Activation) (Activation, error) {
	a.Offset = -1
	if err := ValidModelName(a.Name); err != nil {
		return a, fmt.Errorf("appending activation: %w", err)
	}
	switch a.Role {
	case RoleLive, RoleShadow:
		if a.Version == "" {
			return a, fmt.Errorf("appending activation of %s as %s: no version", a.Name, a.Role)
		}
	case RoleShadowOff:
	default:
		return a, fmt.Errorf("appending activation of %s: role %q: want live, shadow or shadow-off", a.Name, a.Role)
	}
	switch a.Reason {
	case "":
		a.Reason = ReasonActivate
	case ReasonActivate, ReasonRollback:
	default:
		return a, fmt.Errorf("appending activation of %s: reason %q: want activate or rollback", a.Name, a.Reason)
	}
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	acts, err := r.Activations(ctx)
	if err != nil {
		return a, fmt.Errorf("appending activation of %s@%s: %w", a.Name, a.Version, err)
	}
	a.Seq = uint64(a.At.UnixNano())
	for _, p := range acts {
		if p.Name == a.Name && p.Seq >= a.Seq {
			a.Seq = p.Seq + 1
		}
	}
	v, err := json.Marshal(a)
	if err != nil {
		return a, fmt.Errorf("appending activation of %s@%s: %w", a.Name, a.Version, err)
	}
	res := r.prod.ProduceSync(ctx, &kgo.Record{Key: []byte(activationKey(a.Name, a.Seq)), Value: v})
	rec, err := res.First()
	if err != nil {
		return a, fmt.Errorf("appending activation of %s@%s: %w", a.Name, a.Version, err)
	}
	a.Offset = rec.Offset
	return a, nil
}

// PutMarks writes switch markers and waits for their acknowledgement.
func (r *Registry) PutMarks(ctx context.Context, marks ...Mark) error {
	recs := make([]*kgo.Record, 0, len(marks))
	for _, m := range marks {
		k, v, err := EncodeMark(m)
		if err != nil {
			return err
		}
		recs = append(recs, &kgo.Record{Key: k, Value: v})
	}
	if err := r.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing %d switch markers: %w", len(marks), err)
	}
	return nil
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// From is the first offset to read: 0 reads from the start, Snapshot.End continues
	// after a snapshot.
	From int64
	// CaughtUp, when set, is called once, after fn has seen every activation written
	// before Follow was called: an instance starts scoring only then, with the versions
	// the log made live.
	CaughtUp func()
	// Malformed, when set, is told about activation records that are skipped.
	Malformed func(Malformed)
}

// Follow reads the activations from o.From on and calls fn with each, in log order, from
// Follow's goroutine, until ctx ends (it returns ctx's error), fn returns an error
// (returned wrapped) or a fetch fails for good (the client retries transient errors
// itself); a caller that must keep following calls it again from the last Offset + 1. It reads live: a new activation reaches fn as soon as the broker
// answers the pending fetch (it answers when data arrives; an idle fetch waits 500 ms).
func (r *Registry) Follow(ctx context.Context, o FollowOptions, fn func(Activation) error) error {
	end, err := r.endOffset(ctx)
	if err != nil {
		return fmt.Errorf("following activations: %w", err)
	}
	caughtUp := func() {
		if o.CaughtUp != nil {
			o.CaughtUp()
			o.CaughtUp = nil
		}
	}
	if end <= o.From {
		caughtUp()
	}
	cl, err := r.consumer(o.From)
	if err != nil {
		return fmt.Errorf("following activations: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("following activations: %w", err)
		}
		var ferr error
		fs.EachRecord(func(rec *kgo.Record) {
			if ferr != nil {
				return
			}
			if !rec.Attrs.IsControl() && bytes.HasPrefix(rec.Key, []byte("activation/")) {
				a, err := decodeActivation(rec)
				switch {
				case err != nil && o.Malformed != nil:
					o.Malformed(Malformed{Offset: rec.Offset, Key: string(rec.Key), Err: err})
				case err == nil:
					if err := fn(a); err != nil {
						ferr = fmt.Errorf("applying activation of %s@%s at offset %d: %w", a.Name, a.Version, a.Offset, err)
						return
					}
				}
			}
			if rec.Offset >= end-1 {
				caughtUp()
			}
		})
		if ferr != nil {
			return ferr
		}
	}
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

// endOffset is the registry partition's last stable offset: what a read_committed
// reader can reach now (markers may be written inside the operator's transactions).
func (r *Registry) endOffset(ctx context.Context) (int64, error) {
	ends, err := r.adm.ListCommittedOffsets(ctx, r.topic)
	if err != nil {
		return 0, fmt.Errorf("listing the end offset of %s: %w", r.topic, err)
	}
	if err := ends.Error(); err != nil {
		return 0, fmt.Errorf("listing the end offset of %s: %w", r.topic, err)
	}
	e, ok := ends.Lookup(r.topic, 0)
	if !ok {
		return 0, fmt.Errorf("listing the end offset of %s: no partition 0", r.topic)
	}
	return e.Offset, nil
}

func (r *Registry) consumer(from int64) (*kgo.Client, error) {
	opts, err := r.cc.opts("registry-reader")
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {0: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records take offsets too; keeping them lets a scan reach an end
		// offset that sits just after a transaction marker.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(32<<20),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("creating registry reader: %w", err)
	}
	return cl, nil
}

// scan calls fn with every data record up to the end offset captured now.
func (r *Registry) scan(ctx context.Context, fn func(*kgo.Record)) error {
	end, err := r.endOffset(ctx)
	if err != nil {
		return err
	}
	return r.scanTo(ctx, end, fn)
}

func (r *Registry) scanTo(ctx context.Context, end int64, fn func(*kgo.Record)) error {
	if end <= 0 {
		return nil
	}
	cl, err := r.consumer(0)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s up to offset %d: %w", r.topic, end, err)
		}
		if err := fetchErr(fs); err != nil {
			return fmt.Errorf("reading %s: %w", r.topic, err)
		}
		done := false
		fs.EachRecord(func(rec *kgo.Record) {
			if done || rec.Offset >= end {
				done = true
				return
			}
			if !rec.Attrs.IsControl() {
				fn(rec)
			}
			done = rec.Offset == end-1
		})
		if done {
			return nil
		}
	}
}

func fetchErr(fs kgo.Fetches) error {
	if fs.IsClientClosed() {
		return errors.New("the reader was closed")
	}
	var ferr error
	fs.EachError(func(t string, p int32, err error) {
		if ferr == nil {
			ferr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
		}
	})
	return ferr
}
