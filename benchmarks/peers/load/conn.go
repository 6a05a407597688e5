package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// protocol is one peer's wire protocol over a WebSocket: just enough of it to
// connect, subscribe, publish, answer the server's pings and read pushes.
type protocol interface {
	// path is the WebSocket endpoint, with its query.
	path() string
	// handshake runs the protocol's own connect exchange on a fresh socket,
	// before the read loop starts.
	handshake(c *conn) error
	// subscribeFrame asks to receive what is published on channel.
	subscribeFrame(id uint64, channel string) []byte
	// publishFrame publishes payload (a JSON object) on channel.
	publishFrame(id uint64, channel string, payload []byte) []byte
	// handle reads one WebSocket message from the server: pings are answered,
	// replies settle their request, pushes go to c.onPush.
	handle(c *conn, msg []byte)
}

// conn is one client connection of either peer.
type conn struct {
	ws    *websocket.Conn
	proto protocol
	// onPush gets the due time (ns on the run's clock) of each published
	// message this connection receives.
	onPush func(dueNs int64)

	writeMu sync.Mutex
	nextID  atomic.Uint64

	mu      sync.Mutex
	waiting map[uint64]chan error

	// replyErrors counts error replies to requests nobody waits for
	// (publishes).
	replyErrors atomic.Uint64
	// done is closed when the read loop ends; err says why.
	done chan struct{}
	err  error
}

var errClosed = errors.New("connection closed")

// dial opens a WebSocket to server from the loopback source address src (nil:
// the OS picks) and runs the peer's handshake.
func dial(ctx context.Context, proto protocol, server string, src net.IP, onPush func(int64)) (*conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	wsd := websocket.Dialer{
		NetDialContext:   d.DialContext,
		HandshakeTimeout: 10 * time.Second,
		// Small buffers: the client's memory is not what is measured, but
		// 10,000 connections should not need gigabytes either.
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
	}
	ws, resp, err := wsd.DialContext(ctx, "ws://"+server+proto.path(), http.Header{})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket handshake: %w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	c := &conn{ws: ws, proto: proto, onPush: onPush, waiting: map[uint64]chan error{}, done: make(chan struct{})}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := proto.handshake(c); err != nil {
		ws.Close()
		return nil, err
	}
	ws.SetReadDeadline(time.Time{})
	go c.readLoop()
	return c, nil
}

// readMessage reads one whole WebSocket message (used by handshakes, before
// the read loop runs).
func (c *conn) readMessage() ([]byte, error) {
	_, msg, err := c.ws.ReadMessage()
	return msg, err
}

func (c *conn) readLoop() {
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.err = err
			c.mu.Lock()
			for id, ch := range c.waiting {
				ch <- errClosed
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			close(c.done)
			return
		}
		c.proto.handle(c, buf.Bytes())
	}
}

// write sends one text message; safe from any goroutine.
func (c *conn) write(msg []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(websocket.TextMessage, msg)
}

// request sends a frame built for a new id and waits for its reply.
func (c *conn) request(build func(id uint64) []byte, timeout time.Duration) error {
	id := c.nextID.Add(1)
	ch := make(chan error, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	if err := c.write(build(id)); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("no reply to request %d in %s", id, timeout)
	}
}

// settle hands a reply to whoever waits for it; an error reply nobody waits
// for is counted.
func (c *conn) settle(id uint64, err error) {
	c.mu.Lock()
	ch, ok := c.waiting[id]
	delete(c.waiting, id)
	c.mu.Unlock()
	if ok {
		ch <- err
	} else if err != nil {
		c.replyErrors.Add(1)
	}
}

// subscribe joins channel and waits for the server's yes.
func (c *conn) subscribe(channel string) error {
	return c.request(func(id uint64) []byte { return c.proto.subscribeFrame(id, channel) }, 10*time.Second)
}

// publish sends payload to channel without waiting for the reply.
func (c *conn) publish(channel string, payload []byte) error {
	return c.write(c.proto.publishFrame(c.nextID.Add(1), channel, payload))
}

// alive is false once the server closed the connection or it failed.
func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *conn) close() {
	c.writeMu.Lock()
	c.ws.SetWriteDeadline(time.Now().Add(time.Second))
	c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.writeMu.Unlock()
	c.ws.Close()
}

// dueKey is the payload field carrying the due time; every message published
// by this tool carries it, and nothing else in either peer's envelopes does.
var dueKey = []byte(`"due_ns":`)

// parseDue finds the due time in one pushed message without decoding the
// rest: the client shares two cores with the server, so it stays cheap.
func parseDue(msg []byte) (int64, bool) {
	i := bytes.Index(msg, dueKey)
	if i < 0 {
		return 0, false
	}
	var n int64
	digits := 0
	for _, b := range msg[i+len(dueKey):] {
		if b < '0' || b > '9' {
			break
		}
		n = n*10 + int64(b-'0')
		digits++
	}
	return n, digits > 0
}
