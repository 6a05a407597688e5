"use strict";
// The chat page. The HTTP API handles accounts, the conversation list and history pages; one
// WebSocket carries everything live (messages, receipts, typing, presence). The protocol is the
// project's contract (docs/protocol.md). All user text goes into the page through textContent
// (see el() below), never through innerHTML, so nobody can inject markup into someone's page.

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// State

/** The signed-in user: {user_id, token, chat_url, username, display_name}. */
let me = null;
/** conversation_id → conversation state (see conversationFor). */
const conversations = new Map();
/** The open conversation's id, or null. */
let openId = null;
/** user_id → {username, display_name}, filled lazily from GET /api/users/{id}. */
const profiles = new Map();
const profilesAsked = new Set();
/** user_id → {status, last_seen}, from presence frames. */
const presence = new Map();
/** Users we asked the server to tell us about (sent again on every reconnect). */
const presenceWanted = new Set();

const HISTORY_PAGE = 50;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_MS = 4000;

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Builds an element. Children that are strings become text nodes, so they are never parsed. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (value !== undefined && value !== null) node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** Message ids are 64-bit decimal strings: past 2^53 a JS number would round them, BigInt won't. */
const big = (id) => BigInt(id);
const maxBig = (a, b) => (a > b ? a : b);

/** Both sides derive the one direct conversation id from the ordered pair of user ids. The
 *  server orders them bytewise; user ids are ASCII, where JS string order is the same. */
function directId(a, b) {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}
function peerOf(conversationId) {
  const [, a, b] = conversationId.split(":");
  return a === me.user_id ? b : a;
}
const kindOf = (conversationId) => (conversationId.startsWith("d:") ? "direct" : "group");

function displayName(userId) {
  if (userId === me.user_id) return "You";
  const p = profiles.get(userId);
  return p ? p.display_name || p.username : "…";
}

function timeOf(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function lastSeenText(ts) {
  const minutes = Math.floor((Date.now() - ts) / 60000);
  if (minutes < 1) return "last seen just now";
  if (minutes < 60) return `last seen ${minutes} min ago`;
  const d = new Date(ts);
  if (d.toDateString() === new Date().toDateString()) return `last seen today at ${timeOf(ts)}`;
  return `last seen ${d.toLocaleDateString()} ${timeOf(ts)}`;
}

const isVisible = () => document.visibilityState === "visible";

// ---------------------------------------------------------------------------------------------
// HTTP API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (me) headers.Authorization = `Bearer ${me.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    // A rejected token (expired, or the server restarted with a new secret) means signing in again.
    if (res.status === 401 && me) signOut();
    const e = data?.error ?? {};
    throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText);
  }
  return data;
}

/** Fetches a profile once; renders again when it arrives. */
function wantProfile(userId) {
  if (profiles.has(userId) || profilesAsked.has(userId)) return;
  profilesAsked.add(userId);
  api("GET", `/api/users/${encodeURIComponent(userId)}`)
    .then((p) => profiles.set(userId, p))
    // Remembered as unknown, so a missing user is not asked for again at every render.
    .catch(() => profiles.set(userId, { username: userId, display_name: "unknown user" }))
    .finally(scheduleRender);
}

async function userByName(username) {
  try {
    const p = await api("GET", `/api/users?username=${encodeURIComponent(username)}`);
    profiles.set(p.user_id, p);
    return p;
  } catch (e) {
    throw e.status === 404 ? new Error(`No user named "${username}".`) : e;
  }
}

// ---------------------------------------------------------------------------------------------
// Conversations

function conversationFor(id) {
  let c = conversations.get(id);
  if (!c) {
    c = {
      id,
      kind: kindOf(id),
      name: null, // groups only
      peer: null, // direct only: the other user
      draft: false, // a direct chat we opened by username that the server has not seen yet
      unread: 0,
      lastId: 0n, // newest message id known; only newer messages can add to `unread`
      messages: new Map(), // message_id → message, so repeats drop out
      pending: [], // our messages not yet confirmed by `sent`, in the order typed
      delivered: 0n, // receipts are cumulative: everything up to these ids
      read: 0n,
      readSent: 0n,
      typing: new Map(), // user_id → timer that hides "is typing"
      typingSentAt: 0,
      loaded: false,
      hasOlder: false,
      members: null, // groups: user ids, fetched when opened
    };
    if (c.kind === "direct") {
      c.peer = peerOf(id);
      wantProfile(c.peer);
      watchPresence([c.peer]);
    }
    conversations.set(id, c);
  }
  return c;
}

function newestFromOthers(c) {
  let newest = 0n;
  for (const m of c.messages.values()) {
    if (m.sender_id !== me.user_id) newest = maxBig(newest, big(m.message_id));
  }
  return newest;
}

function titleOf(c) {
  if (c.kind === "direct") return displayName(c.peer);
  return c.name ?? "Group";
}

async function refreshConversations() {
  const { conversations: list } = await api("GET", "/api/conversations");
  for (const s of list) {
    const c = conversationFor(s.conversation_id);
    c.draft = false;
    if (s.name) c.name = s.name;
    const last = s.last_message_id ? big(s.last_message_id) : 0n;
    // The server counted up to `last`; messages that reached us after it are counted here.
    let newer = 0;
    for (const m of c.messages.values()) {
      if (m.sender_id !== me.user_id && big(m.message_id) > last) newer++;
    }
    c.unread = isReading(c) ? 0 : s.unread + newer;
    c.lastId = maxBig(c.lastId, last);
  }
  scheduleRender();
}

let refreshTimer = null;
/** Coalesces refreshes: a sync can bring many messages of conversations we did not know. */
function refreshConversationsSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refreshConversations().catch(showSidebarError), 200);
}

/** The user has this conversation in front of them. */
function isReading(c) {
  return c.id === openId && isVisible();
}

async function openConversation(id) {
  openId = id;
  const c = conversationFor(id);
  c.unread = 0;
  $("chat-error").textContent = "";
  $("composer-input").value = "";
  document.body.classList.add("show-chat");
  render({ scrollToEnd: true });
  $("composer-input").focus();
  try {
    if (!c.loaded && !c.draft) await loadHistory(c, false);
    if (c.kind === "group" && !c.members) await loadMembers(c);
  } catch (e) {
    showChatError(e);
  }
  if (openId === id) render({ scrollToEnd: true });
  markRead(c);
}

async function loadHistory(c, older) {
  let oldest = null;
  for (const id of c.messages.keys()) if (oldest === null || big(id) < big(oldest)) oldest = id;
  const before = older && oldest ? `&before=${oldest}` : "";
  const path = `/api/conversations/${encodeURIComponent(c.id)}/messages?limit=${HISTORY_PAGE}${before}`;
  const { messages } = await api("GET", path);
  for (const m of messages) addMessage(c, m);
  // Only the first page says whether older pages exist; later pages can only say "no more".
  if (!older || messages.length < HISTORY_PAGE) c.hasOlder = messages.length === HISTORY_PAGE;
  c.loaded = true;
}

async function loadMembers(c) {
  const { members } = await api("GET", `/api/groups/${encodeURIComponent(c.id)}/members`);
  c.members = members;
  members.forEach(wantProfile);
  watchPresence(members.filter((u) => u !== me.user_id));
}

function addMessage(c, m) {
  if (c.messages.has(m.message_id)) return false;
  c.messages.set(m.message_id, m);
  c.lastId = maxBig(c.lastId, big(m.message_id));
  if (m.sender_id !== me.user_id) wantProfile(m.sender_id);
  return true;
}

/** Tells the server the user has read the open conversation up to its newest message. */
function markRead(c) {
  if (!isReading(c) || c.draft) return;
  c.unread = 0;
  const newest = newestFromOthers(c);
  if (newest > c.readSent && wsSend({ type: "read", conversation_id: c.id, message_id: `${newest}` })) {
    c.readSent = newest;
  }
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// WebSocket

let ws = null;
let backoffMs = 500;
let awaitingPong = false;
let heartbeat = null;
let frameSeq = 0;
/** Request id of a `send` frame → the pending message it carries. */
const inflight = new Map();

function chatUrl() {
  // A signup answer has no chat_url; a login answer may name a wildcard listen address, which
  // a browser cannot dial: then this page's own host serves the WebSocket too.
  const fallback = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  if (!me.chat_url) return fallback;
  const url = new URL(me.chat_url);
  return ["0.0.0.0", "[::]"].includes(url.hostname) ? fallback : me.chat_url;
}

function connect() {
  const url = new URL(chatUrl());
  url.searchParams.set("token", me.token);
  const socket = new WebSocket(url);
  let opened = false;
  ws = socket;
  setConnection("connecting");

  socket.onopen = () => {
    opened = true;
    backoffMs = 500;
    setConnection("online");
    // The server syncs missed messages by itself on connect; what we must redo is our side:
    // presence subscriptions and the messages still waiting for `sent`.
    if (presenceWanted.size) {
      wsSend({ type: "presence_subscribe", id: `p${++frameSeq}`, user_ids: [...presenceWanted] });
    }
    for (const c of conversations.values()) c.pending.forEach(transmit);
    // A dead link can look open for minutes; an unanswered ping closes it so we reconnect.
    awaitingPong = false;
    heartbeat = setInterval(() => {
      if (awaitingPong) return socket.close();
      awaitingPong = true;
      wsSend({ type: "ping", id: `h${++frameSeq}` });
    }, 25000);
  };

  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return console.warn("not JSON:", event.data);
    }
    handleFrame(frame);
  };

  socket.onclose = async () => {
    clearInterval(heartbeat);
    inflight.clear(); // resent on the next open, with the same client_msg_id
    if (ws !== socket) return;
    ws = null;
    setConnection("offline");
    // Refused before the upgrade: maybe the token is no longer valid. api() signs out on 401.
    if (!opened) {
      try {
        await api("GET", "/api/me");
      } catch (e) {
        if (e.status === 401) return;
      }
    }
    const delay = backoffMs * (0.5 + Math.random()); // jitter: not every client at once
    backoffMs = Math.min(backoffMs * 2, 15000);
    setTimeout(connect, delay);
  };
}

/** Sends a frame if the socket is open; says whether it did. */
function wsSend(frame) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

function watchPresence(userIds) {
  const fresh = userIds.filter((u) => !presenceWanted.has(u));
  if (!fresh.length) return;
  fresh.forEach((u) => presenceWanted.add(u));
  // When closed, onopen subscribes to the whole set.
  wsSend({ type: "presence_subscribe", id: `p${++frameSeq}`, user_ids: fresh });
}

function handleFrame(f) {
  switch (f.type) {
    case "message":
      return onMessage(f.message);
    case "sent":
      return onSent(f);
    case "receipt":
      return onReceipt(f);
    case "typing":
      return onTyping(f);
    case "presence":
      presence.set(f.user_id, { status: f.status, last_seen: f.last_seen });
      return scheduleRender();
    case "synced":
      // After a reconnect, counts and group names may have changed while we were away.
      return refreshConversationsSoon();
    case "error":
      return onError(f);
    case "pong":
      awaitingPong = false;
      return;
    default:
      return; // frame types added later are not for this page
  }
}

// Acks are cumulative, so one per conversation covers a whole burst: they wait 50 ms and go out
// as one frame per conversation (a sync of hundreds of messages costs a few frames of the
// server's write budget, not hundreds).
const pendingAcks = new Map(); // conversation_id → newest message id (BigInt) to ack
let ackTimer = null;

function queueAck(m) {
  const id = big(m.message_id);
  const queued = pendingAcks.get(m.conversation_id);
  if (queued === undefined || id > queued) pendingAcks.set(m.conversation_id, id);
  if (ackTimer === null) ackTimer = setTimeout(flushAcks, 50);
}

function flushAcks() {
  ackTimer = null;
  // An ack that cannot go out now is not lost: the server sends the message again at the next
  // connect until it is acked.
  for (const [conversationId, id] of pendingAcks) {
    wsSend({ type: "ack", conversation_id: conversationId, message_id: `${id}` });
  }
  pendingAcks.clear();
}

function onMessage(m) {
  // Ack even repeats: the server sends a message again at every connect until it is acked.
  queueAck(m);
  const known = conversations.has(m.conversation_id);
  const c = conversationFor(m.conversation_id);
  c.draft = false;
  const previousLast = c.lastId;
  if (!addMessage(c, m)) return;
  if (!known) refreshConversationsSoon(); // a new group: fetch its name
  if (m.sender_id !== me.user_id) {
    clearTimeout(c.typing.get(m.sender_id)); // they finished typing this one
    c.typing.delete(m.sender_id);
    // Messages up to the last id the server reported are already in its unread count.
    if (big(m.message_id) > previousLast && !isReading(c)) c.unread++;
  }
  if (c.id === openId) markRead(c);
  scheduleRender();
}

function onSent(f) {
  const p = inflight.get(f.reply_to);
  if (!p) return;
  inflight.delete(f.reply_to);
  let c = p.conversation;
  c.pending = c.pending.filter((q) => q !== p);
  if (c.id !== f.conversation_id) c = rekey(c, f.conversation_id);
  c.draft = false;
  addMessage(c, {
    message_id: f.message_id,
    conversation_id: f.conversation_id,
    sender_id: me.user_id,
    body: p.body,
    ts: f.ts,
  });
  scheduleRender({ scrollToEnd: c.id === openId });
}

/** Only if the server named a direct conversation differently from directId(): follow it. */
function rekey(c, id) {
  conversations.delete(c.id);
  const target = conversationFor(id);
  for (const [k, m] of c.messages) target.messages.set(k, m);
  for (const p of c.pending) p.conversation = target;
  target.pending.push(...c.pending);
  if (openId === c.id) openId = id;
  return target;
}

function onReceipt(f) {
  const c = conversations.get(f.conversation_id);
  if (!c || f.user_id === me.user_id) return;
  const id = big(f.message_id);
  // In a group the marks show the furthest any member got: enough for a small example page.
  c.delivered = maxBig(c.delivered, id);
  if (f.status === "read") c.read = maxBig(c.read, id);
  scheduleRender();
}

function onTyping(f) {
  const c = conversations.get(f.conversation_id);
  if (!c || f.user_id === me.user_id) return;
  wantProfile(f.user_id);
  clearTimeout(c.typing.get(f.user_id));
  c.typing.set(
    f.user_id,
    setTimeout(() => {
      c.typing.delete(f.user_id);
      scheduleRender();
    }, TYPING_SHOW_MS),
  );
  scheduleRender();
}

function onError(f) {
  const p = f.reply_to && inflight.get(f.reply_to);
  // An ack, read or typing frame over the server's budget: each is sent again in due course
  // (acks at the next connect, reads at the next view, typing at the next keystroke).
  if (!p && f.code === "rate_limited") return;
  if (!p) return showChatError(new Error(`${f.code}: ${f.message}`));
  inflight.delete(f.reply_to);
  // Neither error stored the message: the same client_msg_id keeps a retry from doubling it.
  if (f.code === "unavailable" || f.code === "rate_limited") {
    p.attempts++;
    setTimeout(() => transmit(p), Math.min(250 * 2 ** p.attempts, 8000));
    return;
  }
  p.failed = `${f.code}: ${f.message}`;
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// Sending

function sendMessage(c, body) {
  const p = { conversation: c, body, client_msg_id: crypto.randomUUID(), attempts: 0, failed: null };
  c.pending.push(p);
  transmit(p);
  scheduleRender({ scrollToEnd: true });
}

/** Puts a pending message on the wire, or leaves it for the next onopen. */
function transmit(p) {
  if (p.failed || !p.conversation.pending.includes(p)) return;
  const id = `s${++frameSeq}`;
  const frame = { type: "send", id, body: p.body, client_msg_id: p.client_msg_id };
  // A draft has no conversation on the server yet: "to" creates it.
  if (p.conversation.draft) frame.to = p.conversation.peer;
  else frame.conversation_id = p.conversation.id;
  if (wsSend(frame)) inflight.set(id, p);
}

function sendTyping() {
  const c = conversations.get(openId);
  if (!c || c.draft || !$("composer-input").value) return;
  const now = Date.now();
  if (now - c.typingSentAt < TYPING_SEND_EVERY_MS) return;
  if (wsSend({ type: "typing", conversation_id: c.id })) c.typingSentAt = now;
}

// ---------------------------------------------------------------------------------------------
// Rendering. Everything is drawn again from the state above; scheduleRender batches the many
// changes of one burst of frames (a sync after reconnect) into one redraw.

let renderQueued = null;
function scheduleRender(opts = {}) {
  if (renderQueued) {
    renderQueued.scrollToEnd ||= opts.scrollToEnd;
    return;
  }
  renderQueued = { ...opts };
  setTimeout(() => {
    const o = renderQueued;
    renderQueued = null;
    render(o);
  }, 0);
}

function render(opts = {}) {
  if (!me) return;
  renderList();
  renderChat(opts);
  const unread = [...conversations.values()].reduce((n, c) => n + c.unread, 0);
  document.title = unread ? `(${unread}) chat` : "chat";
}

function presenceDot(userId) {
  const online = presence.get(userId)?.status === "online";
  return el("span", { className: `dot ${online ? "online" : ""}`, title: online ? "online" : "offline" });
}

function typingText(c) {
  const names = [...c.typing.keys()].map(displayName);
  if (!names.length) return "";
  return names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
}

function sortedConversations() {
  // Newest activity first; snowflake ids sort by time. Empty ones (just created) go on top.
  const rank = (c) => (c.lastId === 0n ? 1n << 64n : c.lastId);
  return [...conversations.values()].sort((a, b) => (rank(a) > rank(b) ? -1 : rank(a) < rank(b) ? 1 : 0));
}

function lastMessage(c) {
  let last = null;
  for (const m of c.messages.values()) if (!last || big(m.message_id) > big(last.message_id)) last = m;
  return last;
}

function renderList() {
  const items = sortedConversations().map((c) => {
    const last = lastMessage(c);
    const preview = typingText(c) || (last ? `${last.sender_id === me.user_id ? "You: " : ""}${last.body}` : "");
    const title = titleOf(c);
    const button = el(
      "button",
      { type: "button", className: `conv${c.id === openId ? " active" : ""}`, dataset: { id: c.id } },
      el("span", { className: "avatar", ariaHidden: "true" }, ([...title][0] ?? "?").toUpperCase(), c.kind === "direct" ? presenceDot(c.peer) : null),
      el(
        "span",
        { className: "conv-main" },
        el("span", { className: "conv-name", textContent: title }),
        el("span", { className: `conv-preview${c.typing.size ? " is-typing" : ""}`, textContent: preview }),
      ),
      c.unread ? el("span", { className: "badge", textContent: `${c.unread}`, title: "unread" }) : null,
    );
    button.addEventListener("click", () => openConversation(c.id));
    return el("li", {}, button);
  });
  $("conv-list").replaceChildren(...items);
  if (!items.length) $("conv-list").append(el("li", { className: "empty", textContent: "No conversations yet." }));
}

function subtitleOf(c) {
  if (c.kind === "direct") {
    const p = presence.get(c.peer);
    if (p?.status === "online") return "online";
    if (p?.last_seen) return lastSeenText(p.last_seen);
    return profiles.get(c.peer) ? `@${profiles.get(c.peer).username}` : "";
  }
  if (!c.members) return "";
  const online = c.members.filter((u) => u !== me.user_id && presence.get(u)?.status === "online").length;
  return `${c.members.length} members, ${online} online`;
}

function markOf(c, p, m) {
  if (p) return p.failed ? { text: "!", title: p.failed, cls: "failed" } : { text: "○", title: "sending", cls: "sending" };
  const id = big(m.message_id);
  if (id <= c.read) return { text: "✓✓", title: "read", cls: "read" };
  if (id <= c.delivered) return { text: "✓", title: "delivered", cls: "delivered" };
  return { text: "", title: "sent", cls: "sent" };
}

function messageItem(c, m, p) {
  const mine = m.sender_id === me.user_id;
  const mark = mine ? markOf(c, p, m) : null;
  return el(
    "li",
    { className: `msg ${mine ? "mine" : "theirs"}`, dataset: m.message_id ? { id: m.message_id } : {} },
    c.kind === "group" && !mine ? el("span", { className: "sender", textContent: displayName(m.sender_id) }) : null,
    el("span", { className: "body", textContent: m.body }),
    el(
      "span",
      { className: "meta" },
      m.ts ? el("time", { dateTime: new Date(m.ts).toISOString(), textContent: timeOf(m.ts) }) : null,
      mark ? el("span", { className: `mark ${mark.cls}`, title: mark.title, textContent: mark.text }) : null,
    ),
  );
}

function renderChat({ scrollToEnd = false } = {}) {
  const c = openId && conversations.get(openId);
  $("chat-empty").hidden = !!c;
  $("chat-pane").hidden = !c;
  if (!c) return;
  $("chat-title").textContent = titleOf(c);
  $("chat-subtitle").textContent = subtitleOf(c);
  $("member-form").hidden = c.kind !== "group";
  $("typing").textContent = typingText(c);
  $("older-btn").hidden = !c.hasOlder;

  const box = $("messages");
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const fromEnd = box.scrollHeight - box.scrollTop;
  const stored = [...c.messages.values()].sort((a, b) => {
    const x = big(a.message_id);
    const y = big(b.message_id);
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const items = stored.map((m) => messageItem(c, m, null));
  for (const p of c.pending) items.push(messageItem(c, { sender_id: me.user_id, body: p.body }, p));
  $("message-list").replaceChildren(...items);
  // Follow new messages only when the reader was already at the end; otherwise keep their place.
  if (scrollToEnd || atEnd) box.scrollTop = box.scrollHeight;
  else box.scrollTop = box.scrollHeight - fromEnd;
}

function setConnection(state) {
  const node = $("conn-status");
  node.className = `conn ${state}`;
  node.textContent = { online: "", connecting: "connecting…", offline: "offline, reconnecting…" }[state];
  node.title = state;
}

function showChatError(e) {
  $("chat-error").textContent = e.message;
}
function showSidebarError(e) {
  $("sidebar-error").textContent = e.message;
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

const SESSION_KEY = "chat.session";

async function startSession(saved) {
  me = saved;
  try {
    const p = await api("GET", "/api/me");
    Object.assign(me, { username: p.username, display_name: p.display_name });
    profiles.set(me.user_id, p);
  } catch (e) {
    if (e.status === 401) return; // signOut already showed the form
    throw e;
  }
  $("me-name").textContent = me.display_name || me.username;
  $("auth").hidden = true;
  $("app").hidden = false;
  connect();
  refreshConversations().catch(showSidebarError);
}

function signOut() {
  // sessionStorage, not localStorage: each tab is its own user. A reload drops every piece of
  // state (socket, timers, caches) at once.
  sessionStorage.removeItem(SESSION_KEY);
  me = null;
  location.reload();
}

async function onAuthSubmit(event) {
  event.preventDefault();
  const action = event.submitter?.value === "signup" ? "signup" : "login";
  const username = $("auth-username").value.trim();
  const password = $("auth-password").value;
  $("auth-error").textContent = "";
  try {
    const answer = await api("POST", `/api/${action}`, { username, password });
    const saved = { user_id: answer.user_id, token: answer.token, chat_url: answer.chat_url ?? null };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
    await startSession(saved);
  } catch (e) {
    $("auth-error").textContent = e.status === 401 ? "Wrong username or password." : e.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Forms

async function onDirectSubmit(event) {
  event.preventDefault();
  $("sidebar-error").textContent = "";
  try {
    const p = await userByName($("direct-username").value.trim());
    if (p.user_id === me.user_id) throw new Error("That is you: pick someone else.");
    const id = directId(me.user_id, p.user_id);
    if (!conversations.has(id)) conversationFor(id).draft = true;
    $("direct-username").value = "";
    await openConversation(id);
  } catch (e) {
    showSidebarError(e);
  }
}

async function onGroupSubmit(event) {
  event.preventDefault();
  $("sidebar-error").textContent = "";
  try {
    const usernames = $("group-members").value.split(/[\s,]+/).filter(Boolean);
    const members = await Promise.all(usernames.map((u) => userByName(u).then((p) => p.user_id)));
    const name = $("group-name").value.trim();
    const { conversation_id } = await api("POST", "/api/groups", { name, members });
    conversationFor(conversation_id).name = name;
    $("group-form").reset();
    $("group-form").closest("details").open = false;
    await openConversation(conversation_id);
  } catch (e) {
    showSidebarError(e);
  }
}

async function onMemberSubmit(event) {
  event.preventDefault();
  const c = conversations.get(openId);
  $("chat-error").textContent = "";
  try {
    const p = await userByName($("member-username").value.trim());
    await api("POST", `/api/groups/${encodeURIComponent(c.id)}/members`, { user_id: p.user_id });
    $("member-username").value = "";
    await loadMembers(c);
    render();
  } catch (e) {
    showChatError(e);
  }
}

function onComposerSubmit(event) {
  event.preventDefault();
  const input = $("composer-input");
  const body = input.value.trim();
  const c = conversations.get(openId);
  if (!body || !c) return;
  input.value = "";
  sendMessage(c, body);
}

async function onOlderClick() {
  const c = conversations.get(openId);
  try {
    await loadHistory(c, true);
    render();
  } catch (e) {
    showChatError(e);
  }
}

// ---------------------------------------------------------------------------------------------
// Start

function main() {
  $("auth-form").addEventListener("submit", onAuthSubmit);
  $("logout-btn").addEventListener("click", signOut);
  $("direct-form").addEventListener("submit", onDirectSubmit);
  $("group-form").addEventListener("submit", onGroupSubmit);
  $("member-form").addEventListener("submit", onMemberSubmit);
  $("composer").addEventListener("submit", onComposerSubmit);
  $("composer-input").addEventListener("input", sendTyping);
  $("older-btn").addEventListener("click", onOlderClick);
  $("back-btn").addEventListener("click", () => {
    openId = null;
    document.body.classList.remove("show-chat");
    render();
  });
  // Coming back to the tab reads what arrived meanwhile.
  document.addEventListener("visibilitychange", () => {
    const c = openId && conversations.get(openId);
    if (c) markRead(c);
  });
  // "last seen 3 min ago" ages by itself.
  setInterval(() => me && renderChat(), 60000);

  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    sessionStorage.removeItem(SESSION_KEY);
  }
  if (saved?.token) {
    startSession(saved).catch((e) => {
      $("auth").hidden = false;
      $("auth-error").textContent = e.message;
    });
  } else {
    $("auth").hidden = false;
    $("auth-username").focus();
  }
}

main();
