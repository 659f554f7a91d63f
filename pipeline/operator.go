// Package pipeline is the operator that every driver runs: decode → features → batcher →
// scorer → route, with dead letters for bad input and commit tracking that never commits
// an input offset before every output it caused is acknowledged. It knows nothing of
// which driver runs it: live scoring, backfill and the demo differ only in the Source and
// Sink they pass in.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/streamscore/streamscore/pipeline/record"
	"github.com/streamscore/streamscore/scorer"
)

// The record types are defined in package record, so that topics can use them without
// importing the operator; these aliases keep the operator's API in its own words.

// Record is one input record.
type Record = record.Record

// Header is a record header.
type Header = record.Header

// Output is one record for a sink; it may keep the slices until it acknowledges.
type Output = record.Output

// Acker receives one output's acknowledgement (see AckProducer).
type Acker = record.Acker

// AckProducer is the optional, allocation-free form of Sink.Produce: the operator calls
// it instead when its sink has it.
type AckProducer = record.AckProducer

// Source yields input records. Fetch blocks until it has records; a bounded source returns
// io.EOF after its last record. Fetch is only called from one goroutine.
type Source interface {
	Fetch(ctx context.Context) ([]Record, error)
}

// Committer is a Source that stores consumed positions (a consumer group).
type Committer interface {
	Commit(ctx context.Context, offsets []Offset) error
}

// GroupSource is a Source whose partitions come and go with group rebalances.
type GroupSource interface {
	Source
	Committer
	// SetRebalanceHandlers installs the callbacks run when partitions are revoked (a
	// commit is still possible) or lost (it is not). Called once, before the first Fetch.
	SetRebalanceHandlers(revoked func(context.Context, []TopicPartition), lost func([]TopicPartition))
	// AllowRebalance is called after the records of each Fetch are registered for commit
	// tracking: a rebalance held back until then can proceed, and the revoke handler will
	// see those records.
	AllowRebalance()
}

// Transactional is a Source that is also the Sink and writes each fetch's outputs and its
// consumed offsets in one transaction (exactly-once). The operator finishes every record
// of a fetch, then calls EndBatch; false means the transaction was aborted (a rebalance)
// and the records will be fetched again. When the operator stops with a transaction open
// (an output failed, the drain timed out), it calls AbortBatch instead, once its fetch
// loop and batcher have stopped producing: nothing of that transaction may commit, and the
// source must read its records again from the committed offsets. AbortBatch with no
// transaction open does nothing; it must return within a bound of its own, even when ctx
// is already canceled.
type Transactional interface {
	Source
	Sink
	EndBatch(ctx context.Context) (committed bool, err error)
	AbortBatch(ctx context.Context) error
}

// Sink writes outputs. Produce must call ack exactly once, from any goroutine, when the
// output is durably written (nil) or definitely failed. Produce may block to apply
// backpressure. Flush waits until every produced output is acknowledged.
type Sink interface {
	Produce(out *Output, ack func(error))
	Flush(ctx context.Context) error
}

// Scorer is the model, as the operator sees it. *scorer.Model implements it.
type Scorer interface {
	Score(features []float32, n int, out []float32, scratch []float32) ([]float32, error)
	NumFeatures() int
	Name() string
	Version() string
}

// Topics are the output topic names.
type Topics struct {
	Predictions string
	Alerts      string // empty: no alerts
	DeadLetter  string
	Shadow      string // predictions of the shadow version (ModelChoice.Shadow); empty: none
}

// Config is everything an Operator needs. Schema and Features must be compiled.
type Config struct {
	Schema   *Schema
	Features *FeatureSpec
	// Model scores every batch, unless Models is set.
	Model Scorer
	// Models chooses the versions of each batch (live swaps, shadows, replays by
	// history); nil: Model.
	Models Models
	// Marks, when set, writes a switch marker whenever a partition's version changes.
	Marks     *Marks
	Threshold float32
	Topics    Topics
	Batch     scorer.BatcherConfig
	// CommitInterval is how often acknowledged positions are committed (default 1s).
	CommitInterval time.Duration
	// DrainTimeout bounds the wait for in-flight outputs on shutdown and on partition
	// revocation (default 10s).
	DrainTimeout time.Duration
	// TransactionTimeout bounds, in exactly-once, the wait of one transaction for its
	// outputs' acknowledgements (default 30s: the session's transaction timeout, past which
	// the coordinator aborts the transaction anyway). Not DrainTimeout: a partition
	// leader's failover stalls the acks for 10 s or more, and a transaction must ride that
	// out rather than stop the process (the cluster fault tests kill leaders).
	TransactionTimeout time.Duration
	// MeasureLatency records event-to-prediction latency from the input record timestamps
	// (live scoring; meaningless for backfills of old data).
	MeasureLatency bool
	Metrics        *Metrics
	Stats          *Stats
	Logger         *zap.Logger
	// Now stamps scored_at. It never feeds a feature or a score.
	Now func() time.Time
	// History rebuilds the window state of a partition met for the first time (or fetched
	// again) from its log. Nil: state starts empty at the first record seen, which is
	// exact only when that is the partition's first record.
	History History
	// Feedback is the feedback topic that feedback windows join; required when the
	// feature spec has any.
	Feedback FeedbackSource
	// Tables are the reference tables that lookup features read, by table name; required
	// for every table the feature spec's lookups name.
	Tables map[string]FeedbackSource
	// TableDeadLetters dead-letters the table rows that fail validation to their table's
	// dead_letter topic (live scoring; backfills and exports only count them).
	TableDeadLetters bool
	// IncludeFeatures writes each prediction's feature vector into it ("features").
	IncludeFeatures bool
	// Drift, when set, counts every scored row into drift windows (DriftConfig).
	Drift *DriftConfig
	// IDField names the schema field whose value every output carries as "id" (the
	// feedback's id_field); empty or not in the schema: "id" is null.
	IDField string
	// RouteFields keeps each row's numeric event fields for Route.Pick (segment rules).
	RouteFields bool
	// Explain adds reason codes to the predictions and alerts of alerting rows.
	Explain ExplainConfig
}

// Operator scores records from a Source into a Sink. Create it with New, run it once.
type Operator struct {
	cfg    Config
	src    Source
	sink   Sink
	acks   AckProducer // sink, when it has ProduceAck; nil otherwise
	log    *zap.Logger
	ex     explainState // reason codes; batcher goroutine only
	m      *Metrics
	st     *Stats
	tr     *tracker
	models Models
	vers   versions
	nFeat  int
	batch  *scorer.Batcher[row]
	state  *windowState // nil without window features
	commit sync.Mutex   // serialises commits with revocations

	out map[string]prometheus.Counter // records_out by output topic, resolved once: Inc runs per ack

	failOnce     sync.Once
	logWriteOnce sync.Once     // the first failed write is logged; the others only counted
	failErr      error         // written once, before failed is closed; read it through failure
	failed       chan struct{} // closed on the first fatal error

	partVer partVersions // the version that last scored each partition (markers)
	drift   *driftState  // nil: drift monitoring off

	// scratch of the batcher goroutine
	mat    []float32
	scores []float32
	shadow []float32
	raw    []float32
	runs   []run
	rt     routeScratch // routing.go
}

// row is one row for the batcher: a fetched record, or (req set) row idx of a synchronous
// request, which has no record and whose score goes back to the request (infer.go).
type row struct {
	h         handle
	rec       *Record
	eventTime time.Time
	feat      []float32
	req       *request
	idx       int32
	ready     int64 // mono when its features were complete (the queue stage starts); 0: a request
	ev        rowEvent
}

// New validates cfg and prepares an operator.
func New(cfg Config, src Source, sink Sink) (*Operator, error) {
	if err := cfg.validate(src, sink); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	o := &Operator{
		cfg: cfg, src: src, sink: sink, log: cfg.Logger, m: cfg.Metrics, st: cfg.Stats,
		models: cfg.Models, nFeat: cfg.Features.Len(), failed: make(chan struct{}),
	}
	if o.models == nil {
		o.models = staticModels{cfg.Model}
	}
	o.acks, _ = sink.(AckProducer)
	o.rt.init(&cfg)
	o.tr = newTracker(o.recordDone)
	o.out = map[string]prometheus.Counter{}
	topics := []string{cfg.Topics.Predictions, cfg.Topics.Alerts, cfg.Topics.DeadLetter, cfg.Topics.Shadow}
	if cfg.Marks != nil {
		topics = append(topics, cfg.Marks.Topic)
	}
	if cfg.Drift != nil {
		topics = append(topics, cfg.Drift.Topic)
		o.drift = newDriftState(*cfg.Drift, cfg.Features.Names(), cfg.Metrics.drift, cfg.Logger)
	}
	for _, t := range topics {
		if t != "" {
			o.out[t] = cfg.Metrics.recordsOut.WithLabelValues(t)
		}
	}
	b, err := scorer.NewBatcher(cfg.Batch, o.flush)
	if err != nil {
		return nil, err
	}
	o.batch = b
	if cfg.Features.HasWindows() || cfg.Features.HasLookups() {
		if o.state, err = newWindowState(cfg.Features, cfg.Schema, cfg.History, cfg.Feedback, cfg.Metrics, cfg.Logger); err != nil {
			return nil, err
		}
		if err := o.wireTables(); err != nil {
			return nil, err
		}
	}
	if gs, ok := src.(GroupSource); ok {
		gs.SetRebalanceHandlers(o.revoked, o.lost)
	}
	return o, nil
}

func (cfg *Config) validate(src Source, sink Sink) error {
	switch {
	case cfg.Schema == nil || cfg.Schema.index == nil:
		return errors.New("operator: schema missing or not compiled")
	case cfg.Features == nil:
		return errors.New("operator: no feature spec")
	case cfg.Model == nil && cfg.Models == nil:
		return errors.New("operator: no model")
	case cfg.Marks != nil && (cfg.Marks.Topic == "" || cfg.Marks.Encode == nil):
		return errors.New("operator: switch markers need a topic and an encoder")
	case cfg.Drift != nil && cfg.Drift.validate() != nil:
		return cfg.Drift.validate()
	case cfg.Topics.Predictions == "" || cfg.Topics.DeadLetter == "":
		return errors.New("operator: predictions and dead-letter topics are required")
	case src == nil || sink == nil:
		return errors.New("operator: source and sink are required")
	}
	m := cfg.Model
	if cfg.Models != nil {
		m = cfg.Models.Choose().Live
	}
	if m == nil {
		return errors.New("operator: the model choice has no live model")
	}
	if cfg.Features.Len() != m.NumFeatures() {
		return fmt.Errorf("feature spec has %d features %v, but model %s takes %d inputs: make the spec match the model",
			cfg.Features.Len(), cfg.Features.Names(), m.Name(), m.NumFeatures())
	}
	return nil
}

func (cfg *Config) setDefaults() {
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 10 * time.Second
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = 30 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Stats == nil {
		cfg.Stats = &Stats{}
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
}

func (o *Operator) recordDone(ts time.Time, handed int64) {
	o.st.Done.Add(1)
	if handed != 0 {
		o.m.stages.observe(StageAck, mono()-handed)
	}
	if o.cfg.MeasureLatency {
		d := o.cfg.Now().Sub(ts)
		o.st.Latency.Observe(d)
		o.m.latency.Observe(d.Seconds())
	}
}

// fail records the first fatal error and stops the operator. An ack may call it from any
// goroutine, even after Run returned.
func (o *Operator) fail(err error) {
	o.failOnce.Do(func() {
		o.failErr = err
		close(o.failed)
	})
}

// failure returns the first fatal error, or nil. It reads failErr only after seeing failed
// closed, which orders the read after the write: while failed is open, a late ack may be
// writing failErr at any moment.
func (o *Operator) failure() error {
	select {
	case <-o.failed:
		return o.failErr
	default:
		return nil
	}
}

// Run scores until ctx is canceled or a bounded source is exhausted, then drains: every
// record already fetched is scored, every output acknowledged and the final positions
// committed, within DrainTimeout. It returns nil after a clean drain, and an error when an
// output could not be written or the drain timed out. Run may be called once.
//
// A failed write stops the operator: Run stops fetching, drains what it can, commits only
// the positions below the first input record with an output not acknowledged (in
// exactly-once, it aborts the open transaction instead), and returns. Its error names the
// output topic and the input record (topic/partition@offset), and wraps the sink's error
// with %w: where the sink is Kafka that is a *record.WriteError, and
// record.IsTransient(err) tells the driver whether waiting can help (a leader or
// coordinator moving, a fenced producer after a rebalance) or a setting must change
// (WriteError.Fix). Nothing is lost either way, provided the records are read again from
// the committed positions: a driver that restarts after a transient error starts a new
// Operator on a source that resumes there (a new group member does; the old source has
// fetched past them), and one that exits leaves them for the next start. Each failed write counts in
// streamscore_output_write_errors_total{topic,class}; the first is logged (error level with
// its fix when permanent, warning when transient).
func (o *Operator) Run(ctx context.Context) error {
	// work outlives ctx so that fetched records are finished after a shutdown request; it
	// ends on a fatal error or when the drain gives up.
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	go func() {
		select {
		case <-o.failed:
			cancelWork()
		case <-work.Done():
		}
	}()

	fetchCtx, stopFetch := context.WithCancel(ctx)
	defer stopFetch()
	go func() {
		select {
		case <-o.failed:
			stopFetch()
		case <-fetchCtx.Done():
		}
	}()

	var g errgroup.Group
	g.Go(func() error {
		defer o.batch.CloseInput()
		return o.fetchLoop(fetchCtx, work)
	})
	g.Go(func() error {
		err := o.batch.Run(work)
		if err != nil {
			o.fail(err)
		}
		return err
	})
	commitDone := make(chan struct{})
	stopCommits := make(chan struct{})
	if _, ok := o.src.(Committer); ok {
		go func() {
			defer close(commitDone)
			o.commitLoop(work, stopCommits)
		}()
	} else {
		close(commitDone)
	}

	runErr := g.Wait()
	o.abortOpenTransaction(runErr)
	// Everything fetched has been handed to the sink (or we failed). Wait for the acks.
	drainCtx, cancelDrain := context.WithTimeout(work, o.cfg.DrainTimeout)
	defer cancelDrain()
	flushErr := o.sink.Flush(drainCtx)
	if flushErr == nil {
		flushErr = o.waitDrained(drainCtx)
	}
	close(stopCommits)
	<-commitDone
	commitErr := o.commitNow(drainCtx, nil)

	if err := o.failure(); err != nil {
		return err
	}
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if flushErr != nil {
		return fmt.Errorf("draining outputs: %w", flushErr)
	}
	if commitErr != nil {
		return fmt.Errorf("final commit: %w", commitErr)
	}
	return nil
}

// abortOpenTransaction aborts, in exactly-once, the transaction that a failure left open:
// its outputs are not all written, so neither they nor its offsets may commit. It runs
// after the fetch loop and the batcher stopped, so nothing produces meanwhile.
func (o *Operator) abortOpenTransaction(runErr error) {
	tx, ok := o.src.(Transactional)
	if !ok || o.failure() == nil && (runErr == nil || errors.Is(runErr, context.Canceled)) {
		return
	}
	if err := tx.AbortBatch(context.Background()); err != nil {
		o.log.Warn("aborting the open transaction after a failure; its coordinator aborts it after the transaction timeout",
			zap.Error(err))
	}
}

// waitDrained returns once every record begun so far is done. It waits on each partition's
// drained channel rather than polling: exactly-once ends every fetch's transaction here,
// so a polling interval would add to the latency of every fetch. The caller begins no
// records meanwhile (the fetch loop, or Run after it stopped).
func (o *Operator) waitDrained(ctx context.Context) error {
	for _, ch := range o.tr.drainedAll() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d records still waiting for acknowledgements: %w", o.tr.pending(), ctx.Err())
		case <-ch:
		}
	}
	return nil
}
