package topics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// SchemaRegistryConfig is schema_registry: a Confluent-compatible Schema Registry
// (Confluent's, or Apicurio's /apis/ccompat/v7).
type SchemaRegistryConfig struct {
	// URL is the registry's base URL, e.g. http://registry:8081 or
	// http://apicurio:8080/apis/ccompat/v7.
	URL string    `yaml:"url"`
	TLS TLSConfig `yaml:"tls"`
	// Username and Password are HTTP basic auth (both or neither); PasswordFile holds the
	// password instead (a mounted Secret), read once at start.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Timeout bounds one registry request (0: 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// Validate says what is wrong with the registry settings, every problem at once.
func (c *SchemaRegistryConfig) Validate() []error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("schema_registry.url: set the Schema Registry's URL (a non-JSON schema.format or output.format reads it)"))
	} else if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		errs = append(errs, fmt.Errorf("schema_registry.url %q: want an http:// or https:// URL", c.URL))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("schema_registry: set both username and password (or password_file) for basic auth, or neither"))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("schema_registry.timeout %v: want a positive duration", c.Timeout))
	}
	return errs
}

// SchemaRegistry is a Schema Registry client. It is safe for concurrent use.
type SchemaRegistry struct {
	cl  *sr.Client
	url string
}

// Registered is a schema as the registry holds it.
type Registered struct {
	ID         int
	Type       string // AVRO, PROTOBUF or JSON
	Text       string
	References []sr.SchemaReference
}

// ErrUnknownSchema is returned when the registry answers that a schema id does not exist.
var ErrUnknownSchema = errors.New("the schema registry has no schema with this id")

// NewSchemaRegistry returns a client for c.
func NewSchemaRegistry(c SchemaRegistryConfig) (*SchemaRegistry, error) {
	if errs := c.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Lookups are rare (once per schema id): no idle connection outlives a request, so
	// nothing needs closing.
	tr.DisableKeepAlives = true
	if c.TLS.Enabled || strings.HasPrefix(c.URL, "https://") {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, fmt.Errorf("schema_registry.tls: %w", err)
		}
		tr.TLSClientConfig = tc
	}
	opts := []sr.ClientOpt{sr.URLs(c.URL), sr.HTTPClient(&http.Client{Timeout: timeout, Transport: tr})}
	if c.Username != "" {
		opts = append(opts, sr.BasicAuth(c.Username, c.Password))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("schema_registry: %w", err)
	}
	return &SchemaRegistry{cl: cl, url: c.URL}, nil
}

// Ping lists the registry's subjects: a registry that does not answer at start is a
// configuration mistake, reported with what to check.
func (r *SchemaRegistry) Ping(ctx context.Context) error {
	if _, err := r.cl.Subjects(ctx); err != nil {
		return fmt.Errorf("the schema registry at %s does not answer: check schema_registry.url (Apicurio: .../apis/ccompat/v7), its TLS and basic-auth settings, and that the registry runs: %w", r.url, err)
	}
	return nil
}

// SchemaByID fetches the writer schema id. It returns ErrUnknownSchema (wrapped) when the
// registry answers that the id does not exist; any other error means the registry could
// not be asked (down, slow, refusing) and the caller should try again later.
func (r *SchemaRegistry) SchemaByID(ctx context.Context, id int) (Registered, error) {
	s, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && (re.ErrorCode == sr.ErrSchemaNotFound.Code || re.StatusCode == http.StatusNotFound) {
			return Registered{}, fmt.Errorf("schema id %d: %w", id, ErrUnknownSchema)
		}
		return Registered{}, fmt.Errorf("fetching schema id %d from the schema registry: %w", id, err)
	}
	return Registered{ID: id, Type: s.Type.String(), Text: s.Schema, References: s.References}, nil
}

// Latest returns the latest schema registered under subject; found is false when the
// subject does not exist.
func (r *SchemaRegistry) Latest(ctx context.Context, subject string) (s Registered, found bool, err error) {
	ss, err := r.cl.SchemaByVersion(ctx, subject, -1)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && (re.ErrorCode == sr.ErrSubjectNotFound.Code || re.ErrorCode == sr.ErrVersionNotFound.Code || re.StatusCode == http.StatusNotFound) {
			return Registered{}, false, nil
		}
		return Registered{}, false, fmt.Errorf("reading the latest schema of %s: %w", subject, err)
	}
	return Registered{ID: ss.ID, Type: ss.Type.String(), Text: ss.Schema.Schema, References: ss.References}, true, nil
}

// Register registers a schema (AVRO, PROTOBUF or JSON) under subject and returns its id.
// The registry's compatibility rule decides whether a new version is accepted.
func (r *SchemaRegistry) Register(ctx context.Context, subject, typ, text string) (int, error) {
	var t sr.SchemaType
	if err := t.UnmarshalText([]byte(typ)); err != nil {
		return 0, fmt.Errorf("schema type %q: %w", typ, err)
	}
	ss, err := r.cl.CreateSchema(ctx, subject, sr.Schema{Schema: text, Type: t})
	if err != nil {
		return 0, fmt.Errorf("registering a %s schema under %s: %w", typ, subject, err)
	}
	return ss.ID, nil
}

// SplitWireFormat splits a Confluent wire-format value (magic byte 0, a big-endian
// 4-byte schema id, the payload) into the schema id and the payload.
func SplitWireFormat(b []byte) (id int, payload []byte, err error) {
	var h sr.ConfluentHeader
	return h.DecodeID(b)
}

// SplitProtobufIndex reads the message-index list that follows the header of a
// Protobuf value and returns it with the rest of the payload.
func SplitProtobufIndex(b []byte) (index []int, payload []byte, err error) {
	var h sr.ConfluentHeader
	return h.DecodeIndex(b, 16)
}

// AppendWireFormat appends the wire-format header for schema id (and, for Protobuf, the
// message index; nil for the first message) to b.
func AppendWireFormat(b []byte, id int, index []int) ([]byte, error) {
	var h sr.ConfluentHeader
	return h.AppendEncode(b, id, index)
}
