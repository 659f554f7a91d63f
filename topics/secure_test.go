//go:build !integration

package topics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamscore/streamscore/internal/testpki"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	testUser = "streamscore"
	testPass = "s3cret-for-tests"
)

// testPKI is a CA, a server certificate it signed for 127.0.0.1 (and no host name), and a
// second, unrelated CA.
type testPKI struct {
	caFile, otherCAFile string
	server              tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := testpki.NewCA(t, "streamscore test CA")
	other, _ := testpki.NewCA(t, "unrelated CA")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(3),
		Subject:      pkix.Name{CommonName: "broker"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{caFile: filepath.Join(dir, "ca.pem"), otherCAFile: filepath.Join(dir, "other-ca.pem"),
		server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}}
	testpki.WritePEM(t, p.caFile, ca.Raw)
	testpki.WritePEM(t, p.otherCAFile, other.Raw)
	return p
}

// listener is how a kfake broker listens.
type listener struct{ tls, sasl bool }

// fakeBroker starts a kfake broker with TLS (the pki's server certificate) and SCRAM-SHA-512
// (user testUser) as asked.
func fakeBroker(t *testing.T, pki testPKI, l listener) []string {
	return fakeCluster(t, pki, l).ListenAddrs()
}

func fakeCluster(t *testing.T, pki testPKI, l listener) *kfake.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if l.tls {
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}))
	}
	if l.sasl {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", testUser, testPass))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// secureClient is what connects to a TLS + SCRAM-SHA-512 listener.
func secureClient(brokers []string, pki testPKI) ClientConfig {
	return ClientConfig{
		Brokers: brokers,
		TLS:     TLSConfig{Enabled: true, CAFile: pki.caFile},
		SASL:    SASLConfig{Mechanism: "scram-sha-512", Username: testUser, Password: testPass},
	}
}

// TestSASLSSLConnects: a client with the CA and the credentials passes the check, and its
// clients work over TLS + SCRAM-SHA-512.
func TestSASLSSLConnects(t *testing.T) {
	pki := newTestPKI(t)
	cc := secureClient(fakeBroker(t, pki, listener{tls: true, sasl: true}), pki)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := Check(ctx, cc); err != nil {
		t.Fatal(err)
	}
	adm, err := NewAdmin(cc)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.EnsureTopics(ctx, 1, TopicSpec{Name: "secure", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	parts, err := adm.Partitions(ctx, "secure")
	if err != nil {
		t.Fatal(err)
	}
	if parts["secure"] != 2 {
		t.Fatalf("partitions of secure: %d, want 2", parts["secure"])
	}
	if _, ok := passed.Load(cc.fingerprint()); !ok {
		t.Fatal("the settings that passed the check are not remembered: every client would check again")
	}
}

// TestCheckSaysWhatToFix: each misconfiguration fails the check with a message that names
// the cause and the setting to change.
func TestCheckSaysWhatToFix(t *testing.T) {
	pki := newTestPKI(t)
	secure := fakeBroker(t, pki, listener{tls: true, sasl: true})
	plaintext := fakeBroker(t, pki, listener{})
	closes := stubListener(t, nil)
	answersPlaintext := stubListener(t, []byte{0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0})
	saslOnly := fakeBroker(t, pki, listener{sasl: true})
	// Apache Kafka answers a SaslHandshake on a listener without SASL with
	// ILLEGAL_SASL_STATE; kfake accepts the handshake, so this one is taught to.
	noSASLCluster := fakeCluster(t, pki, listener{})
	noSASLCluster.ControlKey(int16(kmsg.SASLHandshake), func(req kmsg.Request) (kmsg.Response, error, bool) {
		noSASLCluster.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil, true
	})
	noSASL := noSASLCluster.ListenAddrs()
	cases := []struct {
		name  string
		cc    func() ClientConfig
		wants []string
	}{
		{"wrong password", func() ClientConfig {
			cc := secureClient(secure, pki)
			cc.SASL.Password = "wrong"
			return cc
		}, []string{`SASL authentication as "streamscore" failed (SCRAM-SHA-512)`, "kafka.sasl.password"}},
		{"unknown CA", func() ClientConfig {
			cc := secureClient(secure, pki)
			cc.TLS.CAFile = pki.otherCAFile
			return cc
		}, []string{"signed by an unknown CA", "set kafka.tls.ca_file"}},
		{"plaintext to the TLS listener", func() ClientConfig {
			cc := secureClient(secure, pki)
			cc.TLS = TLSConfig{}
			return cc
		}, []string{"closed the connection on the first request", "TLS (SSL/SASL_SSL) listener", "set kafka.tls.enabled: true"}},
		// kfake waits for the rest of the "request" the ClientHello seems to announce, so
		// this one ends at the check's deadline
		{"TLS to a plaintext listener", func() ClientConfig {
			return ClientConfig{Brokers: plaintext, TLS: TLSConfig{Enabled: true, CAFile: pki.caFile}}
		}, []string{"the listener does not speak TLS", "unset kafka.tls.enabled"}},
		// Apache Kafka reads a ClientHello as a request too large and closes the connection
		{"TLS to a plaintext listener that closes", func() ClientConfig {
			return ClientConfig{Brokers: closes, TLS: TLSConfig{Enabled: true, CAFile: pki.caFile}}
		}, []string{"the listener does not speak TLS", "unset kafka.tls.enabled"}},
		{"TLS to a listener that answers in plaintext", func() ClientConfig {
			return ClientConfig{Brokers: answersPlaintext, TLS: TLSConfig{Enabled: true, CAFile: pki.caFile}}
		}, []string{"the listener does not speak TLS", "unset kafka.tls.enabled"}},
		{"SASL required but not configured", func() ClientConfig {
			return ClientConfig{Brokers: saslOnly}
		}, []string{"requires SASL", "set kafka.sasl.mechanism"}},
		{"SASL to a listener without SASL", func() ClientConfig {
			return ClientConfig{Brokers: noSASL, SASL: SASLConfig{Mechanism: "scram-sha-512", Username: testUser, Password: testPass}}
		}, []string{"the listener does not use SASL", "unset kafka.sasl.mechanism"}},
		{"certificate for another host", func() ClientConfig {
			cc := secureClient(secure, pki)
			cc.Brokers = []string{strings.Replace(secure[0], "127.0.0.1", "localhost", 1)}
			return cc
		}, []string{"certificate is not valid for localhost", "kafka.brokers"}},
		{"nothing listens", func() ClientConfig {
			return ClientConfig{Brokers: []string{closedPort(t)}}
		}, []string{"nothing listens on 127.0.0.1:", "check kafka.brokers"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := tc.cc()
			err := Check(context.Background(), cc)
			t.Log(err)
			var ce *ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("Check: %v, want a ConnectError", err)
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check: %v\nwant it to say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("the message shows the password: %v", err)
			}
		})
	}
}

// TestClientsRunTheCheck: every constructor runs the check, so no command can skip it.
func TestClientsRunTheCheck(t *testing.T) {
	pki := newTestPKI(t)
	cc := secureClient(fakeBroker(t, pki, listener{tls: true, sasl: true}), pki)
	cc.SASL.Password = "wrong"
	constructors := map[string]func() error{
		"admin":    func() error { _, err := NewAdmin(cc); return err },
		"producer": func() error { _, err := NewProducer(cc, ProducerOptions{}); return err },
		"reader":   func() error { _, err := NewReader(cc, false, "t"); return err },
		"consumer": func() error {
			_, err := NewGroupSource(cc, GroupOptions{Group: "g", Topics: []string{"t"}})
			return err
		},
	}
	for name, build := range constructors {
		var ce *ConnectError
		if err := build(); !errors.As(err, &ce) || !strings.Contains(ce.Cause, "SASL authentication") {
			t.Errorf("%s: %v, want the check's SASL authentication error", name, err)
		}
	}
}

// stubListener accepts connections, reads what the client sends first, writes answer
// and closes the connection.
func stubListener(t *testing.T, answer []byte) []string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return // the listener is closed
			}
			buf := make([]byte, 512)
			_, _ = conn.Read(buf)
			if answer != nil {
				_, _ = conn.Write(answer)
			}
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})
	return []string{l.Addr().String()}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// hungListener accepts connections and never answers on them, like a broker whose JVM is
// stopped (scripts/kafka.sh pause-node): the kernel completes the handshake, nobody reads.
func hungListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return // the listener is closed
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().String()
}

// TestCheckPassesWhenTheFirstSeedHangs: a seed broker that accepts connections but never
// answers must not fail the start-up check while another seed answers (an instance
// restarted while one broker of the cluster hangs starts); with no other seed, the check
// still says that nothing answered, naming the broker.
func TestCheckPassesWhenTheFirstSeedHangs(t *testing.T) {
	b, err := NewEmbeddedBroker(1, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hung := hungListener(t)
	if err := Check(context.Background(), ClientConfig{Brokers: append([]string{hung}, b.Addrs()...)}); err != nil {
		t.Fatalf("the first seed hangs, the second answers: %v", err)
	}
	err = Check(context.Background(), ClientConfig{Brokers: []string{hung, hungListener(t)}})
	var ce *ConnectError
	if !errors.As(err, &ce) || !strings.Contains(ce.Cause, "no answer") || !strings.Contains(ce.Brokers, hung+",") {
		t.Fatalf("every seed hangs: %v, want a ConnectError saying no broker answered, naming both", err)
	}
}
