package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// socketio speaks Socket.IO v5 over Engine.IO v4, WebSocket transport only
// (no long-polling first), at /socket.io/ — the protocol of socket.io 4.x.
//
// Engine.IO packets are one per WebSocket message, typed by their first
// character: `0` open (with the session's ping settings), `2` ping (answered
// with `3`), `4` message. A message carries a Socket.IO packet: `0` connect to
// the namespace (`40` from us, `40{"sid":...}` back), `2` event
// (`42["message",{...}]`), `3` ack (`43<id>[...]` answering our `42<id>[...]`),
// `4` connect error. The server (../socketio/server.js) defines two events:
// `join` (room; acked) and `publish` (room, data; acked, then emitted to the
// room as `message`).
type socketio struct{}

func (socketio) path() string { return "/socket.io/?EIO=4&transport=websocket" }

func (socketio) handshake(c *conn) error {
	msg, err := c.readMessage()
	if err != nil {
		return fmt.Errorf("engine.io open: %w", err)
	}
	if len(msg) == 0 || msg[0] != '0' {
		return fmt.Errorf("engine.io open: unexpected %q", truncate(msg))
	}
	if err := c.write([]byte("40")); err != nil {
		return err
	}
	for {
		msg, err := c.readMessage()
		if err != nil {
			return fmt.Errorf("socket.io connect: %w", err)
		}
		s := string(msg)
		switch {
		case s == "2":
			c.write([]byte("3"))
		case strings.HasPrefix(s, "40"):
			return nil
		case strings.HasPrefix(s, "44"):
			return fmt.Errorf("socket.io connect refused: %s", s[2:])
		}
	}
}

func (socketio) subscribeFrame(id uint64, channel string) []byte {
	ch, _ := json.Marshal(channel)
	return []byte("42" + strconv.FormatUint(id, 10) + `["join",` + string(ch) + `]`)
}

func (socketio) publishFrame(id uint64, channel string, payload []byte) []byte {
	ch, _ := json.Marshal(channel)
	return []byte("42" + strconv.FormatUint(id, 10) + `["publish",` + string(ch) + "," + string(payload) + "]")
}

func (socketio) handle(c *conn, msg []byte) {
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case '2':
		// Engine.IO ping: answer, or the server drops us after pingTimeout.
		c.write([]byte("3"))
	case '4':
		if len(msg) < 2 {
			return
		}
		switch msg[1] {
		case '2':
			if due, ok := parseDue(msg); ok && c.onPush != nil {
				c.onPush(due)
			}
		case '3':
			// 43<id>[...]: the digits up to '[' are the id.
			end := 2
			for end < len(msg) && msg[end] >= '0' && msg[end] <= '9' {
				end++
			}
			if id, err := strconv.ParseUint(string(msg[2:end]), 10, 64); err == nil {
				if strings.Contains(string(msg[end:]), `"error"`) {
					c.settle(id, fmt.Errorf("socket.io ack: %s", truncate(msg[end:])))
				} else {
					c.settle(id, nil)
				}
			}
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
