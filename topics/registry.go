package topics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

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
		return nil, permanent{fmt.Errorf("opening model registry: topic %s has %d partitions; the registry needs exactly one "+
			"so that offsets order every activation: delete it or name another topic", o.Topic, n)}
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
	case RoleShadowOff, RoleServe, RoleExperiment, RoleExperimentStop:
		if err := checkRouting(a); err != nil {
			return a, err
		}
	default:
		return a, fmt.Errorf("appending activation of %s: role %q: want live, shadow, shadow-off, serve, experiment or experiment-stop", a.Name, a.Role)
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
