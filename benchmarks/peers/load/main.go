// Command peerload drives Centrifugo and Socket.IO through the shapes of the
// project's chat-load benchmarks, on loopback only, and prints one JSON
// object per run:
//
//	peerload idle   --peer P --server ADDR --pid PID --connections 10000 ...
//	peerload fanout --peer P --server ADDR --pid PID --subscribers 1000 --rate 45 ...
//
// idle holds N connections open, each subscribed to a channel of its own, and
// reads the server's RSS before and after: memory per idle connection.
//
// fanout connects N subscribers to one shared channel and one publisher, and
// publishes on an open-loop schedule (message j is due at start + j/rate; its
// latency counts from that due time, so a stalled publisher or server shows
// as latency, not as fewer messages). The server's CPU time (utime+stime
// from /proc/PID/stat) over the measured window, divided by the deliveries
// received in that window, gives server CPU per delivery. The run also says
// whether the server sustained the rate (see step); the saturation ladder
// (../ladder.sh) calls it once per rate, each time on a fresh server.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "idle":
		err = runIdle(os.Args[2:])
	case "fanout":
		err = runFanout(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "peerload:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: peerload idle|fanout --peer centrifugo|socketio --server 127.0.0.1:PORT --pid PID [flags] (-h for flags)")
	os.Exit(2)
}

// common are the flags both subcommands take.
type common struct {
	peer    string
	server  string
	pid     int
	sources string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.peer, "peer", "", "centrifugo or socketio")
	fs.StringVar(&c.server, "server", "", "the server, IP:PORT on a loopback address")
	fs.IntVar(&c.pid, "pid", 0, "the server's process id (RSS and CPU are read from /proc/PID)")
	fs.StringVar(&c.sources, "sources", "", "loopback source addresses for the client sockets, a range 127.0.0.2-127.0.0.9 (default: the OS picks)")
}

// resolve checks the common flags: a known peer, a loopback server, a live
// server process.
func (c *common) resolve() (protocol, []net.IP, error) {
	var p protocol
	switch c.peer {
	case "centrifugo":
		p = centrifugo{}
	case "socketio":
		p = socketio{}
	default:
		return nil, nil, fmt.Errorf("--peer must be centrifugo or socketio, not %q", c.peer)
	}
	host, _, err := net.SplitHostPort(c.server)
	if err != nil {
		return nil, nil, fmt.Errorf("--server %q: %w", c.server, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, nil, fmt.Errorf("--server %q: only loopback IP addresses (this tool floods its target)", c.server)
	}
	if c.pid <= 0 {
		return nil, nil, fmt.Errorf("--pid is required")
	}
	if _, err := cpuSeconds(c.pid); err != nil {
		return nil, nil, fmt.Errorf("--pid %d: %w", c.pid, err)
	}
	srcs, err := parseSources(c.sources)
	if err != nil {
		return nil, nil, err
	}
	return p, srcs, nil
}

// parseSources reads "A-B" (a range within one /24) or "A,B,C".
func parseSources(s string) ([]net.IP, error) {
	if s == "" {
		return nil, nil
	}
	var out []net.IP
	check := func(t string) (net.IP, error) {
		ip := net.ParseIP(strings.TrimSpace(t)).To4()
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--sources: %q is not a loopback IPv4 address", t)
		}
		return ip, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		first, err := check(a)
		if err != nil {
			return nil, err
		}
		last, err := check(b)
		if err != nil {
			return nil, err
		}
		if !first[:3].Equal(last[:3]) || first[3] > last[3] {
			return nil, fmt.Errorf("--sources %q: the range must go upwards within one /24", s)
		}
		for i := int(first[3]); i <= int(last[3]); i++ {
			out = append(out, net.IPv4(first[0], first[1], first[2], byte(i)).To4())
		}
		return out, nil
	}
	for _, t := range strings.Split(s, ",") {
		ip, err := check(t)
		if err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	return out, nil
}

// sourceFor spreads connection i over the source addresses.
func sourceFor(srcs []net.IP, i int) net.IP {
	if len(srcs) == 0 {
		return nil
	}
	return srcs[i%len(srcs)]
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(v)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peerload: "+format+"\n", args...)
}
