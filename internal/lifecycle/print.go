package lifecycle

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"
)

// PrintList writes entries as `streamscore model list` prints them: one line a version,
// with its role, whether its alerts carry reasons (its manifest ships node covers) and
// every activation (when and by whom).
func PrintList(out io.Writer, entries []Entry) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tVERSION\tROLE\tBYTES\tREASONS\tPUSHED\tPUSHED BY\tACTIVATIONS")
	for _, e := range entries {
		var acts []string
		for _, a := range e.Activations {
			acts = append(acts, fmt.Sprintf("%s %s by %s", a.Role, a.At.Format(time.RFC3339), a.By))
		}
		role := string(e.Role)
		if role == "" {
			role = "-"
		}
		reasons := "no (no covers)"
		if HasCovers(e.ModelMeta) {
			reasons = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Name, e.Version, role, e.Bytes, reasons,
			e.PushedAt.Format(time.RFC3339), e.PushedBy, strings.Join(acts, "; "))
	}
	return w.Flush()
}

// CurrentUser names who pushes or activates, for the activation log: user@host.
func CurrentUser() string {
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname() // best effort: the name alone still says who
	return name + "@" + host
}
