package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// centrifugo speaks Centrifugo's client protocol (v2, JSON) at
// /connection/websocket, as an anonymous client of a server in insecure
// client mode (no token).
//
// Commands are `{"id":N,"connect":{...}}`, `{"id":N,"subscribe":{...}}` and
// `{"id":N,"publish":{...}}`; replies carry the same id (and `error` on
// failure); publications arrive as `{"push":{"channel":...,"pub":{"data":...}}}`;
// the server pings with an empty `{}` and expects `{}` back when it said
// `"pong":true` in the connect reply. One WebSocket message may hold several
// of these, one per line.
type centrifugo struct{}

func (centrifugo) path() string { return "/connection/websocket" }

type centrifugoReply struct {
	ID    uint64 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Connect *struct {
		Client string `json:"client"`
		Ping   int    `json:"ping"`
		Pong   bool   `json:"pong"`
	} `json:"connect"`
}

func (centrifugo) handshake(c *conn) error {
	// Replies carry the command's id; id 0 would mean "no reply wanted".
	id := strconv.FormatUint(c.nextID.Add(1), 10)
	if err := c.write([]byte(`{"id":` + id + `,"connect":{"name":"peerload"}}`)); err != nil {
		return err
	}
	for {
		msg, err := c.readMessage()
		if err != nil {
			return fmt.Errorf("centrifugo connect: %w", err)
		}
		for _, line := range bytes.Split(msg, []byte("\n")) {
			var r centrifugoReply
			if len(line) == 0 || json.Unmarshal(line, &r) != nil {
				continue
			}
			if r.Error != nil {
				return fmt.Errorf("centrifugo connect refused: %d %s", r.Error.Code, r.Error.Message)
			}
			if r.Connect != nil {
				return nil
			}
		}
	}
}

func (centrifugo) subscribeFrame(id uint64, channel string) []byte {
	ch, _ := json.Marshal(channel)
	return []byte(`{"id":` + strconv.FormatUint(id, 10) + `,"subscribe":{"channel":` + string(ch) + `}}`)
}

func (centrifugo) publishFrame(id uint64, channel string, payload []byte) []byte {
	ch, _ := json.Marshal(channel)
	return []byte(`{"id":` + strconv.FormatUint(id, 10) + `,"publish":{"channel":` + string(ch) + `,"data":` + string(payload) + `}}`)
}

var pushKey = []byte(`{"push":`)

func (centrifugo) handle(c *conn, msg []byte) {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		switch {
		case len(line) == 0:
		case bytes.Equal(line, []byte("{}")):
			// The server's ping: answer it, or it disconnects us.
			c.write([]byte("{}"))
		case bytes.HasPrefix(line, pushKey):
			if due, ok := parseDue(line); ok && c.onPush != nil {
				c.onPush(due)
			}
		default:
			var r centrifugoReply
			if json.Unmarshal(line, &r) != nil || r.ID == 0 {
				continue
			}
			if r.Error != nil {
				c.settle(r.ID, fmt.Errorf("centrifugo error %d: %s", r.Error.Code, r.Error.Message))
			} else {
				c.settle(r.ID, nil)
			}
		}
	}
}
