//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// proc is one target process the harness started (nginx's master, haproxy,
// proxynow) together with whatever children it forks.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done
	log  string        // file holding its stdout and stderr
}

// startProc starts argv with env added to the harness's environment, its
// output in dir/<name>.log, in a process group of its own so that a stray
// signal to the harness's terminal does not reach it mid-run.
func startProc(dir, name string, env []string, argv ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid is the process's id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited, and why.
func (p *proc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
	default:
		return false, nil
	}
}

// tail is the end of the process's log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// stop sends SIGTERM to the process group it leads, waits up to 5 s, then
// kills the group.
func (p *proc) stop() {
	pgid := p.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// waitReady waits until probe succeeds against the process, up to timeout,
// failing early if the process exits.
func (p *proc) waitReady(timeout time.Duration, probe func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for i := 0; time.Now().Before(deadline) && i < 10000; i++ {
		if gone, err := p.exited(); gone {
			return err
		}
		if last = probe(); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %v\n%s", p.name, timeout, last, p.tail())
}

// tcpProbe succeeds once addr accepts a TCP connection.
func tcpProbe(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// udpEchoProbe succeeds once a datagram sent to addr comes back.
func udpEchoProbe(addr string) func() error {
	return func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("probe")); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 64)
		_, err = c.Read(buf)
		return err
	}
}

// procTree is root and its live descendants (nginx's workers).
func procTree(root int) []int {
	parents := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		parents[st.ppid] = append(parents[st.ppid], pid)
	}
	out := []int{root}
	for i := 0; i < len(out) && i < 1000; i++ {
		out = append(out, parents[out[i]]...)
	}
	return out
}

type procStat struct {
	ppid           int
	utime, stime   uint64 // clock ticks
	cutime, cstime uint64 // waited-for children's, clock ticks
}

// readStat parses /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15,
	// cutime 16, cstime 17.
	if len(f) < 15 {
		return procStat{}, errors.New("short stat")
	}
	var s procStat
	s.ppid, _ = strconv.Atoi(f[1])
	s.utime, _ = strconv.ParseUint(f[11], 10, 64)
	s.stime, _ = strconv.ParseUint(f[12], 10, 64)
	s.cutime, _ = strconv.ParseUint(f[13], 10, 64)
	s.cstime, _ = strconv.ParseUint(f[14], 10, 64)
	return s, nil
}

// cpuSample maps each pid of a tree to its CPU ticks so far.
type cpuSample map[int]uint64

func sampleCPU(root int) cpuSample {
	s := cpuSample{}
	for _, pid := range procTree(root) {
		if st, err := readStat(pid); err == nil {
			s[pid] = st.utime + st.stime
		}
	}
	return s
}

// cpuSeconds is the CPU the tree used between two samples. A process that
// appeared in between counts from zero; one that vanished counts nothing
// after its last sample (the targets do not fork during a run).
func cpuSeconds(before, after cpuSample) float64 {
	var ticks uint64
	for pid, a := range after {
		if b := before[pid]; a > b {
			ticks += a - b
		}
	}
	return float64(ticks) / clockTicks
}

// resetPeakRSS clears VmHWM of every process in the tree (Linux >= 4.0,
// "5" in clear_refs), so the peak reported excludes start-up and warm-up.
// Failure leaves the lifetime peak, which is still an upper bound.
func resetPeakRSS(root int) {
	for _, pid := range procTree(root) {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

// peakRSS sums VmHWM over the tree, in bytes.
func peakRSS(root int) int64 {
	var total int64
	for _, pid := range procTree(root) {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				total += kb * 1024
			}
		}
		f.Close()
	}
	return total
}

// freePort returns a loopback port free for both TCP and UDP right now.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// machineBusy is the machine's non-idle CPU ticks so far (/proc/stat "cpu"
// line: everything but idle and iowait).
func machineBusy() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	// guest and guest_nice (fields 9, 10) are already inside user and nice.
	if len(f) > 10 {
		g, _ := strconv.ParseUint(f[9], 10, 64)
		gn, _ := strconv.ParseUint(f[10], 10, 64)
		busy -= min(busy, g+gn)
	}
	return busy
}

// helperTicks is the CPU ticks so far of a process the harness runs as a
// backend (0: none).
func helperTicks(pid int) uint64 {
	if pid == 0 {
		return 0
	}
	st, err := readStat(pid)
	if err != nil {
		return 0
	}
	return st.utime + st.stime
}

// selfTicks is the harness's own CPU ticks so far, with its waited-for
// children's (cutime, cstime): a load generator such as wrk or h2load
// started and reaped inside the window counts as the harness, not as
// noise. Targets and the HTTP backend are reaped only after every window.
func selfTicks() uint64 {
	st, err := readStat(os.Getpid())
	if err != nil {
		return 0
	}
	return st.utime + st.stime + st.cutime + st.cstime
}
