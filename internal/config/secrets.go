package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// readSecrets reads kafka.sasl.password_file into the password, so that the secret can
// live in a file that only the process may read (a mounted Kubernetes Secret) instead of
// in the config file or the command line. Setting both is refused: which one wins would
// be a guess.
func (c *Config) readSecrets() error {
	s := &c.Kafka.SASL
	if s.PasswordFile == "" {
		return nil
	}
	if s.Password != "" {
		return errors.New("kafka.sasl: both password (or STREAMSCORE_SASL_PASSWORD) and password_file (or STREAMSCORE_SASL_PASSWORD_FILE) are set: keep one")
	}
	raw, err := os.ReadFile(c.Resolve(s.PasswordFile))
	if err != nil {
		return fmt.Errorf("kafka.sasl.password_file: %w (point it at a readable file holding the password)", err)
	}
	// Editors and `kubectl create secret --from-file` leave a final newline; a password
	// never ends with one.
	pw := strings.TrimRight(string(raw), "\r\n")
	if pw == "" {
		return fmt.Errorf("kafka.sasl.password_file %s is empty: write the password into it", s.PasswordFile)
	}
	s.Password = pw
	return nil
}
