package topics

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CheckTimeout bounds the startup check. Every misconfiguration it diagnoses (a refused
// connection, a failed TLS handshake, rejected credentials) answers in milliseconds; the
// deadline only decides how long a broker that does not answer at all is waited for.
const CheckTimeout = 5 * time.Second

// ConnectError is a startup check that failed: what went wrong, in the terms of the
// configuration, and what to change. Err is franz-go's error, for errors.Is and errors.As.
type ConnectError struct {
	Brokers string // the seed brokers, comma-separated
	Cause   string // e.g. "the broker's certificate is signed by an unknown CA"
	Fix     string // e.g. "set kafka.tls.ca_file to the CA that signed it"
	Err     error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("kafka at %s: %s: %s (%v)", e.Brokers, e.Cause, e.Fix, e.Err)
}

// Unwrap returns franz-go's error.
func (e *ConnectError) Unwrap() error { return e.Err }

// Check makes one Metadata request to the seed brokers (each tried once, no retries) within
// CheckTimeout and, when none answers, says why in terms of the configuration. franz-go
// retries connection and authentication failures for as long as a request may wait, so
// without this a wrong password or a missing CA would show as a job that hangs. Every
// client constructor of this package runs it (once per connection settings per process),
// so a command cannot forget it; call it directly to check a config without a job.
func Check(ctx context.Context, cc ClientConfig) error {
	if len(cc.Brokers) <= 1 {
		return checkSeed(ctx, cc)
	}
	// Each seed broker is asked on its own, all at once: one client walks the seeds in
	// turn, so a hung broker (it accepts the connection, then never answers: SIGSTOPped,
	// or in a long GC) would use up the whole deadline before the next seed is tried, and
	// an instance started while the first broker hangs would refuse to start.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(cc.Brokers))
	var wg sync.WaitGroup
	var answered sync.Once
	for i, b := range cc.Brokers {
		one := cc
		one.Brokers = []string{b}
		wg.Go(func() {
			if errs[i] = checkSeed(ctx, one); errs[i] == nil {
				answered.Do(cancel) // one broker answered: the others need not
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	// Every seed failed (or the caller gave up, and each says so): the first seed's
	// diagnosis, naming all of them.
	var ce *ConnectError
	if errors.As(errs[0], &ce) {
		ce.Brokers = strings.Join(cc.Brokers, ",")
	}
	return errs[0]
}

// checkSeed is Check on the seed brokers of cc with one client.
func checkSeed(ctx context.Context, cc ClientConfig) error {
	opts, tc, err := cc.connOpts("check")
	if err != nil {
		return err
	}
	var failed failedRequest
	// No logger: franz-go's warnings about the same failure would only repeat, less
	// precisely, what the returned error says.
	cl, err := kgo.NewClient(append(opts, kgo.WithHooks(&failed), kgo.Dialer(failed.dialer(tc)))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	pctx := ctx
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	err = cl.Ping(ctx)
	if err == nil {
		return nil
	}
	if pctx.Err() != nil {
		return pctx.Err() // the caller gave up: nothing to diagnose
	}
	key, handshake := failed.get()
	if handshake != nil {
		// franz-go retries a failed dial once, so its last error may be the retry's
		// timeout; the handshake's error says more.
		err = handshake
	}
	return diagnose(cc, err, key)
}

// dialer dials like kgo.DialTLSConfig, but marks and remembers an error of the TLS
// handshake: a listener that does not speak TLS either closes the connection or waits for
// a request, and only the stage tells that apart from a broker that is down.
func (f *failedRequest) dialer(tc *tls.Config) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		raw, err := (&net.Dialer{Timeout: CheckTimeout}).DialContext(ctx, network, host)
		if err != nil || tc == nil {
			return raw, err
		}
		c := tc.Clone()
		if c.ServerName == "" {
			if c.ServerName, _, err = net.SplitHostPort(host); err != nil {
				raw.Close()
				return nil, err
			}
		}
		conn := tls.Client(raw, c)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			hs := &handshakeError{err}
			f.mu.Lock()
			f.handshake = hs
			f.mu.Unlock()
			return nil, hs
		}
		return conn, nil
	}
}

// handshakeError is a failed TLS handshake on an open TCP connection.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// passed holds the connection settings that passed Check in this process. It caches a fact
// about the outside world, like a resolver cache, keyed by everything that decides whether
// a connection succeeds; a client built later with the same settings (a history replay
// after a rebalance, say) does not check again, so it rides out a broker outage the way
// franz-go's retries let it, instead of failing fast in the middle of a run.
var passed sync.Map

// checkOnce runs Check unless these connection settings passed it before.
func (c *ClientConfig) checkOnce() error {
	key := c.fingerprint()
	if _, ok := passed.Load(key); ok {
		return nil
	}
	if err := Check(context.Background(), *c); err != nil {
		return err
	}
	passed.Store(key, struct{}{})
	return nil
}

// fingerprint identifies what decides whether a connection succeeds. It is a hash so that
// the cache holds no password.
func (c *ClientConfig) fingerprint() [sha256.Size]byte {
	t, s := c.TLS, c.SASL
	return sha256.Sum256(fmt.Appendf(nil, "%q|%t|%q|%q|%q|%t|%q|%q|%q",
		c.Brokers, t.Enabled, t.CAFile, t.CertFile, t.KeyFile, t.InsecureSkipVerify,
		strings.ToLower(s.Mechanism), s.Username, s.Password))
}

// failedRequest remembers the key of the last request whose write or read failed, and the
// last failed TLS handshake: a broker that drops the connection says nothing, and which
// request it dropped tells why (the first request: TLS expected; SaslAuthenticate: bad
// credentials; a later one: SASL expected).
type failedRequest struct {
	mu        sync.Mutex
	key       kmsg.Key
	set       bool
	handshake error
}

func (f *failedRequest) note(key int16, err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	f.key, f.set = kmsg.Key(key), true
	f.mu.Unlock()
}

// get returns the failed request's key (-1: none) and the handshake's error.
func (f *failedRequest) get() (kmsg.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.set {
		return -1, f.handshake
	}
	return f.key, f.handshake
}

// OnBrokerWrite implements kgo.HookBrokerWrite.
func (f *failedRequest) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	f.note(key, err)
}

// OnBrokerRead implements kgo.HookBrokerRead.
func (f *failedRequest) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	f.note(key, err)
}

// diagnose turns the error of a failed check into a ConnectError that names the cause and
// the setting to change; an error it cannot place keeps franz-go's words.
func diagnose(cc ClientConfig, err error, failed kmsg.Key) error {
	e := &ConnectError{Brokers: strings.Join(cc.Brokers, ","), Err: err}
	switch {
	case diagnoseSASL(cc, err, failed, e), diagnoseTLS(cc, err, failed, e), diagnoseNet(err, e):
		return e
	}
	e.Cause, e.Fix = "no broker answered", "check kafka.brokers, kafka.tls and kafka.sasl"
	return e
}

// dropped is a connection the broker closed or reset instead of answering.
func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

func diagnoseSASL(cc ClientConfig, err error, failed kmsg.Key, e *ConnectError) bool {
	mech := strings.ToUpper(cc.SASL.Mechanism)
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed),
		// Apache Kafka answers SaslAuthenticationFailed; some brokers (kfake among them)
		// just close the connection on a bad password.
		mech != "" && failed == kmsg.SASLAuthenticate && dropped(err):
		e.Cause = fmt.Sprintf("SASL authentication as %q failed (%s)", cc.SASL.Username, mech)
		e.Fix = "check kafka.sasl.username and the password (kafka.sasl.password / password_file), and that the user exists for this mechanism"
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		e.Cause = fmt.Sprintf("the broker does not enable SASL mechanism %s", mech)
		e.Fix = "set kafka.sasl.mechanism to one the listener enables (sasl.enabled.mechanisms)"
	case errors.Is(err, kerr.IllegalSaslState):
		// Apache Kafka's answer to a SaslHandshake on a listener without SASL.
		e.Cause = "the listener does not use SASL"
		e.Fix = "unset kafka.sasl.mechanism or use the SASL (SASL_PLAINTEXT/SASL_SSL) port"
	case mech == "" && dropped(err) && failed >= 0 && failed != kmsg.ApiVersions:
		// ApiVersions was answered, so the transport is right; a broker that then closes
		// the connection on the next request wants a SASL handshake first.
		e.Cause = "the broker closed the connection after the first request: the listener requires SASL"
		e.Fix = "set kafka.sasl.mechanism, kafka.sasl.username and kafka.sasl.password (or password_file); " +
			"if it does not, check that kafka.brokers names a broker listener, not a KRaft controller's"
	default:
		return false
	}
	return true
}

func diagnoseTLS(cc ClientConfig, err error, failed kmsg.Key, e *ConnectError) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		header    tls.RecordHeaderError
		hs        *handshakeError
		remote    *net.OpError
	)
	switch {
	case errors.As(err, &unknownCA):
		e.Cause = "the broker's certificate is signed by an unknown CA"
		e.Fix = "set kafka.tls.ca_file to the CA that signed it"
	case errors.As(err, &hostname):
		e.Cause = fmt.Sprintf("the broker's certificate is not valid for %s", hostname.Host)
		e.Fix = "list the brokers in kafka.brokers by a name or IP address the certificate holds, or reissue it"
	case errors.As(err, &invalid):
		e.Cause = "the broker's certificate is not valid (" + invalid.Error() + ")"
		e.Fix = "renew the broker's certificate, or check this machine's clock"
	case errors.As(err, &header), errors.As(err, &hs) && (dropped(err) || timedOut(err)):
		// A plaintext listener answers a ClientHello with something that is not TLS
		// (crypto/tls: "first record does not look like a TLS handshake"), or reads it as
		// a request of absurd size and closes the connection (Apache Kafka) or waits.
		e.Cause = "the listener does not speak TLS"
		e.Fix = "unset kafka.tls.enabled or use the TLS (SSL/SASL_SSL) port"
	case errors.As(err, &remote) && remote.Op == "remote error":
		// crypto/tls reports an alert from the peer as a net.OpError "remote error"
		e.Cause = "the broker refused the TLS handshake (" + remote.Err.Error() + ")"
		e.Fix = "if the listener requires client certificates (ssl.client.auth), set kafka.tls.cert_file and kafka.tls.key_file"
	case !cc.TLS.Enabled && (strings.Contains(err.Error(), "tls alert") || failed == kmsg.ApiVersions && dropped(err)):
		// A TLS listener reads the first request as a malformed handshake and closes the
		// connection (or answers with a TLS alert).
		e.Cause = "the broker closed the connection on the first request"
		e.Fix = "if this is a TLS (SSL/SASL_SSL) listener, set kafka.tls.enabled: true (and kafka.tls.ca_file to the CA that signed the broker's certificate)"
	default:
		return false
	}
	return true
}

func diagnoseNet(err error, e *ConnectError) bool {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		e.Cause = "nothing listens on " + refusedAddr(err, e.Brokers)
		e.Fix = "check kafka.brokers (host:port of a running broker)"
	case errors.As(err, &dns):
		e.Cause = fmt.Sprintf("cannot resolve %s", dns.Name)
		e.Fix = "check kafka.brokers"
	case timedOut(err):
		e.Cause = fmt.Sprintf("no answer within %s", CheckTimeout)
		e.Fix = "check kafka.brokers and that this machine can reach them (firewall, network policy)"
	default:
		return false
	}
	return true
}

func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) || errors.As(err, &ne) && ne.Timeout()
}

// refusedAddr is the address a refused dial was for, when the error says.
func refusedAddr(err error, fallback string) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String()
	}
	return fallback
}
