"use strict";
// The chat page. The HTTP API handles accounts, the conversation list, groups and history pages;
// one WebSocket carries everything live (messages and their edits, deletes and reactions, group
// events, receipts, typing, presence). The protocol is the project's contract (docs/protocol.md).
// All user text goes into the page through textContent (see el() below), never through
// innerHTML, so nobody can inject markup into someone's page.
//
// The page is split into plain scripts that share one global scope, loaded in this order:
// cache.js (the local copy in IndexedDB), groups.js (the members panel, invites, joining by
// link), account.js (devices, blocking) and this file, which holds the state, the connection and
// the conversation view, and starts the page.

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// State

/** The signed-in user: {user_id, device_id, token, chat_url, username, display_name}. */
let me = null;
/** conversation_id → conversation state (see conversationFor). */
const conversations = new Map();
/** The open conversation's id, or null. */
let openId = null;
/** What the main area shows: "chat" (the open conversation, if any) or "account". */
let view = "chat";
/** user_id → {user_id, username, display_name}, from GET /api/users/{id} or the local copy. */
const profiles = new Map();
const profilesAsked = new Set();
/** user_id → {status, last_seen}, from presence frames. */
const presence = new Map();
/** Users we asked the server to tell us about (sent again on every reconnect). */
const presenceWanted = new Set();
/** Users this user blocked (GET /api/blocks). */
const blocked = new Set();

/** What the composer does with its text: a plain message, a reply, or an edit. */
let composer = { mode: null, messageId: null };
/** The message whose reaction picker is open, and the one whose deletion awaits a second click. */
let pickerFor = null;
let confirmDeleteOf = null;

const HISTORY_PAGE = 50;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_SHOW_MS = 4000;
const QUICK_REACTIONS = ["👍", "❤️", "😂", "😮", "😢", "🙏"];
/** A cached profile older than this is asked for again (display names change). */
const PROFILE_FRESH_MS = 3600_000;

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Builds an element. Children that are strings become text nodes, so they are never parsed. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "onclick") node.addEventListener("click", value);
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
const byId = (a, b) => {
  const x = big(a.message_id);
  const y = big(b.message_id);
  return x < y ? -1 : x > y ? 1 : 0;
};
/** A message's kind; the contract lets a plain message leave it out. */
const kindOfEntry = (m) => m.kind ?? "text";

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

/** A name inside a sentence: "you" for this user, except at its start. */
function nameIn(userId, atStart = false) {
  if (userId === me.user_id) return atStart ? "You" : "you";
  return displayName(userId);
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

/** At most `n` characters of a body, for previews and quotes. */
function snippet(text, n = 80) {
  const chars = [...text];
  return chars.length > n ? `${chars.slice(0, n).join("")}…` : text;
}

/** An error as the person should read it: the server's message, and its code to look up. */
function errorText(e) {
  if (e instanceof ApiError) return `${e.message} (${e.code})`;
  return e.message ?? String(e);
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
    // A rejected token (expired, its device logged out, or the server restarted with a new
    // secret) means signing in again.
    if (res.status === 401 && me) signOut("Your session has ended: log in again.");
    const e = data?.error ?? {};
    throw new ApiError(res.status, e.code ?? `http_${res.status}`, e.message ?? res.statusText);
  }
  return data;
}

/** Fetches a profile once per page (unless the local copy has a fresh one); renders again. */
function wantProfile(userId) {
  const known = profiles.get(userId);
  if (profilesAsked.has(userId) || (known && Date.now() - (known.fetched_at ?? 0) < PROFILE_FRESH_MS)) {
    return;
  }
  profilesAsked.add(userId);
  api("GET", `/api/users/${encodeURIComponent(userId)}`)
    .then((p) => rememberProfile(p))
    // Remembered as unknown (not stored), so a missing user is not asked for again at every render.
    .catch(() => known || profiles.set(userId, { user_id: userId, username: userId, display_name: "unknown user" }))
    .finally(scheduleRender);
}

function rememberProfile(p) {
  const stored = { user_id: p.user_id, username: p.username, display_name: p.display_name, fetched_at: Date.now() };
  profiles.set(p.user_id, stored);
  LocalCache.markProfile(stored);
  return stored;
}

async function userByName(username) {
  try {
    return rememberProfile(await api("GET", `/api/users?username=${encodeURIComponent(username)}`));
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
      lastId: 0n, // newest entry id known (messages and events); only newer ones add to `unread`
      lastOther: 0n, // newest entry id from someone else: what `read` covers
      seen: 0n, // newest entry id this page received (not just heard of): where group event lines go
      messages: new Map(), // message_id → text message as it is now, so repeats drop out
      notices: [], // group events as timeline lines: {after, seq, event, user_id, by, role}
      pending: [], // our sends and events not yet confirmed by `sent`, in the order made
      delivered: 0n, // receipts are cumulative: everything up to these ids
      read: 0n,
      readSent: 0n,
      typing: new Map(), // user_id → timer that hides "is typing"
      typingSentAt: 0,
      historyLoaded: false, // the newest history page was fetched once (older ones on demand)
      hasOlder: false,
      members: null, // groups: user ids
      roles: {}, // groups: user_id → "owner" | "admin" (others are plain members)
      join: null, // groups: "invite" | "open"
      history: null, // groups: "since_join" | "all"
      membersFresh: false, // the members were fetched since this page loaded
      left: false, // this user is no longer a member of the group
      joinedAt: 0, // when this page last saw this user join (or create) the group
      invites: [], // invite codes this user made here: {code, max_uses, expires_at}
      text: "", // what was typed in the composer and not sent, kept while another chat is open
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

/** The conversation's record in the local copy (its messages are stored one by one). */
function recordOf(c) {
  return {
    id: c.id,
    kind: c.kind,
    name: c.name,
    draft: c.draft,
    unread: c.unread,
    lastId: `${c.lastId}`,
    lastOther: `${c.lastOther}`,
    seen: `${c.seen}`,
    delivered: `${c.delivered}`,
    read: `${c.read}`,
    readSent: `${c.readSent}`,
    historyLoaded: c.historyLoaded,
    hasOlder: c.hasOlder,
    members: c.members,
    roles: c.roles,
    join: c.join,
    history: c.history,
    left: c.left,
    notices: c.notices,
    invites: c.invites,
    text: c.text,
    // What was typed and not confirmed survives a reload; the same client_msg_id keeps the
    // resend from storing it twice.
    outbox: c.pending.map((p) => ({
      type: p.type,
      body: p.body,
      ref: p.ref,
      in_reply_to: p.in_reply_to,
      client_msg_id: p.client_msg_id,
      failed: p.failed,
    })),
  };
}

/** The conversation changed: its record is stored with the next write. */
function touch(c) {
  LocalCache.markConversation(c.id, () => recordOf(c));
}

/** Fills the state from the local copy, before anything is asked of the network. */
function restore({ conversations: records, messages, profiles: people }) {
  for (const p of people) profiles.set(p.user_id, p);
  for (const r of records) {
    const c = conversationFor(r.id);
    Object.assign(c, {
      name: r.name,
      draft: !!r.draft,
      unread: r.unread ?? 0,
      lastId: big(r.lastId ?? "0"),
      lastOther: big(r.lastOther ?? "0"),
      seen: big(r.seen ?? "0"),
      delivered: big(r.delivered ?? "0"),
      read: big(r.read ?? "0"),
      readSent: big(r.readSent ?? "0"),
      historyLoaded: !!r.historyLoaded,
      hasOlder: !!r.hasOlder,
      members: r.members ?? null,
      roles: r.roles ?? {},
      join: r.join ?? null,
      history: r.history ?? null,
      left: !!r.left,
      notices: r.notices ?? [],
      invites: r.invites ?? [],
      text: r.text ?? "",
    });
    c.pending = (r.outbox ?? []).map((o) => ({ ...o, conversation: c, attempts: 0 }));
  }
  for (const m of messages) conversationFor(m.conversation_id).messages.set(m.message_id, m);
}

function titleOf(c) {
  if (c.kind === "direct") return displayName(c.peer);
  return c.name ?? "Group";
}

async function refreshConversations() {
  // Groups joined while the list is on its way are not in it, and are not "left".
  const asked = Date.now();
  const { conversations: list } = await api("GET", "/api/conversations");
  const listed = new Set();
  for (const s of list) {
    listed.add(s.conversation_id);
    const c = conversationFor(s.conversation_id);
    c.draft = false;
    c.left = false;
    if (s.name) c.name = s.name;
    const last = s.last_message_id ? big(s.last_message_id) : 0n;
    // The server counted up to `last`; messages that reached us after it are counted here.
    let newer = 0;
    for (const m of c.messages.values()) {
      if (m.sender_id !== me.user_id && big(m.message_id) > last) newer++;
    }
    c.unread = isReading(c) ? 0 : s.unread + newer;
    c.lastId = maxBig(c.lastId, last);
    touch(c);
  }
  // A group this device still holds but the server no longer lists: left or removed meanwhile
  // (a removed member is told once, live; one that was away learns it here).
  for (const c of conversations.values()) {
    if (c.kind === "group" && !listed.has(c.id) && !c.left && !(c.joinedAt > asked)) {
      c.left = true;
      touch(c);
    }
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
  return c.id === openId && view === "chat" && isVisible();
}

async function openConversation(id) {
  const previous = openId && conversations.get(openId);
  if (previous && previous.id !== id) previous.text = $("composer-input").value;
  if (openId !== id) resetComposer();
  openId = id;
  view = "chat";
  sessionStorage.setItem(OPEN_KEY, id);
  const c = conversationFor(id);
  if (c.unread) {
    c.unread = 0;
    touch(c);
  }
  $("chat-error").textContent = "";
  $("composer-input").value = c.text;
  document.body.classList.add("show-chat");
  render({ scrollToEnd: true });
  $("composer-input").focus();
  try {
    // The local copy holds everything this device received; history is asked for once, for what
    // came before this device (or this member) was there.
    if (!c.historyLoaded && !c.draft) await loadHistory(c, false);
    if (c.kind === "group" && !c.membersFresh && !c.left) await loadMembers(c);
  } catch (e) {
    showChatError(e);
  }
  if (openId === id) render({ scrollToEnd: true });
  markRead(c);
}

async function loadHistory(c, older) {
  let oldest = null;
  for (const id of c.messages.keys()) if (oldest === null || big(id) < big(oldest)) oldest = id;
  // The answer shows each message as it is when the server reads it, which includes every event
  // this page has received so far (all at most lastId now).
  const snapshot = c.lastId;
  const before = older && oldest ? `&before=${oldest}` : "";
  const path = `/api/conversations/${encodeURIComponent(c.id)}/messages?limit=${HISTORY_PAGE}${before}`;
  const { messages } = await api("GET", path);
  let asOf = snapshot;
  for (const m of messages) asOf = maxBig(asOf, big(m.message_id));
  for (const m of messages) addFromHistory(c, m, asOf);
  // Only the first page says whether older pages exist; later pages can only say "no more".
  if (!older || messages.length < HISTORY_PAGE) c.hasOlder = messages.length === HISTORY_PAGE;
  c.historyLoaded = true;
  touch(c);
}

/** Fetches a group's members, roles and settings. */
async function loadMembers(c) {
  const g = await api("GET", `/api/groups/${encodeURIComponent(c.id)}/members`);
  applyGroup(c, g);
}

/** The group as the members call (or a settings change) answers it. */
function applyGroup(c, g) {
  c.members = g.members;
  c.roles = g.roles ?? {};
  if (g.name) c.name = g.name;
  c.join = g.join ?? c.join;
  c.history = g.history ?? c.history;
  c.membersFresh = true;
  c.left = !c.members.includes(me.user_id);
  touch(c);
  c.members.forEach(wantProfile);
  watchPresence(c.members.filter((u) => u !== me.user_id));
  scheduleRender();
}

/** This user's role in a group: "owner", "admin" or "member". */
const myRole = (c) => c.roles?.[me.user_id] ?? "member";
const manages = (c) => c.kind === "group" && !c.left && ["owner", "admin"].includes(myRole(c));

// ---------------------------------------------------------------------------------------------
// Entries: messages, and the events about them (edit, delete, reaction)

/** A message or event that arrived live (or by sync); says whether the view changed. */
function addEntry(c, m) {
  const id = big(m.message_id);
  c.lastId = maxBig(c.lastId, id);
  c.seen = maxBig(c.seen, id);
  if (m.sender_id !== me.user_id) c.lastOther = maxBig(c.lastOther, id);
  touch(c);
  if (kindOfEntry(m) !== "text") return applyEvent(c, m);
  if (c.messages.has(m.message_id)) return false;
  storeMessage(c, { ...m, _v: m.message_id });
  if (m.sender_id !== me.user_id) wantProfile(m.sender_id);
  return true;
}

/**
 * A message from a history page, as it is now. `asOf` is an id no smaller than every event the
 * page reflects; a message changed live by a newer event keeps that change. Events listed in the
 * page are already reflected in their targets, so they are not applied again.
 */
function addFromHistory(c, m, asOf) {
  const id = big(m.message_id);
  c.lastId = maxBig(c.lastId, id);
  c.seen = maxBig(c.seen, id);
  if (m.sender_id !== me.user_id) c.lastOther = maxBig(c.lastOther, id);
  if (kindOfEntry(m) !== "text") return;
  const held = c.messages.get(m.message_id);
  if (held && big(held._v) > asOf) return;
  storeMessage(c, { ...m, _v: `${asOf}` });
  if (m.sender_id !== me.user_id) wantProfile(m.sender_id);
}

/** Keeps a message (in memory and in the local copy). `_v` is the newest event it reflects. */
function storeMessage(c, m) {
  c.messages.set(m.message_id, m);
  LocalCache.markMessage(m);
}

/**
 * Applies an edit, delete or reaction to its target, as the server does (chat_core's
 * Message::apply): once, in id order, and never to a deleted message except to delete it.
 */
function applyEvent(c, e) {
  const target = e.ref_id && c.messages.get(e.ref_id);
  // A target this page does not hold shows as it is now whenever history brings it.
  if (!target || big(e.message_id) <= big(target._v)) return false;
  const m = { ...target, _v: e.message_id };
  switch (kindOfEntry(e)) {
    case "edit":
      if (m.deleted) break;
      m.body = e.body;
      m.edited = true;
      break;
    case "delete":
      m.body = "";
      m.deleted = true;
      delete m.edited;
      delete m.reactions;
      break;
    case "reaction": {
      if (m.deleted) break;
      const reactions = {};
      for (const [emoji, users] of Object.entries(m.reactions ?? {})) {
        const rest = users.filter((u) => u !== e.sender_id);
        if (rest.length) reactions[emoji] = rest;
      }
      if (e.body) reactions[e.body] = [...(reactions[e.body] ?? []), e.sender_id].sort();
      if (Object.keys(reactions).length) m.reactions = reactions;
      else delete m.reactions;
      break;
    }
    default:
      return false; // kinds added later are not for this page
  }
  storeMessage(c, m);
  return true;
}

/** This user's reaction to a message, or "". */
function myReaction(m) {
  for (const [emoji, users] of Object.entries(m.reactions ?? {})) if (users.includes(me.user_id)) return emoji;
  return "";
}

/** Tells the server the user has read the open conversation up to its newest entry. */
function markRead(c) {
  if (!isReading(c) || c.draft) return;
  c.unread = 0;
  const newest = c.lastOther;
  if (newest > c.readSent && wsSend({ type: "read", conversation_id: c.id, message_id: `${newest}` })) {
    c.readSent = newest;
  }
  touch(c);
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------
// WebSocket

let ws = null;
let backoffMs = 500;
let awaitingPong = false;
let heartbeat = null;
let frameSeq = 0;
/** Request id of a `send`, `edit`, `delete` or `react` frame → the pending item it carries. */
const inflight = new Map();
/** Request id of a `presence_subscribe` → the user ids it asked for. */
const presenceAsked = new Map();

/** Close codes of the server (docs/protocol.md). */
const CLOSE_SLOW_CONSUMER = 4000;
const CLOSE_DEVICE_LOGGED_OUT = 4001;
const CLOSE_RESYNC = 4002;

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
    // presence subscriptions and what still waits for `sent`.
    if (presenceWanted.size) subscribePresence([...presenceWanted]);
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

  socket.onclose = async (event) => {
    clearInterval(heartbeat);
    inflight.clear(); // resent on the next open, with the same client_msg_id
    presenceAsked.clear();
    if (ws !== socket) return;
    ws = null;
    setConnection("offline");
    // This device was logged out (from another device, or here): its token no longer works.
    if (event.code === CLOSE_DEVICE_LOGGED_OUT) {
      return signOut(loggingOut ? undefined : "This device was logged out. Log in again.");
    }
    // Refused before the upgrade: maybe the token is no longer valid. api() signs out on 401.
    if (!opened) {
      try {
        await api("GET", "/api/me");
      } catch (e) {
        if (e.status === 401) return;
      }
    }
    // The server asks for a fresh connection and sync (it could not keep this one in order, or
    // we read too slowly): nothing is wrong on our side, so no backing off.
    const resync = event.code === CLOSE_RESYNC || event.code === CLOSE_SLOW_CONSUMER;
    const delay = resync ? 50 : backoffMs * (0.5 + Math.random()); // jitter: not every client at once
    if (!resync) backoffMs = Math.min(backoffMs * 2, 15000);
    setTimeout(() => me && connect(), delay);
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
  subscribePresence(fresh);
}

function subscribePresence(userIds) {
  const id = `p${++frameSeq}`;
  if (wsSend({ type: "presence_subscribe", id, user_ids: userIds })) presenceAsked.set(id, userIds);
}

function handleFrame(f) {
  switch (f.type) {
    case "message":
      return onMessage(f.message);
    case "sent":
      return onSent(f);
    case "receipt":
      return onReceipt(f);
    case "receipts":
      return onReceipts(f);
    case "group_event":
      return onGroupEvent(f);
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
  const acks = [...pendingAcks];
  pendingAcks.clear();
  // An ack goes out only once what it covers is in the local copy: the server stops re-sending
  // what we ack, so the local copy must already hold it. An ack that cannot go out now is not
  // lost: the server sends the message again at the next connect until it is acked.
  LocalCache.persisted().then(() => {
    for (const [conversationId, id] of acks) {
      wsSend({ type: "ack", conversation_id: conversationId, message_id: `${id}` });
    }
  });
}

function onMessage(m) {
  // Ack even repeats: the server sends a message again at every connect until it is acked.
  queueAck(m);
  // A late entry of a group this page just left does not bring the group back.
  if (forgotten.has(m.conversation_id)) return;
  const known = conversations.has(m.conversation_id);
  const c = conversationFor(m.conversation_id);
  c.draft = false;
  const previousLast = c.lastId;
  if (!addEntry(c, m)) return;
  if (!known) refreshConversationsSoon(); // a new group: fetch its name
  if (m.sender_id !== me.user_id && kindOfEntry(m) === "text") {
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
  const wasDraft = c.draft;
  c.draft = false;
  const entry = { message_id: f.message_id, conversation_id: f.conversation_id, sender_id: me.user_id, ts: f.ts };
  if (p.type === "send") {
    addEntry(c, { ...entry, kind: "text", body: p.body, ...(p.in_reply_to ? { in_reply_to: p.in_reply_to } : {}) });
  } else {
    addEntry(c, { ...entry, kind: p.type === "react" ? "reaction" : p.type, ref_id: p.ref, body: p.type === "delete" ? "" : p.body });
  }
  // Presence is answered only for users one shares a conversation with: now there is one.
  if (wasDraft) retryPresence(c.peer);
  touch(c);
  scheduleRender({ scrollToEnd: c.id === openId && p.type === "send" });
}

/** Only if the server named a direct conversation differently from directId(): follow it. */
function rekey(c, id) {
  conversations.delete(c.id);
  LocalCache.forgetConversation(c.id);
  const target = conversationFor(id);
  for (const [k, m] of c.messages) storeMessage(target, { ...m, conversation_id: id, message_id: k });
  for (const p of c.pending) p.conversation = target;
  target.pending.push(...c.pending);
  if (openId === c.id) openId = id;
  return target;
}

function onReceipt(f) {
  const c = conversations.get(f.conversation_id);
  if (!c || f.user_id === me.user_id) return;
  markReceipt(c, f.status, big(f.message_id));
}

/** Big groups coalesce their readers' receipts into one frame per status. */
function onReceipts(f) {
  const c = conversations.get(f.conversation_id);
  if (c) markReceipt(c, f.status, big(f.message_id));
}

function markReceipt(c, status, id) {
  // In a group the marks show the furthest any member got: enough for a small example page.
  c.delivered = maxBig(c.delivered, id);
  if (status === "read") c.read = maxBig(c.read, id);
  touch(c);
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
  if (!p) return onOtherError(f);
  inflight.delete(f.reply_to);
  // Neither error stored anything: the same client_msg_id keeps a retry from doubling it.
  if (f.code === "unavailable" || f.code === "rate_limited") {
    p.attempts++;
    setTimeout(() => transmit(p), Math.min(250 * 2 ** p.attempts, 8000));
    return;
  }
  const c = p.conversation;
  const why = `${f.message} (${f.code})`;
  if (p.type === "send") {
    // The message stays on screen, marked, with its text: retry it, take it back to edit, or drop it.
    p.failed = why;
  } else {
    c.pending = c.pending.filter((q) => q !== p);
    const what = { edit: "edit", delete: "delete", react: "react to" }[p.type];
    showChatError(new Error(`Could not ${what} the message: ${why}`));
    // An edit that failed goes back into the composer, so its text is not lost.
    if (p.type === "edit" && c.id === openId && !$("composer-input").value) {
      setComposer("edit", p.ref);
      $("composer-input").value = p.body;
    }
  }
  touch(c);
  scheduleRender();
}

function onOtherError(f) {
  // A presence subscription refused for users we share no conversation with (yet): forget that
  // we asked, so that asking again once there is one works.
  const asked = f.reply_to && presenceAsked.get(f.reply_to);
  if (asked) {
    presenceAsked.delete(f.reply_to);
    if (f.code === "forbidden") for (const u of asked) if (!presence.has(u)) presenceWanted.delete(u);
    return;
  }
  // An ack, read or typing frame over the server's budget: each is sent again in due course
  // (acks at the next connect, reads at the next view, typing at the next keystroke).
  if (f.code === "rate_limited") return;
  showChatError(new Error(`${f.message} (${f.code})`));
}

function retryPresence(userId) {
  if (!presence.has(userId)) presenceWanted.delete(userId);
  watchPresence([userId]);
}

// ---------------------------------------------------------------------------------------------
// Sending: messages, and events about messages (edit, delete, react)

function sendMessage(c, body, inReplyTo) {
  queueItem(c, { type: "send", body, in_reply_to: inReplyTo ?? undefined });
  scheduleRender({ scrollToEnd: true });
}

/** An edit (`body` is the new text), delete, or reaction (`body` is the emoji, "" removes). */
function sendEvent(c, type, messageId, body = "") {
  queueItem(c, { type, ref: messageId, body });
}

function queueItem(c, item) {
  const p = { ...item, conversation: c, client_msg_id: crypto.randomUUID(), attempts: 0, failed: null };
  c.pending.push(p);
  touch(c);
  transmit(p);
}

/** Puts a pending item on the wire, or leaves it for the next onopen. */
function transmit(p) {
  if (p.failed || !p.conversation.pending.includes(p)) return;
  const id = `s${++frameSeq}`;
  const c = p.conversation;
  let frame;
  if (p.type === "send") {
    frame = { type: "send", id, body: p.body, client_msg_id: p.client_msg_id };
    if (p.in_reply_to) frame.in_reply_to = p.in_reply_to;
    // A draft has no conversation on the server yet: "to" creates it.
    if (c.draft) frame.to = c.peer;
    else frame.conversation_id = c.id;
  } else {
    frame = { type: p.type, id, conversation_id: c.id, message_id: p.ref, client_msg_id: p.client_msg_id };
    if (p.type === "edit") frame.body = p.body;
    if (p.type === "react") frame.emoji = p.body;
  }
  if (wsSend(frame)) inflight.set(id, p);
}

function retrySend(p) {
  p.failed = null;
  p.attempts = 0;
  touch(p.conversation);
  transmit(p);
  scheduleRender();
}

function discardSend(p) {
  const c = p.conversation;
  c.pending = c.pending.filter((q) => q !== p);
  touch(c);
  scheduleRender();
}

/** Takes a failed message back into the composer to change it. */
function reviseSend(p) {
  discardSend(p);
  resetComposer();
  if (p.in_reply_to) setComposer("reply", p.in_reply_to);
  $("composer-input").value = p.body;
  $("composer-input").focus();
}

/** Keeps what is typed (a reload or another chat does not lose it) and tells others. */
function onComposerInput() {
  const c = conversations.get(openId);
  if (!c) return;
  c.text = $("composer-input").value;
  touch(c);
  sendTyping();
}

function sendTyping() {
  const c = conversations.get(openId);
  if (!c || c.draft || !$("composer-input").value) return;
  const now = Date.now();
  if (now - c.typingSentAt < TYPING_SEND_EVERY_MS) return;
  if (wsSend({ type: "typing", conversation_id: c.id })) c.typingSentAt = now;
}

function setComposer(mode, messageId) {
  composer = { mode, messageId };
  scheduleRender();
}

function resetComposer() {
  composer = { mode: null, messageId: null };
  pickerFor = null;
  confirmDeleteOf = null;
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
  renderGroupPanel();
  renderAccount();
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

function previewOf(c) {
  const typing = typingText(c);
  if (typing) return typing;
  const last = lastMessage(c);
  if (!last) return c.left ? "You are no longer a member" : "";
  const who = last.sender_id === me.user_id ? "You: " : "";
  return last.deleted ? `${who}message deleted` : `${who}${last.body}`;
}

function renderList() {
  const items = sortedConversations().map((c) => {
    const title = titleOf(c);
    const button = el(
      "button",
      { type: "button", className: `conv${c.id === openId && view === "chat" ? " active" : ""}`, dataset: { id: c.id } },
      el("span", { className: "avatar", ariaHidden: "true" }, ([...title][0] ?? "?").toUpperCase(), c.kind === "direct" ? presenceDot(c.peer) : null),
      el(
        "span",
        { className: "conv-main" },
        el("span", { className: "conv-name", textContent: title }),
        el("span", { className: `conv-preview${c.typing.size ? " is-typing" : ""}`, textContent: previewOf(c) }),
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
    if (blocked.has(c.peer)) return "blocked";
    const p = presence.get(c.peer);
    if (p?.status === "online") return "online";
    if (p?.last_seen) return lastSeenText(p.last_seen);
    return profiles.get(c.peer) ? `@${profiles.get(c.peer).username}` : "";
  }
  if (c.left) return "you are no longer a member";
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

/** The quoted preview of the message a reply answers. */
function quoteOf(c, refId) {
  const target = c.messages.get(refId);
  let who = "";
  let text = "a message not loaded here";
  if (target) {
    who = displayName(target.sender_id);
    text = target.deleted ? "message deleted" : snippet(target.body);
  }
  return el(
    "button",
    { type: "button", className: `quote${target?.deleted ? " deleted" : ""}`, title: "Show the message", onclick: () => showMessage(refId) },
    who ? el("span", { className: "quote-sender", textContent: who }) : null,
    el("span", { className: "quote-body", textContent: text }),
  );
}

function showMessage(id) {
  const node = document.querySelector(`#message-list [data-id="${CSS.escape(id)}"]`);
  if (!node) return;
  node.scrollIntoView({ block: "center" });
  node.classList.add("flash");
  setTimeout(() => node.classList.remove("flash"), 1200);
}

function reactionsOf(c, m) {
  const entries = Object.entries(m.reactions ?? {});
  if (!entries.length) return null;
  const mine = myReaction(m);
  return el(
    "div",
    { className: "reactions" },
    ...entries.map(([emoji, users]) =>
      el(
        "button",
        {
          type: "button",
          className: `reaction${emoji === mine ? " mine" : ""}`,
          title: users.map(displayName).join(", "),
          dataset: { emoji },
          onclick: () => react(c, m, emoji),
          disabled: c.left,
        },
        el("span", { className: "emoji", textContent: emoji }),
        el("span", { className: "count", textContent: `${users.length}` }),
      ),
    ),
  );
}

/** Sets this user's reaction, or takes it back when it is the same emoji. */
function react(c, m, emoji) {
  pickerFor = null;
  sendEvent(c, "react", m.message_id, myReaction(m) === emoji ? "" : emoji);
  scheduleRender();
}

function actionsOf(c, m) {
  if (m.deleted || c.left) return null;
  const mine = m.sender_id === me.user_id;
  const canDelete = mine || manages(c);
  const button = (label, cls, onclick) => el("button", { type: "button", className: `act ${cls}`, textContent: label, onclick });
  return el(
    "div",
    { className: "actions" },
    button("Reply", "reply", () => {
      setComposer("reply", m.message_id);
      $("composer-input").focus();
    }),
    button("React", "react", () => {
      pickerFor = pickerFor === m.message_id ? null : m.message_id;
      scheduleRender();
    }),
    mine
      ? button("Edit", "edit", () => {
          setComposer("edit", m.message_id);
          $("composer-input").value = m.body;
          $("composer-input").focus();
        })
      : null,
    canDelete
      ? button("Delete", "delete", () => {
          confirmDeleteOf = m.message_id;
          scheduleRender();
        })
      : null,
  );
}

function pickerOf(c, m) {
  if (pickerFor !== m.message_id) return null;
  const mine = myReaction(m);
  return el(
    "div",
    { className: "picker", role: "group", ariaLabel: "Reactions" },
    ...QUICK_REACTIONS.map((emoji) =>
      el("button", { type: "button", className: `pick${emoji === mine ? " mine" : ""}`, textContent: emoji, dataset: { emoji }, onclick: () => react(c, m, emoji) }),
    ),
  );
}

function confirmOf(c, m) {
  if (confirmDeleteOf !== m.message_id) return null;
  return el(
    "div",
    { className: "confirm" },
    el("span", { textContent: "Delete this message for everyone?" }),
    el("button", {
      type: "button",
      className: "danger confirm-yes",
      textContent: "Delete",
      onclick: () => {
        confirmDeleteOf = null;
        if (composer.messageId === m.message_id) resetComposer();
        sendEvent(c, "delete", m.message_id);
        scheduleRender();
      },
    }),
    el("button", {
      type: "button",
      className: "secondary confirm-no",
      textContent: "Keep",
      onclick: () => {
        confirmDeleteOf = null;
        scheduleRender();
      },
    }),
  );
}

/** A failed send: what went wrong, and what can be done with the text. */
function failedOf(p) {
  if (!p?.failed) return null;
  return el(
    "div",
    { className: "failed-note" },
    el("span", { className: "failed-why", textContent: `Not sent: ${p.failed}` }),
    el("button", { type: "button", className: "link retry", textContent: "Retry", onclick: () => retrySend(p) }),
    el("button", { type: "button", className: "link revise", textContent: "Edit", onclick: () => reviseSend(p) }),
    el("button", { type: "button", className: "link discard", textContent: "Discard", onclick: () => discardSend(p) }),
  );
}

function messageItem(c, m, p) {
  const mine = m.sender_id === me.user_id;
  const mark = mine ? markOf(c, p, m) : null;
  const classes = ["msg", mine ? "mine" : "theirs", m.deleted ? "deleted" : "", p ? "pending" : ""].filter(Boolean);
  return el(
    "li",
    // Focusable, so that a tap (or the keyboard) shows its actions.
    { className: classes.join(" "), dataset: m.message_id ? { id: m.message_id } : {}, tabIndex: p ? -1 : 0 },
    c.kind === "group" && !mine ? el("span", { className: "sender", textContent: displayName(m.sender_id) }) : null,
    m.in_reply_to ? quoteOf(c, m.in_reply_to) : null,
    el("span", { className: "body", textContent: m.deleted ? "This message was deleted" : m.body }),
    reactionsOf(c, m),
    el(
      "span",
      { className: "meta" },
      m.edited ? el("span", { className: "edited", textContent: "edited" }) : null,
      m.ts ? el("time", { dateTime: new Date(m.ts).toISOString(), textContent: timeOf(m.ts) }) : null,
      mark ? el("span", { className: `mark ${mark.cls}`, title: mark.title, textContent: mark.text }) : null,
    ),
    p ? failedOf(p) : actionsOf(c, m),
    p ? null : pickerOf(c, m),
    p ? null : confirmOf(c, m),
  );
}

function noticeItem(n) {
  return el("li", { className: "notice", dataset: { event: n.event } }, el("span", { textContent: noticeText(n) }));
}

function renderChat({ scrollToEnd = false } = {}) {
  const c = openId && conversations.get(openId);
  const showChat = view === "chat" && !!c;
  $("chat-empty").hidden = view !== "chat" || !!c;
  $("chat-pane").hidden = !showChat;
  if (!showChat) return;
  $("chat-title").textContent = titleOf(c);
  $("chat-subtitle").textContent = subtitleOf(c);
  $("info-btn").hidden = c.kind !== "group";
  renderBlockButton(c);
  $("typing").textContent = typingText(c);
  $("older-btn").hidden = !c.hasOlder;
  $("composer").hidden = c.left;
  $("left-note").hidden = !c.left;
  renderComposerBar(c);

  const box = $("messages");
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  const fromEnd = box.scrollHeight - box.scrollTop;
  // Messages by id; a group event's line goes after the entry that came before it.
  const rows = [...c.messages.values()].map((m) => ({ at: big(m.message_id), seq: 0, node: messageItem(c, m, null) }));
  for (const n of c.notices) rows.push({ at: big(n.after), seq: n.seq, node: noticeItem(n) });
  rows.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.seq - b.seq));
  const items = rows.map((r) => r.node);
  for (const p of c.pending) {
    if (p.type === "send") items.push(messageItem(c, { sender_id: me.user_id, body: p.body, in_reply_to: p.in_reply_to }, p));
  }
  $("message-list").replaceChildren(...items);
  // Follow new messages only when the reader was already at the end; otherwise keep their place.
  if (scrollToEnd || atEnd) box.scrollTop = box.scrollHeight;
  else box.scrollTop = box.scrollHeight - fromEnd;
}

function renderComposerBar(c) {
  const target = composer.messageId && c.messages.get(composer.messageId);
  const bar = $("composer-bar");
  if (!composer.mode || !target) {
    bar.hidden = true;
    $("composer-input").placeholder = "Message";
    return;
  }
  bar.hidden = false;
  const editing = composer.mode === "edit";
  $("composer-bar-title").textContent = editing ? "Editing your message" : `Replying to ${displayName(target.sender_id)}`;
  $("composer-bar-text").textContent = target.deleted ? "message deleted" : snippet(target.body);
  $("composer-input").placeholder = editing ? "New text" : "Reply";
}

function setConnection(state) {
  const node = $("conn-status");
  node.className = `conn ${state}`;
  node.textContent = { online: "", connecting: "connecting…", offline: "offline, reconnecting…" }[state];
  node.title = state;
}

function showChatError(e) {
  $("chat-error").textContent = errorText(e);
}
function showSidebarError(e) {
  $("sidebar-error").textContent = errorText(e);
}

// ---------------------------------------------------------------------------------------------
// Signing in and out

const SESSION_KEY = "chat.session";
const OPEN_KEY = "chat.open";
const NOTICE_KEY = "chat.notice";
let signingOut = false;
/** This page asked to log its own device out (the 4001 close that follows is no surprise). */
let loggingOut = false;

/** A name for this device in the devices list: the browser and the system it runs on. */
function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const system = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return `Web: ${browser}${system ? ` on ${system}` : ""}`;
}

async function startSession(saved) {
  me = saved;
  // The local copy first: the page shows this device's chats before the network answers.
  if (await LocalCache.open(me.user_id, me.device_id)) restore(await LocalCache.load());
  if (me.username) profiles.set(me.user_id, { user_id: me.user_id, username: me.username, display_name: me.display_name });
  $("me-name").textContent = me.display_name || me.username || "";
  $("auth").hidden = true;
  $("app").hidden = false;
  const wasOpen = sessionStorage.getItem(OPEN_KEY);
  render();
  connect();
  if (wasOpen && conversations.has(wasOpen)) openConversation(wasOpen);

  api("GET", "/api/me")
    .then((p) => {
      Object.assign(me, { username: p.username, display_name: p.display_name });
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(me));
      rememberProfile(p);
      $("me-name").textContent = me.display_name || me.username;
    })
    .catch((e) => e.status !== 401 && showSidebarError(e));
  refreshConversations().catch(showSidebarError);
  loadBlocked().catch(showSidebarError);
  acceptPendingInvite();
}

/** Forgets this device here (session, local copy) and shows the login form, with `notice`. */
async function signOut(notice) {
  if (signingOut) return;
  signingOut = true;
  sessionStorage.removeItem(SESSION_KEY);
  sessionStorage.removeItem(OPEN_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  me = null;
  if (ws) ws.close();
  // The device's copy goes with it: a new login is a new device, with a copy of its own.
  await LocalCache.destroy();
  // A reload drops every other piece of state (socket, timers, caches) at once.
  location.reload();
}

/** "Log out": the server forgets this device (its token stops working), then the page does. */
async function logOutHere() {
  loggingOut = true;
  try {
    await api("POST", "/api/logout");
  } catch (e) {
    // Offline or already logged out: the device is forgotten here all the same.
    console.warn("logout:", e);
  }
  await signOut();
}

async function onAuthSubmit(event) {
  event.preventDefault();
  const action = event.submitter?.value === "signup" ? "signup" : "login";
  const username = $("auth-username").value.trim();
  const password = $("auth-password").value;
  $("auth-error").textContent = "";
  try {
    const answer = await api("POST", `/api/${action}`, { username, password, device: deviceName() });
    const saved = {
      user_id: answer.user_id,
      device_id: answer.device_id ?? null,
      token: answer.token,
      chat_url: answer.chat_url ?? null,
      username,
    };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(saved));
    await startSession(saved);
  } catch (e) {
    $("auth-error").textContent = e.status === 401 ? "Wrong username or password." : errorText(e);
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
    const c = conversationFor(conversation_id);
    c.name = name;
    c.joinedAt = Date.now();
    c.historyLoaded = true; // nothing was said in it yet
    touch(c);
    $("group-form").reset();
    $("group-form").closest("details").open = false;
    await openConversation(conversation_id);
  } catch (e) {
    showSidebarError(e);
  }
}

function onComposerSubmit(event) {
  event.preventDefault();
  const input = $("composer-input");
  const body = input.value.trim();
  const c = conversations.get(openId);
  if (!body || !c || c.left) return;
  input.value = "";
  c.text = "";
  touch(c);
  if (composer.mode === "edit") {
    const target = c.messages.get(composer.messageId);
    if (target && !target.deleted && body !== target.body) sendEvent(c, "edit", target.message_id, body);
  } else {
    sendMessage(c, body, composer.mode === "reply" ? composer.messageId : null);
  }
  resetComposer();
  scheduleRender({ scrollToEnd: true });
}

function onComposerKey(event) {
  if (event.key !== "Escape" || !composer.mode) return;
  if (composer.mode === "edit") $("composer-input").value = "";
  resetComposer();
  scheduleRender();
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
  $("logout-btn").addEventListener("click", logOutHere);
  $("direct-form").addEventListener("submit", onDirectSubmit);
  $("group-form").addEventListener("submit", onGroupSubmit);
  $("composer").addEventListener("submit", onComposerSubmit);
  $("composer-input").addEventListener("input", onComposerInput);
  $("composer-input").addEventListener("keydown", onComposerKey);
  $("composer-bar-cancel").addEventListener("click", () => {
    if (composer.mode === "edit") $("composer-input").value = "";
    resetComposer();
    scheduleRender();
  });
  $("older-btn").addEventListener("click", onOlderClick);
  $("back-btn").addEventListener("click", () => {
    const c = openId && conversations.get(openId);
    if (c) c.text = $("composer-input").value;
    openId = null;
    sessionStorage.removeItem(OPEN_KEY);
    document.body.classList.remove("show-chat");
    render();
  });
  setUpGroupPanel();
  setUpAccount();
  // Coming back to the tab reads what arrived meanwhile.
  document.addEventListener("visibilitychange", () => {
    const c = openId && conversations.get(openId);
    if (c) markRead(c);
  });
  // "last seen 3 min ago" ages by itself.
  setInterval(() => me && renderChat(), 60000);

  const invite = takeInviteFromUrl();
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    sessionStorage.removeItem(SESSION_KEY);
  }
  if (saved?.token) {
    startSession(saved).catch((e) => {
      $("auth").hidden = false;
      $("auth-error").textContent = errorText(e);
    });
  } else {
    $("auth").hidden = false;
    $("auth-notice").textContent = sessionStorage.getItem(NOTICE_KEY) ?? (invite ? "Log in or sign up to join the group you were invited to." : "");
    sessionStorage.removeItem(NOTICE_KEY);
    $("auth-username").focus();
  }
}

main();
