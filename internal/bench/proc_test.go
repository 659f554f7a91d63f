package bench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses: the fields count from the last ")".
	stat := "4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 9 0 100 1000000 500 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want { // (250+75) ticks of 10ms
		t.Errorf("cpu = %v, want %v", got, want)
	}
	for name, bad := range map[string]string{
		"no command": "4242 S 1 2 3",
		"short":      "4242 (cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0",
		"not a num":  "4242 (cmd) S 1 4242 4242 0 -1 4194560 1000 0 0 0 x 75 0",
	} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("%s: %q parsed without error", name, bad)
		}
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tstreamscore\nVmPeak:\t  900000 kB\nVmHWM:\t  123456 kB\nVmRSS:\t  100000 kB\n"
	got, err := parseVMHWM([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(123456) << 10; got != want {
		t.Errorf("VmHWM = %d bytes, want %d", got, want)
	}
	if _, err := parseVMHWM([]byte("Name:\tx\nVmRSS:\t1 kB\n")); err == nil {
		t.Error("a status without VmHWM parsed without error")
	}
	if _, err := parseVMHWM([]byte("VmHWM:\tlots kB\n")); err == nil {
		t.Error("a VmHWM that is not a number parsed without error")
	}
}

func TestProcOfThisProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	hwm, err := PeakRSS(os.Getpid())
	if err != nil || hwm <= 0 {
		t.Errorf("PeakRSS(self) = %d, %v; want > 0", hwm, err)
	}
	if _, err := CPUTime(os.Getpid()); err != nil {
		t.Errorf("CPUTime(self): %v", err)
	}
}
