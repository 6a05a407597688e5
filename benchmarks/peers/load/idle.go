package main

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// maxConnsPerProcess keeps one client process under the machine's 20,000
// open files per process; more connections need more peerload processes.
const maxConnsPerProcess = 19_000

type idleReport struct {
	Peer          string  `json:"peer"`
	Connections   int     `json:"connections"`
	Opened        int     `json:"opened"`
	Failed        int     `json:"failed"`
	FirstFailure  string  `json:"first_failure,omitempty"`
	AliveAtRead   int     `json:"alive_at_read"`
	SetupS        float64 `json:"setup_s"`
	SettleS       float64 `json:"settle_s"`
	RSSBeforeKiB  int64   `json:"rss_before_kib"`
	RSSAfterKiB   int64   `json:"rss_after_kib"`
	KiBPerConn    float64 `json:"kib_per_conn"`
	ServerCPUSetS float64 `json:"server_cpu_setup_s"`
}

func runIdle(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	var c common
	c.register(fs)
	n := fs.Int("connections", 10_000, "connections to hold open")
	channel := fs.String("channel", "user:%d", "each connection's own channel (printf pattern over its index)")
	concurrency := fs.Int("concurrency", 64, "handshakes in flight at once")
	settle := fs.Duration("settle", 10*time.Second, "idle time after the last connection opened, before RSS is read")
	fs.Parse(args)
	proto, srcs, err := c.resolve()
	if err != nil {
		return err
	}
	if *n < 1 || *n > maxConnsPerProcess {
		return fmt.Errorf("--connections must be from 1 to %d per process (the 20,000 open-file cap)", maxConnsPerProcess)
	}
	if *concurrency < 1 || *concurrency > 1024 {
		return fmt.Errorf("--concurrency must be from 1 to 1024")
	}
	if *settle < 0 || *settle > 10*time.Minute {
		return fmt.Errorf("--settle must be from 0 to 10m")
	}

	rep := idleReport{Peer: c.peer, Connections: *n, SettleS: settle.Seconds()}
	if rep.RSSBeforeKiB, err = rssKiB(c.pid); err != nil {
		return err
	}
	cpu0, _ := cpuSeconds(c.pid)
	start := time.Now()
	conns := make([]*conn, *n)
	var failed atomic.Int64
	var firstErr sync.Once
	sem := make(chan struct{}, *concurrency)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for i := 0; i < *n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			cn, err := dial(ctx, proto, c.server, sourceFor(srcs, i), nil)
			if err == nil {
				if err = cn.subscribe(fmt.Sprintf(*channel, i)); err != nil {
					cn.close()
				}
			}
			if err != nil {
				failed.Add(1)
				firstErr.Do(func() { rep.FirstFailure = err.Error() })
				return
			}
			conns[i] = cn
		}(i)
		if (i+1)%2000 == 0 {
			logf("%s idle: %d connections started", c.peer, i+1)
		}
	}
	wg.Wait()
	rep.SetupS = time.Since(start).Seconds()
	rep.Failed = int(failed.Load())
	rep.Opened = *n - rep.Failed
	cpu1, _ := cpuSeconds(c.pid)
	rep.ServerCPUSetS = cpu1 - cpu0
	logf("%s idle: %d open, %d failed in %.1f s; idling %s", c.peer, rep.Opened, rep.Failed, rep.SetupS, *settle)
	time.Sleep(*settle)
	if rep.RSSAfterKiB, err = rssKiB(c.pid); err != nil {
		return err
	}
	for _, cn := range conns {
		if cn != nil && cn.alive() {
			rep.AliveAtRead++
		}
	}
	if rep.AliveAtRead > 0 {
		rep.KiBPerConn = float64(rep.RSSAfterKiB-rep.RSSBeforeKiB) / float64(rep.AliveAtRead)
	}
	// Close in parallel so that the next run does not wait on us.
	var cw sync.WaitGroup
	for _, cn := range conns {
		if cn != nil {
			cw.Add(1)
			sem <- struct{}{}
			go func(cn *conn) { defer func() { <-sem; cw.Done() }(); cn.close() }(cn)
		}
	}
	cw.Wait()
	if err := printJSON(rep); err != nil {
		return err
	}
	if rep.AliveAtRead != *n {
		return fmt.Errorf("%d of %d connections were open when RSS was read", rep.AliveAtRead, *n)
	}
	return nil
}
