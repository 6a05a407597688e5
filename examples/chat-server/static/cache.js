"use strict";
// The page's local copy of its chats, in IndexedDB: one database per device (each login is a
// device, with its own delivery), so two tabs or two browser profiles never mix their copies.
//
// app.js keeps everything in memory and tells this file what changed (markConversation,
// markMessage); the changes are written together in one transaction a moment later. persisted()
// resolves once everything marked so far is on disk: the page acks a message to the server only
// then, so what the server stops re-sending is always in this copy, and a reload shows it at
// once without asking the network.
//
// Without IndexedDB (a browser that refuses it, or an error opening it) the page works as before,
// from the network alone: every call here then does nothing and persisted() resolves at once.

const LocalCache = (() => {
  const VERSION = 1;
  const CONVERSATIONS = "conversations";
  const MESSAGES = "messages";
  const PROFILES = "profiles";
  const STORES = [CONVERSATIONS, MESSAGES, PROFILES];
  /** How long changes gather before they are written. */
  const WRITE_DELAY_MS = 20;

  let db = null;
  let dbName = null;
  const dirtyConversations = new Map(); // id → function returning the record to store
  const dirtyMessages = new Map(); // "conversation_id message_id" → the message to store
  const dirtyProfiles = new Map(); // user_id → profile
  const deletedConversations = new Set();
  let writeTimer = null;
  /** The last write started: each write waits for the one before, so they land in order. */
  let writing = Promise.resolve();

  const nameFor = (userId, deviceId) => `chat:${userId}:${deviceId}`;

  /** A request's result as a promise. */
  function done(request) {
    return new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  function finished(tx) {
    return new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onabort = () => reject(tx.error ?? new Error("transaction aborted"));
      tx.onerror = () => reject(tx.error);
    });
  }

  /** Opens (creating when new) the copy of this user's device. Resolves false without one. */
  async function open(userId, deviceId) {
    close();
    if (!deviceId || typeof indexedDB === "undefined") return false;
    try {
      const request = indexedDB.open(nameFor(userId, deviceId), VERSION);
      request.onupgradeneeded = () => {
        const d = request.result;
        d.createObjectStore(CONVERSATIONS, { keyPath: "id" });
        // Keyed by [conversation, message], so one conversation's messages are one key range.
        d.createObjectStore(MESSAGES, { keyPath: ["conversation_id", "message_id"] });
        // Names of the people in the chats, so that a reload shows them before the network does.
        d.createObjectStore(PROFILES, { keyPath: "user_id" });
      };
      db = await done(request);
      dbName = nameFor(userId, deviceId);
      // Another tab deleting this database (signing this device out) must not wait for us.
      db.onversionchange = () => close();
      return true;
    } catch (e) {
      console.warn("no local copy of the chats:", e);
      db = null;
      return false;
    }
  }

  function close() {
    clearTimeout(writeTimer);
    writeTimer = null;
    dirtyConversations.clear();
    dirtyMessages.clear();
    dirtyProfiles.clear();
    deletedConversations.clear();
    if (db) db.close();
    db = null;
    dbName = null;
  }

  /** Everything stored: {conversations: [record], messages: [message], profiles: [profile]}. */
  async function load() {
    const none = { conversations: [], messages: [], profiles: [] };
    if (!db) return none;
    try {
      const tx = db.transaction(STORES, "readonly");
      const [conversations, messages, profiles] = await Promise.all(
        STORES.map((name) => done(tx.objectStore(name).getAll())),
      );
      return { conversations, messages, profiles };
    } catch (e) {
      console.warn("cannot read the local copy:", e);
      return none;
    }
  }

  /** The conversation's record will be stored; `record` is called at write time. */
  function markConversation(id, record) {
    if (!db) return;
    deletedConversations.delete(id);
    dirtyConversations.set(id, record);
    writeSoon();
  }

  function markMessage(m) {
    if (!db) return;
    dirtyMessages.set(`${m.conversation_id} ${m.message_id}`, m);
    writeSoon();
  }

  function markProfile(p) {
    if (!db) return;
    dirtyProfiles.set(p.user_id, p);
    writeSoon();
  }

  /** Drops a conversation and its messages (a group left). */
  function forgetConversation(id) {
    if (!db) return;
    dirtyConversations.delete(id);
    for (const [key, m] of dirtyMessages) if (m.conversation_id === id) dirtyMessages.delete(key);
    deletedConversations.add(id);
    writeSoon();
  }

  function writeSoon() {
    if (writeTimer === null) writeTimer = setTimeout(write, WRITE_DELAY_MS);
  }

  /** Writes what is marked; resolves when it is on disk (or failed, which is logged). */
  function write() {
    clearTimeout(writeTimer);
    writeTimer = null;
    const nothing = !dirtyConversations.size && !dirtyMessages.size && !dirtyProfiles.size && !deletedConversations.size;
    if (!db || nothing) return writing;
    const records = [...dirtyConversations.values()].map((record) => record());
    const messages = [...dirtyMessages.values()];
    const people = [...dirtyProfiles.values()];
    const deleted = [...deletedConversations];
    dirtyConversations.clear();
    dirtyMessages.clear();
    dirtyProfiles.clear();
    deletedConversations.clear();
    const target = db;
    writing = writing.then(async () => {
      try {
        const tx = target.transaction(STORES, "readwrite");
        const convs = tx.objectStore(CONVERSATIONS);
        const msgs = tx.objectStore(MESSAGES);
        const profiles = tx.objectStore(PROFILES);
        for (const id of deleted) {
          convs.delete(id);
          msgs.delete(IDBKeyRange.bound([id, ""], [id, "\uffff"]));
        }
        for (const r of records) convs.put(r);
        for (const m of messages) msgs.put(m);
        for (const p of people) profiles.put(p);
        await finished(tx);
      } catch (e) {
        // A full disk or a closed database: the server still has the messages (and re-sends what
        // was not acked); the page goes on from memory.
        console.warn("cannot write the local copy:", e);
      }
    });
    return writing;
  }

  /** Resolves once everything marked until now is stored. */
  function persisted() {
    return write();
  }

  /** Deletes this device's copy (signing out, or the device was logged out). */
  async function destroy() {
    const name = dbName;
    close();
    if (!name || typeof indexedDB === "undefined") return;
    try {
      await done(indexedDB.deleteDatabase(name));
    } catch (e) {
      console.warn("cannot delete the local copy:", e);
    }
  }

  return { open, load, markConversation, markMessage, markProfile, forgetConversation, persisted, destroy };
})();
