//go:build integration

package topics

import (
	"context"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/testenv"
)

// TestRealBrokerIsApacheKafkaKRaft proves the integration tests talk to Apache Kafka in
// KRaft mode: it answers DescribeQuorum on __cluster_metadata with a leader and finalizes
// the metadata.version and kraft.version features. The embedded kfake broker does not,
// which the second half checks, so this test cannot pass against the fake.
func TestRealBrokerIsApacheKafkaKRaft(t *testing.T) {
	addrs := testenv.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm, err := NewAdmin(ClientConfig{Brokers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	bi, err := adm.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster %s: KRaft=%v quorum leader %d, features %v", bi.ClusterID, bi.KRaft, bi.QuorumLeader, bi.Features)
	if !bi.KRaft || bi.QuorumLeader < 0 {
		t.Fatalf("broker at %s does not run a KRaft quorum: %+v", addrs, bi)
	}
	if bi.Features["metadata.version"] <= 0 {
		t.Fatalf("no finalized metadata.version feature: %v", bi.Features)
	}
	if _, ok := bi.Features["kraft.version"]; !ok {
		t.Fatalf("no kraft.version feature: %v", bi.Features)
	}

	fake, err := NewEmbeddedBroker(1)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	fadm, err := NewAdmin(ClientConfig{Brokers: fake.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer fadm.Close()
	fbi, err := fadm.Describe(ctx)
	if err == nil && fbi.KRaft {
		t.Fatalf("the embedded fake passes for KRaft too (%+v): the check proves nothing", fbi)
	}
}
