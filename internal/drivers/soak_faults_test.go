//go:build integration

package drivers

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/streamscore/streamscore/internal/config"
)

const (
	// soakFollow is how long a fault's recovery is followed before the soak moves on. It
	// bounds the wait, not a verdict: a partition still stalled then is reported as such,
	// and whatever it lost shows in the final count.
	soakFollow = 2 * time.Minute
	// soakLiveness bounds the waits for something that must happen for the soak to go on
	// (a restarted instance joining and scoring, the cluster back in sync, the last
	// outputs): passing it means the fleet is stuck, not slow.
	soakLiveness = 4 * time.Minute
)

// soak is one phase of the fault soak in progress: the cluster, the fleet of `streamscore
// run` processes, the outputs followed, the faults done and their recoveries.
type soak struct {
	t      *testing.T
	seed   uint64
	k      *kafkaCluster
	c      *config.Config
	f      *fleet
	flow   *flow
	rng    *rand.Rand
	start  time.Time
	names  []string       // the fleet's instances
	paused map[int32]bool // nodes paused and not resumed yet
	faults []*recovery
}

// fatalf fails the phase with the seed that replays it.
func (s *soak) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("soak seed %d (replay: STREAMSCORE_SOAK_SEED=%d): %s", s.seed, s.seed, fmt.Sprintf(format, args...))
}

// note logs a step with the time since the phase began and the instances' log clock.
func (s *soak) note(format string, args ...any) {
	s.t.Logf("%6.1fs (ts %.3f) %s", time.Since(s.start).Seconds(), float64(time.Now().UnixMilli())/1000, fmt.Sprintf(format, args...))
}

// panics lists the lines of instance name's log that start a Go panic or fatal error.
func (s *soak) panics(name string) []string {
	fh, err := os.Open(s.f.logs[name])
	if err != nil {
		return []string{fmt.Sprintf("(log of %s unreadable: %v)", name, err)}
	}
	defer fh.Close()
	var out []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		out = append(out, fmt.Sprintf("(reading the log of %s: %v)", name, err))
	}
	return out
}

// check fails the phase when an instance the soak did not kill has exited.
func (s *soak) check() {
	s.t.Helper()
	for name, in := range s.f.running {
		select {
		case err := <-in.done:
			delete(s.f.running, name)
			s.fatalf("instance %s exited by itself: %v; panics in its log: %q (its log is printed below)", name, err, s.panics(name))
		default:
		}
	}
}

// waitFor polls cond until it holds, checking the instances meanwhile; it fails the phase
// after limit.
func (s *soak) waitFor(what string, limit time.Duration, cond func() bool) time.Duration {
	s.t.Helper()
	start := time.Now()
	for !cond() {
		s.check()
		if time.Since(start) > limit {
			s.fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(100 * time.Millisecond) // polling a condition with a deadline
	}
	return time.Since(start)
}

// pace lets d pass in the fault schedule, checking the instances meanwhile.
func (s *soak) pace(d time.Duration) {
	s.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); {
		s.check()
		time.Sleep(min(100*time.Millisecond, time.Until(end))) // pacing the schedule, not a barrier
	}
}

func (s *soak) awaitInSync() {
	s.t.Helper()
	s.waitFor("every partition of the cluster in sync", soakLiveness, func() bool {
		lag, err := s.k.notInSync()
		return err == nil && len(lag) == 0
	})
}

// awaitTopics waits until every node's own metadata lists a leader for every partition
// of the named new topics: an instance that asks a node which has not heard of its input
// topic yet (one restarted by an earlier phase, catching up) exits, as it should for a
// misnamed topic.
func (s *soak) awaitTopics(names ...string) {
	s.t.Helper()
	s.waitFor(fmt.Sprintf("every node's metadata lists topics %v", names), soakLiveness, func() bool {
		for id := 1; id <= s.k.nodes; id++ {
			if !s.knows(int32(id), names) {
				return false
			}
		}
		return true
	})
}

// knows says whether node id's metadata has a leader for every partition of the topics.
func (s *soak) knows(id int32, names []string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, s.k.cl.Broker(int(id)))
	if err != nil || len(resp.Topics) != len(names) {
		return false
	}
	for _, td := range resp.Topics {
		if td.ErrorCode != 0 || len(td.Partitions) != soakPartitions {
			return false
		}
		for _, pd := range td.Partitions {
			if pd.ErrorCode != 0 || pd.Leader < 0 {
				return false
			}
		}
	}
	return true
}

// endOffsets are the input partitions' end offsets now.
func (s *soak) endOffsets() map[int32]int64 {
	s.t.Helper()
	out := map[int32]int64{}
	s.waitFor("reading the input's end offsets", soakLiveness, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ends, err := s.k.adm.ListEndOffsets(ctx, s.c.Topics.Input[0])
		if err != nil || ends.Error() != nil {
			return false
		}
		ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return len(out) > 0
	})
	return out
}

// watch reads the end offsets and starts timing a fault that happens next.
func (s *soak) watch(kind, target string, only []int32) *recovery {
	s.t.Helper()
	marks := s.endOffsets()
	if only != nil {
		kept := map[int32]int64{}
		for _, p := range only {
			kept[p] = marks[p]
		}
		marks = kept
	}
	r := s.flow.watch(kind, target, marks)
	s.faults = append(s.faults, r)
	return r
}

// follow waits until r's partitions all flow again, or soakFollow has passed, and logs
// the recovery.
func (s *soak) follow(r *recovery) {
	s.t.Helper()
	for start := time.Now(); !s.flow.recovered(r) && time.Since(start) < soakFollow; {
		s.check()
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
	s.note("recovery: %s", s.flow.describe(r))
}

// member is an instance's place in the group: its member id and the input partitions it holds.
type member struct {
	id    string
	parts []int32
}

// group maps each instance holding input partitions to its member, while the group is
// Stable (nil otherwise).
func (s *soak) group() map[string]member {
	g, ok := s.k.describeGroup(s.c.Group)
	if !ok {
		return nil
	}
	out := map[string]member{}
	for _, m := range g.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok || m.InstanceID == nil {
			continue
		}
		for _, tp := range ca.Topics {
			if tp.Topic == s.c.Topics.Input[0] && len(tp.Partitions) > 0 {
				out[*m.InstanceID] = member{id: m.MemberID, parts: tp.Partitions}
			}
		}
	}
	return out
}

// awaitGroup waits until every instance of the fleet holds input partitions in a stable
// group, none with the member id replaced names (the process it was before a restart).
func (s *soak) awaitGroup(replaced map[string]string) map[string]member {
	s.t.Helper()
	var g map[string]member
	s.waitFor(fmt.Sprintf("the group stable with %v holding partitions", s.names), soakLiveness, func() bool {
		g = s.group()
		for _, n := range s.names {
			if m, ok := g[n]; !ok || m.id == replaced[n] {
				return false
			}
		}
		return len(g) == len(s.names)
	})
	return g
}

// overlap picks, half the time, an instance to SIGKILL and restart while a broker fault
// lasts (issue 23's scenario: an instance restarting while a node is down or hung), with
// the group as it is before the fault; "" otherwise.
func (s *soak) overlap() (string, map[string]member) {
	s.t.Helper()
	if s.rng.IntN(2) == 0 {
		return "", nil
	}
	return s.names[s.rng.IntN(len(s.names))], s.awaitGroup(nil)
}

// killBroker SIGKILLs node id, follows the recovery, starts the node again after a random
// while and follows that too, then waits until every partition is in sync again. With
// overlap, an instance is SIGKILLed and restarted up to 3 s after the node's kill.
func (s *soak) killBroker(id int32) {
	s.t.Helper()
	victim, old := s.overlap()
	target := fmt.Sprintf("node %d", id)
	if victim != "" {
		target += fmt.Sprintf(" (+ SIGKILL and restart of %s while down)", victim)
	}
	r := s.watch("broker kill", target, nil)
	s.note("SIGKILL broker node %d", id)
	s.k.killNode(id)
	if victim != "" {
		s.pace(time.Duration(s.rng.IntN(3000)) * time.Millisecond)
		s.restartInstance(victim)
	}
	s.follow(r)
	s.pace(time.Duration(s.rng.IntN(3000)) * time.Millisecond)
	s.note("starting broker node %d", id)
	s.k.startNode(id)
	s.follow(s.watch("broker restart", fmt.Sprintf("node %d", id), nil))
	if victim != "" {
		s.awaitResumed(victim, old[victim].id)
	}
	s.awaitInSync()
}

// pauseBroker SIGSTOPs node id (a hung broker) for 2 to 20 seconds, SIGCONTs it, follows
// the recovery from the pause and waits until every partition is in sync again. With
// overlap, an instance is SIGKILLed and restarted at a random moment of the pause.
func (s *soak) pauseBroker(id int32) {
	s.t.Helper()
	victim, old := s.overlap()
	d := 2*time.Second + time.Duration(s.rng.Int64N(int64(18*time.Second)))
	target := fmt.Sprintf("node %d (%.1fs)", id, d.Seconds())
	if victim != "" {
		target += fmt.Sprintf(" (+ SIGKILL and restart of %s while paused)", victim)
	}
	r := s.watch("broker pause", target, nil)
	s.note("SIGSTOP broker node %d for %.1fs", id, d.Seconds())
	s.paused[id] = true // before: a pause that half-failed still gets a resume
	if err := s.k.kafkaSh("pause-node", id); err != nil {
		s.fatalf("%v", err)
	}
	end := time.Now().Add(d)
	if victim != "" {
		s.pace(time.Duration(s.rng.Int64N(int64(d / 2))))
		s.restartInstance(victim)
	}
	s.pace(time.Until(end))
	if err := s.k.kafkaSh("resume-node", id); err != nil {
		s.fatalf("%v", err)
	}
	delete(s.paused, id)
	s.note("SIGCONT broker node %d", id)
	s.follow(r)
	if victim != "" {
		s.awaitResumed(victim, old[victim].id)
	}
	s.awaitInSync()
}

// killInstance SIGKILLs instance name, starts it again after up to two seconds, follows
// the fleet's recovery, and requires the new process to score again.
func (s *soak) killInstance(name string) {
	s.t.Helper()
	old := s.awaitGroup(nil)
	r := s.watch("instance kill", name, nil)
	s.restartInstance(name)
	s.follow(r)
	s.awaitResumed(name, old[name].id)
}

// restartInstance SIGKILLs instance name and starts it again up to two seconds later.
func (s *soak) restartInstance(name string) {
	s.t.Helper()
	s.note("SIGKILL instance %s", name)
	s.f.kill(name)
	s.pace(time.Duration(s.rng.IntN(2000)) * time.Millisecond)
	s.f.start(name)
}

// awaitResumed requires the restarted instance name to score again: the new process (not
// the member oldID) joins the group and takes partitions, and predictions for events
// written to them after it joined are read back.
func (s *soak) awaitResumed(name, oldID string) {
	s.t.Helper()
	g := s.awaitGroup(map[string]string{name: oldID})
	back := s.watch("restarted instance scores", name+" (from its rejoin)", g[name].parts)
	s.waitFor(fmt.Sprintf("restarted instance %s scores partitions %v again", name, g[name].parts), soakLiveness,
		func() bool { return s.flow.recovered(back) })
	s.note("instance %s scores again: %s", name, s.flow.describe(back))
}

// stopAll sends SIGTERM to every instance and requires each to exit cleanly: a graceful
// stop drains and commits.
func (s *soak) stopAll() {
	s.t.Helper()
	for _, name := range s.names {
		s.f.mark(name, "SIGTERM")
		if err := s.f.running[name].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			s.fatalf("SIGTERM to %s: %v", name, err)
		}
	}
	for _, name := range s.names {
		select {
		case err := <-s.f.running[name].done:
			delete(s.f.running, name)
			if err != nil {
				s.fatalf("instance %s did not exit cleanly on SIGTERM: %v; panics in its log: %q", name, err, s.panics(name))
			}
		case <-time.After(2 * time.Minute):
			s.fatalf("instance %s did not exit within 2 minutes of SIGTERM", name)
		}
	}
}
