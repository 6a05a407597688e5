package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc: 100 on every
// Linux architecture this runs on (`getconf CLK_TCK`); the run script checks.
const clockTicks = 100

// rssKiB is the resident memory of process pid (VmRSS in /proc/PID/status):
// user-space memory only; the kernel's socket buffers are not in it.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cpuSeconds is the CPU time process pid has used so far, all threads, user
// plus system (utime + stime, fields 14 and 15 of /proc/PID/stat).
func cpuSeconds(pid int) (float64, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%s: no ')'", path)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: too few fields", path)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: bad utime/stime", path)
	}
	return float64(ut+st) / clockTicks, nil
}

// machineBusySeconds is the CPU time all cores spent on anything but idle and
// iowait since boot (the "cpu" line of /proc/stat).
func machineBusySeconds() (float64, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 6 || fields[0] != "cpu" {
			continue
		}
		var busy uint64
		for i, v := range fields[1:] {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, err
			}
			// user nice system idle iowait irq softirq steal (guest is
			// already inside user): skip idle (3) and iowait (4).
			if i == 3 || i == 4 || i >= 8 {
				continue
			}
			busy += n
		}
		return float64(busy) / clockTicks, nil
	}
	return 0, fmt.Errorf("no cpu line in /proc/stat")
}

// cpuSample is the CPU used so far by the server, this client and the whole
// machine, taken at one moment.
type cpuSample struct {
	server, client, machine float64
}

func sampleCPU(serverPID int) (cpuSample, error) {
	s, err := cpuSeconds(serverPID)
	if err != nil {
		return cpuSample{}, fmt.Errorf("server CPU: %w", err)
	}
	c, err := cpuSeconds(0)
	if err != nil {
		return cpuSample{}, err
	}
	m, err := machineBusySeconds()
	if err != nil {
		return cpuSample{}, err
	}
	return cpuSample{server: s, client: c, machine: m}, nil
}
