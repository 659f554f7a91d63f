package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports.
const clockTicksPerSecond = 100

// CPUTime returns the user plus system CPU time a live process has used (Linux).
func CPUTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(raw)
}

// PeakRSS returns a live process's peak resident set size in bytes (VmHWM, Linux).
func PeakRSS(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVMHWM(raw)
}

// parseStatCPU reads utime+stime out of the contents of /proc/PID/stat. The command name
// (field 2) is in parentheses and may itself hold spaces or parentheses, so the fields are
// counted from the last ")": utime and stime are fields 14 and 15 of the line.
func parseStatCPU(raw []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no command name")
	}
	f := bytes.Fields(raw[i+1:])
	if len(f) < 13 {
		return 0, errors.New("/proc stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat: utime/stime: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicksPerSecond, nil
}

// parseVMHWM reads the VmHWM line ("VmHWM:   123456 kB") of /proc/PID/status, in bytes.
func parseVMHWM(raw []byte) (int64, error) {
	for _, line := range bytes.Split(raw, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 2 || string(f[0]) != "VmHWM:" {
			continue
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("/proc status: no VmHWM")
}
