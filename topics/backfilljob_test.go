//go:build !integration

package topics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamscore/streamscore/pipeline/record"
)

// produceN writes n records to topic, round robin over its partitions.
func produceN(t *testing.T, cc ClientConfig, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cc.Brokers...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Value: []byte(fmt.Sprint(i))}
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestBackfillJobRecordIsAgreedOnce starts four processes' job look-ups at once: they must
// all get the same record (one of them its writer), and a later look-up, after the input
// grew, must get that record too, its end offsets unchanged.
func TestBackfillJobRecordIsAgreedOnce(t *testing.T) {
	b, err := NewEmbeddedBroker(3, "in")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cc := ClientConfig{Brokers: b.Addrs()}
	produceN(t, cc, "in", 30)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	want := BackfillJob{Group: "job1", Topics: []string{"in"}, From: "earliest", Out: "topic:out"}

	jobs := make([]*BackfillJob, 4)
	created := make([]bool, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs[i], created[i], errs[i] = OpenBackfillJob(ctx, cc, "jobs", 1, want)
		}()
	}
	wg.Wait()
	writers := 0
	for i := range jobs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if created[i] {
			writers++
		}
		if !jobs[i].Created.Equal(jobs[0].Created) || fmt.Sprint(jobs[i].Partitions) != fmt.Sprint(jobs[0].Partitions) {
			t.Fatalf("process %d got job %+v, process 0 %+v", i, jobs[i], jobs[0])
		}
	}
	if writers != 1 {
		t.Fatalf("%d processes say they created the job, want 1", writers)
	}
	if got := jobs[0].Total(); got != 30 {
		t.Fatalf("job covers %d offsets, want the 30 written", got)
	}

	produceN(t, cc, "in", 30) // the input grows: the job must not
	later, isNew, err := OpenBackfillJob(ctx, cc, "jobs", 1, want)
	if err != nil {
		t.Fatal(err)
	}
	if isNew || later.Total() != 30 || !later.Created.Equal(jobs[0].Created) {
		t.Fatalf("a later process got a new job (new %v, %d offsets): %+v", isNew, later.Total(), later)
	}
	other := want
	other.Topics = []string{"in", "more"}
	if err := later.Check(other); err == nil || !strings.Contains(err.Error(), "input topics") {
		t.Fatalf("a process with other topics: %v, want an error naming the input topics", err)
	}
	if err := later.Check(want); err != nil {
		t.Fatal(err)
	}
}

// TestBoundedGroupStopsAtTheJobsEnd runs one process of a job on the embedded broker over
// an input that grows after the job began: it must score exactly the job's offsets, then
// see the job complete and return io.EOF.
func TestBoundedGroupStopsAtTheJobsEnd(t *testing.T) {
	b, err := NewEmbeddedBroker(3, "in", "out")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cc := ClientConfig{Brokers: b.Addrs()}
	produceN(t, cc, "in", 60)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	job, _, err := OpenBackfillJob(ctx, cc, "jobs", 1, BackfillJob{Group: "job2", Topics: []string{"in"}, From: "earliest", Out: "topic:out"})
	if err != nil {
		t.Fatal(err)
	}
	produceN(t, cc, "in", 60) // past the job's end
	bg, err := NewBoundedGroup(cc, TransactOptions{GroupOptions: GroupOptions{Group: "job2", Topics: []string{"in"}}, TransactionalID: "job2-a"}, job)
	if err != nil {
		t.Fatal(err)
	}
	defer bg.Close()
	bg.Check = 100 * time.Millisecond
	ends := job.ranges()
	seen := map[string]bool{}
	for {
		recs, err := bg.Fetch(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Offset >= ends[r.Topic][r.Partition].End {
				t.Fatalf("scored %s/%d@%d, past the job's end %d", r.Topic, r.Partition, r.Offset, ends[r.Topic][r.Partition].End)
			}
			k := fmt.Sprintf("%d@%d", r.Partition, r.Offset)
			if seen[k] {
				t.Fatalf("scored %s twice", k)
			}
			seen[k] = true
			bg.Produce(&record.Output{Topic: "out", Value: r.Value}, nil)
		}
		if err := bg.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := bg.EndBatch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 60 || bg.Done() != 60 {
		t.Fatalf("scored %d records, job progress %d; want the job's 60", len(seen), bg.Done())
	}
}
