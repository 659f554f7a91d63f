package testenv

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// fakeT records a failure instead of ending the test.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper()                           {}
func (f *fakeT) Fatal(args ...any)                 { f.msg = args[0].(error).Error() }
func (f *fakeT) Name() string                      { return "TestX/sub_case" }
func (f *fakeT) Fatalf(format string, args ...any) { f.msg = format }

func TestEventuallyReportsTheLastError(t *testing.T) {
	n := 0
	ft := &fakeT{TB: t}
	Eventually(ft, 50*time.Millisecond, func() error { n++; return errors.New("still 3 of 5") })
	if !strings.Contains(ft.msg, "still 3 of 5") || n < 2 {
		t.Fatalf("failure %q after %d calls: want the condition's last error, after polling", ft.msg, n)
	}
	ft.msg = ""
	n = 0
	Eventually(ft, time.Minute, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if ft.msg != "" || n != 3 {
		t.Fatalf("failure %q after %d calls: want success on the third", ft.msg, n)
	}
}

func TestNameIsUniqueAndKafkaSafe(t *testing.T) {
	ft := &fakeT{TB: t}
	a, b := Name(ft, "tx"), Name(ft, "tx")
	if a == b || !strings.HasPrefix(a, "tx-testx-sub-case-") {
		t.Fatalf("names %q, %q: want distinct, prefixed tx-testx-sub-case-", a, b)
	}
	if got := SplitList(" a:1, ,b:2,"); len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" {
		t.Fatalf("SplitList = %q", got)
	}
}
