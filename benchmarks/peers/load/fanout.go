package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// clock is the run's monotonic clock: due times and arrivals are both read
// from it, in this one process, so latencies need no clock agreement.
var clockBase = time.Now()

func now() int64 { return int64(time.Since(clockBase)) }

func sleepUntil(t int64) {
	if d := time.Duration(t - now()); d > 0 {
		time.Sleep(d)
	}
}

// window is the measured part of the current step, in clock ns: messages due
// in [from, to) are measured.
type window struct{ from, to atomic.Int64 }

// subscriber is one of the N connections on the shared channel.
type subscriber struct {
	index int
	c     *conn
	// arrivals counts every publication received, measured or not.
	arrivals atomic.Int64
	mu       sync.Mutex
	// latUs holds the latency of each measured delivery of this step, µs.
	latUs []int64
}

func (s *subscriber) onPush(win *window) func(int64) {
	return func(due int64) {
		t := now()
		s.arrivals.Add(1)
		if due >= win.from.Load() && due < win.to.Load() {
			s.mu.Lock()
			s.latUs = append(s.latUs, (t-due)/1000)
			s.mu.Unlock()
		}
	}
}

// Percentiles of a latency sample, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

func percentiles(us []int64) Percentiles {
	if len(us) == 0 {
		return Percentiles{}
	}
	slices.Sort(us)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(us)))) - 1
		i = max(0, min(i, len(us)-1))
		return float64(us[i]) / 1000
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: float64(us[len(us)-1]) / 1000}
}

// stepResult is what one rate measured.
type stepResult struct {
	Rate        float64 `json:"rate"`
	Subscribers int     `json:"subscribers"`
	DurationS   float64 `json:"duration_s"`
	WarmupS     float64 `json:"warmup_s"`
	// Published is the messages due in the measured window; Expected their
	// deliveries (times the subscribers connected at the step's start);
	// Delivered those that arrived by the end of the drain.
	Published int64 `json:"published"`
	Expected  int64 `json:"expected_deliveries"`
	Delivered int64 `json:"delivered"`
	Missing   int64 `json:"missing"`
	// DeliveredPerS is Delivered over the window's length: the pace of the
	// measured messages' deliveries.
	DeliveredPerS float64 `json:"delivered_per_s"`
	// DeliveriesPerS counts arrivals during the measured window (whatever
	// their due time): the deliveries the server made while its CPU was
	// being counted, the denominator of the CPU figures.
	DeliveriesPerS float64     `json:"deliveries_per_s"`
	Latency        Percentiles `json:"latency_ms"`
	PublishLag     Percentiles `json:"publish_lag_ms"`
	ServerCPUS     float64     `json:"server_cpu_s"`
	ServerCores    float64     `json:"server_cores"`
	ServerUsPerDel float64     `json:"server_cpu_us_per_delivery"`
	ClientCores    float64     `json:"client_cores"`
	ClientUsPerDel float64     `json:"client_cpu_us_per_delivery"`
	OtherCores     float64     `json:"other_cores"`
	Dropped        int         `json:"dropped_subscribers"`
	PublishErrors  uint64      `json:"publish_errors"`
	DrainS         float64     `json:"drain_s"`
	Sustained      bool        `json:"sustained"`
	Why            string      `json:"why_not_sustained,omitempty"`
}

// fanoutReport is one run: the step, and how long connecting took.
type fanoutReport struct {
	Peer      string  `json:"peer"`
	BodyBytes int     `json:"body_bytes"`
	SetupS    float64 `json:"setup_s"`
	MaxP99Ms  float64 `json:"max_p99_ms"`
	*stepResult
}

type fanout struct {
	proto     protocol
	server    string
	pid       int
	srcs      []net.IP
	channel   string
	body      []byte
	win       window
	subs      []*subscriber
	pub       *conn
	drainMax  time.Duration
	maxP99    time.Duration
	peer      string
	pubErrors uint64
}

func runFanout(args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	var c common
	c.register(fs)
	n := fs.Int("subscribers", 1000, "subscribers on the shared channel")
	channel := fs.String("channel", "room:fanout", "the shared channel (room)")
	rate := fs.Float64("rate", 45, "messages per second")
	duration := fs.Duration("duration", 20*time.Second, "measured time")
	warmup := fs.Duration("warmup", 2*time.Second, "publishing before measuring starts")
	drain := fs.Duration("drain", 5*time.Second, "longest wait after the last publish for deliveries still on their way")
	bodyBytes := fs.Int("body-bytes", 100, "length of each published payload, JSON included")
	maxP99 := fs.Duration("max-p99", 500*time.Millisecond, "the rate counts as sustained only if p99 delivery latency is at most this")
	fs.Parse(args)
	proto, srcs, err := c.resolve()
	if err != nil {
		return err
	}
	if *n < 1 || *n > maxConnsPerProcess-1 {
		return fmt.Errorf("--subscribers must be from 1 to %d", maxConnsPerProcess-1)
	}
	if !(*rate > 0 && *rate <= 100_000) {
		return fmt.Errorf("--rate must be above 0 and at most 100000 msgs/s")
	}
	for _, d := range []*time.Duration{duration, warmup, drain} {
		if *d < 0 || *d > 10*time.Minute {
			return fmt.Errorf("durations must be from 0 to 10m")
		}
	}
	if *duration == 0 {
		return fmt.Errorf("--duration must be above 0")
	}
	if *bodyBytes < 40 || *bodyBytes > 64<<10 {
		return fmt.Errorf("--body-bytes must be from 40 to 65536")
	}
	f := &fanout{proto: proto, server: c.server, pid: c.pid, channel: *channel, srcs: srcs,
		drainMax: *drain, maxP99: *maxP99, peer: c.peer}
	// The padding makes each payload bodyBytes long, like chat-load's
	// --body-bytes (`{"due_ns":` + 19 digits + `,"pad":"` ... `"}`).
	f.body = []byte(strings.Repeat("x", *bodyBytes-len(`{"due_ns":1234567890123456789,"pad":""}`)))

	rep := fanoutReport{Peer: c.peer, BodyBytes: *bodyBytes, MaxP99Ms: float64(*maxP99) / 1e6}
	start := time.Now()
	if err := f.connect(*n); err != nil {
		f.closeAll()
		return err
	}
	rep.SetupS = time.Since(start).Seconds()
	logf("%s fanout: %d subscribers and a publisher connected in %.1f s", c.peer, *n, rep.SetupS)
	rep.stepResult, err = f.step(*rate, *warmup, *duration)
	f.closeAll()
	if err != nil {
		return err
	}
	logStep(c.peer, rep.stepResult)
	return printJSON(rep)
}

func logStep(peer string, r *stepResult) {
	logf("%s %.0f msgs/s: %.0f deliveries/s, p50 %.2f p99 %.2f ms, server %.2f µs/delivery (%.2f cores), client %.2f cores, others %.2f, missing %d, dropped %d, sustained %v %s",
		peer, r.Rate, r.DeliveriesPerS, r.Latency.P50, r.Latency.P99, r.ServerUsPerDel, r.ServerCores, r.ClientCores, r.OtherCores, r.Missing, r.Dropped, r.Sustained, r.Why)
}

// connect opens the subscribers (each subscribed to the shared channel) and
// the publisher.
func (f *fanout) connect(n int) error {
	f.subs = make([]*subscriber, n)
	for i := range f.subs {
		f.subs[i] = &subscriber{index: i}
	}
	if err := f.reconnect(); err != nil {
		return err
	}
	if f.pub == nil || !f.pub.alive() {
		pub, err := dial(context.Background(), f.proto, f.server, nil, nil)
		if err != nil {
			return fmt.Errorf("publisher: %w", err)
		}
		f.pub = pub
	}
	return nil
}

// reconnect (re)opens every subscriber that is not connected; it returns how
// many there were through dropped.
func (f *fanout) reconnect() error {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, s := range f.subs {
		if s.c != nil && s.c.alive() {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(s *subscriber) {
			defer func() { <-sem; wg.Done() }()
			cn, err := dial(context.Background(), f.proto, f.server, sourceFor(f.srcs, s.index), s.onPush(&f.win))
			if err == nil {
				if err = cn.subscribe(f.channel); err != nil {
					cn.close()
				}
			}
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("subscriber %d: %w", s.index, err)
				}
				mu.Unlock()
				return
			}
			s.c = cn
		}(s)
	}
	wg.Wait()
	return firstErr
}

func (f *fanout) closeAll() {
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, s := range f.subs {
		if s.c != nil {
			wg.Add(1)
			sem <- struct{}{}
			go func(c *conn) { defer func() { <-sem; wg.Done() }(); c.close() }(s.c)
		}
	}
	wg.Wait()
	if f.pub != nil {
		f.pub.close()
	}
}

func (f *fanout) arrivals() int64 {
	var n int64
	for _, s := range f.subs {
		n += s.arrivals.Load()
	}
	return n
}

func (f *fanout) alive() int {
	n := 0
	for _, s := range f.subs {
		if s.c != nil && s.c.alive() {
			n++
		}
	}
	return n
}

// step publishes at rate for warmup+duration and measures the window after
// the warm-up.
func (f *fanout) step(rate float64, warmup, duration time.Duration) (*stepResult, error) {
	if err := f.connect(len(f.subs)); err != nil {
		return nil, err
	}
	for _, s := range f.subs {
		s.mu.Lock()
		s.latUs = s.latUs[:0]
		s.mu.Unlock()
	}
	live := f.alive()
	r := &stepResult{Rate: rate, Subscribers: live, DurationS: duration.Seconds(), WarmupS: warmup.Seconds()}
	start := now() + int64(50*time.Millisecond)
	from, to := start+int64(warmup), start+int64(warmup)+int64(duration)
	f.win.from.Store(from)
	f.win.to.Store(to)
	errs0 := f.pub.replyErrors.Load()

	// CPU and arrivals at the window's edges, from their own goroutine so
	// that the publisher's schedule does not move them.
	type edge struct {
		cpu      cpuSample
		arrivals int64
		err      error
	}
	edges := make(chan [2]edge, 1)
	go func() {
		var e [2]edge
		for i, t := range []int64{from, to} {
			sleepUntil(t)
			e[i].arrivals = f.arrivals()
			e[i].cpu, e[i].err = sampleCPU(f.pid)
		}
		edges <- e
	}()

	// The publisher: message j is due at start + j/rate, sent when due (or
	// at once when behind), never skipped.
	var lagUs []int64
	var published int64
	var pubErr error
	payload := make([]byte, 0, len(f.body)+64)
	for j := int64(0); ; j++ {
		due := start + int64(float64(j)*1e9/rate)
		if due >= to {
			break
		}
		sleepUntil(due)
		payload = payload[:0]
		payload = append(payload, `{"due_ns":`...)
		payload = strconv.AppendInt(payload, due, 10)
		payload = append(payload, `,"pad":"`...)
		payload = append(payload, f.body...)
		payload = append(payload, `"}`...)
		if err := f.pub.publish(f.channel, payload); err != nil {
			pubErr = err
			break
		}
		lagUs = append(lagUs, (now()-due)/1000)
		if due >= from {
			published++
		}
	}
	e := <-edges
	if pubErr != nil {
		return nil, fmt.Errorf("publisher: %w", pubErr)
	}
	for _, x := range e {
		if x.err != nil {
			return nil, x.err
		}
	}

	// Drain: wait for what is still on its way, up to drainMax.
	r.Published = published
	r.Expected = published * int64(live)
	drainStart := now()
	deadline := drainStart + int64(f.drainMax)
	delivered := func() int64 {
		var n int64
		for _, s := range f.subs {
			s.mu.Lock()
			n += int64(len(s.latUs))
			s.mu.Unlock()
		}
		return n
	}
	for delivered() < r.Expected && now() < deadline {
		time.Sleep(20 * time.Millisecond)
	}
	r.DrainS = float64(now()-drainStart) / 1e9
	var all []int64
	for _, s := range f.subs {
		s.mu.Lock()
		all = append(all, s.latUs...)
		s.mu.Unlock()
	}
	r.Delivered = int64(len(all))
	r.Missing = r.Expected - r.Delivered
	r.Latency = percentiles(all)
	r.PublishLag = percentiles(lagUs)
	r.Dropped = live - f.alive()
	r.PublishErrors = f.pub.replyErrors.Load() - errs0

	secs := duration.Seconds()
	inWindow := e[1].arrivals - e[0].arrivals
	r.DeliveriesPerS = float64(inWindow) / secs
	r.DeliveredPerS = float64(r.Delivered) / secs
	r.ServerCPUS = e[1].cpu.server - e[0].cpu.server
	r.ServerCores = r.ServerCPUS / secs
	client := e[1].cpu.client - e[0].cpu.client
	r.ClientCores = client / secs
	r.OtherCores = math.Max(0, (e[1].cpu.machine-e[0].cpu.machine)-r.ServerCPUS-client) / secs
	if inWindow > 0 {
		r.ServerUsPerDel = r.ServerCPUS * 1e6 / float64(inWindow)
		r.ClientUsPerDel = client * 1e6 / float64(inWindow)
	}

	// Sustained: everything arrived, nobody dropped, the window's deliveries
	// kept pace with the schedule and the tail stayed bounded.
	switch {
	case r.Dropped > 0:
		r.Why = fmt.Sprintf("%d subscribers dropped", r.Dropped)
	case r.Missing > r.Expected/1000:
		r.Why = fmt.Sprintf("%d of %d deliveries missing after %.1f s of drain", r.Missing, r.Expected, r.DrainS)
	case r.DeliveriesPerS < 0.95*rate*float64(live):
		// 95 %, not 100: arrivals are counted by arrival time, and a window
		// edge that falls in a write burst moves a few percent either way.
		r.Why = fmt.Sprintf("%.0f deliveries/s in the window, below 95%% of %.0f", r.DeliveriesPerS, rate*float64(live))
	case r.Latency.P99 > float64(f.maxP99)/1e6:
		r.Why = fmt.Sprintf("p99 %.0f ms above %s", r.Latency.P99, f.maxP99)
	case r.PublishErrors > 0:
		r.Why = fmt.Sprintf("%d publishes refused", r.PublishErrors)
	default:
		r.Sustained = true
	}
	return r, nil
}
