"use strict";
// Groups: the members panel (members with their roles; adding, removing, promoting and demoting;
// the group's settings; leaving), invite links (making, copying, revoking, and joining by one),
// and group events: the member list follows them and the timeline shows a line for each.
// Uses the state and helpers of app.js (the scripts share one global scope).

/** Whether the members panel of the open group is shown. */
let panelOpen = false;
/** The settings form holds changes the user has not saved: renders leave it alone. */
let settingsEdited = false;
/** The leave button was clicked once and waits for the confirming click. */
let leaveArmed = false;
/** The session key of an invite code waiting for the user to sign in. */
const INVITE_KEY = "chat.invite";
/** A group's timeline keeps at most this many event lines. */
const MAX_NOTICES = 200;

function setUpGroupPanel() {
  $("info-btn").addEventListener("click", () => {
    panelOpen = !panelOpen;
    settingsEdited = false;
    leaveArmed = false;
    $("group-error").textContent = "";
    const c = conversations.get(openId);
    if (panelOpen && c && !c.left) loadMembers(c).catch(showGroupError);
    render();
  });
  $("group-panel-close").addEventListener("click", () => {
    panelOpen = false;
    render();
  });
  $("member-form").addEventListener("submit", onMemberSubmit);
  $("settings-form").addEventListener("submit", onSettingsSubmit);
  $("settings-form").addEventListener("input", () => (settingsEdited = true));
  $("invite-form").addEventListener("submit", onInviteSubmit);
  $("leave-btn").addEventListener("click", onLeaveClick);
  $("forget-btn").addEventListener("click", () => {
    const c = conversations.get(openId);
    if (c) forgetConversation(c);
  });
  // An invite link opened in a tab that is already signed in changes only the hash.
  window.addEventListener("hashchange", () => {
    if (takeInviteFromUrl() && me) acceptPendingInvite();
  });
}

function showGroupError(e) {
  $("group-error").textContent = errorText(e);
}

/** Runs a panel action; its error shows in the panel, and the panel is drawn again either way. */
async function groupAction(action) {
  $("group-error").textContent = "";
  try {
    await action();
  } catch (e) {
    showGroupError(e);
  }
  render();
}

const groupPath = (c, ...rest) => ["/api/groups", encodeURIComponent(c.id), ...rest.map(encodeURIComponent)].join("/");

// ---------------------------------------------------------------------------------------------
// The panel

const ROLE_RANK = { owner: 0, admin: 1, member: 2 };

function renderGroupPanel() {
  const c = openId && conversations.get(openId);
  const show = panelOpen && view === "chat" && !!c && c.kind === "group";
  $("group-panel").hidden = !show;
  $("info-btn").ariaExpanded = `${show}`;
  if (!show) return;
  const managing = manages(c);

  $("settings-form").hidden = !managing;
  $("settings-view").hidden = managing;
  if (!settingsEdited) {
    $("settings-name").value = c.name ?? "";
    $("settings-join").value = c.join ?? "invite";
    $("settings-history").value = c.history ?? "since_join";
  }
  $("settings-view").textContent = [
    c.join === "open" ? "Anyone can join." : "Members join when an owner or admin adds them, or by an invite link.",
    c.history === "all" ? "New members see the whole history." : "New members see messages from when they joined.",
  ].join(" ");

  const roleOf = (u) => c.roles[u] ?? "member";
  const members = [...(c.members ?? [])].sort(
    (a, b) => ROLE_RANK[roleOf(a)] - ROLE_RANK[roleOf(b)] || displayName(a).localeCompare(displayName(b)),
  );
  $("member-count").textContent = c.members ? `${c.members.length}` : "";
  $("member-list").replaceChildren(...members.map((u) => memberRow(c, u, roleOf(u))));
  $("member-form").hidden = !managing;
  $("invite-box").hidden = !managing;
  $("invite-list").replaceChildren(...c.invites.map((inv) => inviteRow(c, inv)));
  $("leave-btn").hidden = c.left;
  $("leave-btn").textContent = leaveArmed ? "Click again to leave the group" : "Leave group";
}

function memberRow(c, userId, role) {
  const me_ = userId === me.user_id;
  const mine = myRole(c);
  const profile = profiles.get(userId);
  const name = me_ ? profile?.display_name || profile?.username || me.username : displayName(userId);
  const actions = [];
  if (!c.left && mine === "owner" && !me_ && role !== "owner") {
    const next = role === "admin" ? "member" : "admin";
    actions.push(
      el("button", {
        type: "button",
        className: "link role-btn",
        textContent: next === "admin" ? "Make admin" : "Make member",
        onclick: () => groupAction(() => setRole(c, userId, next)),
      }),
    );
  }
  const canRemove = mine === "owner" || (mine === "admin" && role === "member");
  if (!c.left && !me_ && canRemove) {
    actions.push(
      el("button", {
        type: "button",
        className: "link danger-link remove-btn",
        textContent: "Remove",
        onclick: () => groupAction(() => removeMember(c, userId)),
      }),
    );
  }
  return el(
    "li",
    { className: "member", dataset: { user: userId, username: profile?.username ?? "" } },
    el("span", { className: "avatar small", ariaHidden: "true" }, ([...name][0] ?? "?").toUpperCase(), me_ ? null : presenceDot(userId)),
    el(
      "span",
      { className: "member-main" },
      el("span", { className: "member-name", textContent: me_ ? `${name} (you)` : name }),
      profile?.username ? el("span", { className: "member-username", textContent: `@${profile.username}` }) : null,
    ),
    role === "member" ? null : el("span", { className: `role-badge ${role}`, textContent: role }),
    el("span", { className: "member-actions" }, ...actions),
  );
}

// ---------------------------------------------------------------------------------------------
// Actions

async function onMemberSubmit(event) {
  event.preventDefault();
  const c = conversations.get(openId);
  const input = $("member-username");
  await groupAction(async () => {
    const p = await userByName(input.value.trim());
    await api("POST", groupPath(c, "members"), { user_id: p.user_id });
    input.value = "";
    await loadMembers(c);
  });
}

async function removeMember(c, userId) {
  await api("DELETE", groupPath(c, "members", userId));
  // The group event says the same a moment later; the panel need not wait for it.
  c.members = (c.members ?? []).filter((u) => u !== userId);
  delete c.roles[userId];
  touch(c);
}

async function setRole(c, userId, role) {
  await api("PUT", groupPath(c, "members", userId, "role"), { role });
  if (role === "member") delete c.roles[userId];
  else c.roles[userId] = role;
  touch(c);
}

async function onSettingsSubmit(event) {
  event.preventDefault();
  const c = conversations.get(openId);
  await groupAction(async () => {
    const body = {
      name: $("settings-name").value.trim(),
      join: $("settings-join").value,
      history: $("settings-history").value,
    };
    applyGroup(c, await api("PATCH", groupPath(c), body));
    settingsEdited = false;
  });
}

async function onLeaveClick() {
  const c = conversations.get(openId);
  if (!c) return;
  if (!leaveArmed) {
    leaveArmed = true;
    return render();
  }
  leaveArmed = false;
  await groupAction(async () => {
    await api("DELETE", groupPath(c, "members", me.user_id));
    forgetConversation(c);
  });
}

/** Drops a group from this page and from the local copy (it was left, or the user cleared it). */
function forgetConversation(c) {
  conversations.delete(c.id);
  LocalCache.forgetConversation(c.id);
  forgotten.add(c.id);
  if (openId === c.id) {
    openId = null;
    sessionStorage.removeItem(OPEN_KEY);
    document.body.classList.remove("show-chat");
  }
  panelOpen = false;
  render();
}

/** Groups left here: their own `left` event, or a message sent just before, arriving after,
 *  does not bring them back. */
const forgotten = new Set();

// ---------------------------------------------------------------------------------------------
// Invite links

const inviteLink = (code) => `${location.origin}/#/invite/${code}`;

async function onInviteSubmit(event) {
  event.preventDefault();
  const c = conversations.get(openId);
  await groupAction(async () => {
    const uses = $("invite-max-uses").value.trim();
    const expires = $("invite-expires").value;
    const body = {};
    if (uses) {
      const n = Number(uses);
      if (!Number.isInteger(n) || n < 1) throw new Error("Max uses is a whole number from 1, or empty for no limit.");
      body.max_uses = n;
    }
    if (expires) body.expires_in_secs = Number(expires);
    const { code } = await api("POST", groupPath(c, "invites"), body);
    // The server lists no invites: the page keeps the codes it made, to show and revoke them.
    c.invites.unshift({
      code,
      max_uses: body.max_uses ?? null,
      expires_at: body.expires_in_secs ? Date.now() + body.expires_in_secs * 1000 : null,
    });
    touch(c);
    $("invite-form").reset();
  });
}

function inviteRow(c, inv) {
  const link = inviteLink(inv.code);
  const expired = inv.expires_at && inv.expires_at < Date.now();
  const limits = [
    inv.max_uses ? `up to ${inv.max_uses} use${inv.max_uses === 1 ? "" : "s"}` : "no use limit",
    inv.expires_at ? `${expired ? "expired" : "expires"} ${new Date(inv.expires_at).toLocaleString()}` : "no expiry",
  ].join(" · ");
  const copy = el("button", { type: "button", className: "secondary copy-btn", textContent: "Copy" });
  copy.addEventListener("click", () => copyText(link, input, copy));
  const input = el("input", { className: "invite-link", readOnly: true, value: link, ariaLabel: "Invite link" });
  return el(
    "li",
    { className: "invite", dataset: { code: inv.code } },
    el("div", { className: "invite-row" }, input, copy),
    el(
      "div",
      { className: "invite-meta" },
      el("span", { textContent: limits }),
      el("button", {
        type: "button",
        className: "link danger-link revoke-btn",
        textContent: "Revoke",
        onclick: () => groupAction(() => revokeInvite(c, inv.code)),
      }),
    ),
  );
}

async function copyText(text, input, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    // No clipboard access (an insecure origin, or refused): select it for Ctrl-C instead.
    input.select();
    button.textContent = "Press Ctrl-C";
  }
  setTimeout(() => (button.textContent = "Copy"), 2000);
}

async function revokeInvite(c, code) {
  try {
    await api("DELETE", groupPath(c, "invites", code));
  } catch (e) {
    // Already gone on the server (or never was): nothing left to revoke.
    if (e.status !== 404 && e.status !== 410) throw e;
  }
  c.invites = c.invites.filter((i) => i.code !== code);
  touch(c);
}

/** Takes an invite code from `?invite=CODE` or `#/invite/CODE` into the session, off the URL. */
function takeInviteFromUrl() {
  const fromQuery = new URLSearchParams(location.search).get("invite");
  const fromHash = /^#\/invite\/([^/?#]+)$/.exec(location.hash)?.[1];
  const code = fromQuery || (fromHash && decodeURIComponent(fromHash));
  if (!code) return sessionStorage.getItem(INVITE_KEY);
  sessionStorage.setItem(INVITE_KEY, code);
  // The code leaves the address bar, so a reload or a shared screen does not show it again.
  history.replaceState(null, "", location.pathname);
  return code;
}

/** Joins the group of the invite the page was opened with, once signed in, and opens it. */
async function acceptPendingInvite() {
  const code = sessionStorage.getItem(INVITE_KEY);
  if (!code || !me) return;
  sessionStorage.removeItem(INVITE_KEY);
  $("sidebar-error").textContent = "";
  try {
    const { conversation_id } = await api("POST", `/api/invites/${encodeURIComponent(code)}`);
    forgotten.delete(conversation_id);
    const c = conversationFor(conversation_id);
    rejoined(c);
    await openConversation(conversation_id);
    refreshConversationsSoon();
  } catch (e) {
    const why =
      e.status === 410
        ? "This invite link has expired, was used up or was revoked."
        : e.status === 404
          ? "This invite link is not valid."
          : "Could not join with this invite link.";
    showSidebarError(new Error(`${why} ${errorText(e)}`));
  }
}

/** This user is a member (again): what was said while it was away comes from history. */
function rejoined(c) {
  if (c.left) c.historyLoaded = false;
  c.left = false;
  c.joinedAt = Date.now();
  c.membersFresh = false;
  touch(c);
}

// ---------------------------------------------------------------------------------------------
// Group events

let membersTimer = null;

function onGroupEvent(f) {
  const aboutMe = f.user_id === me.user_id;
  // Acked like a message, so the server does not send it again at the next connect; the event
  // that ends this user's membership too (the server takes that ack from a former member).
  if (f.message_id) queueAck(f);
  // A group this page dropped after leaving it: its own `left` (or a late `removed`) is old news.
  if ((f.event === "left" || f.event === "removed") && aboutMe && !conversations.has(f.conversation_id)) return;
  // Added again (from another device, or by an owner or admin): it is back.
  if (f.event === "added" && aboutMe) forgotten.delete(f.conversation_id);
  if (forgotten.has(f.conversation_id)) return;
  const known = conversations.has(f.conversation_id);
  const c = conversationFor(f.conversation_id);
  addNotice(c, f);
  if (!known) refreshConversationsSoon(); // a group new to this page: its name
  wantProfile(f.by);
  if (f.user_id) wantProfile(f.user_id);
  const dropMember = () => {
    if (c.members) c.members = c.members.filter((u) => u !== f.user_id);
    delete c.roles[f.user_id];
  };
  switch (f.event) {
    case "added":
      if (c.members && !c.members.includes(f.user_id)) c.members = [...c.members, f.user_id];
      if (aboutMe) rejoined(c);
      if (f.user_id !== me.user_id) watchPresence([f.user_id]);
      break;
    case "removed":
      dropMember();
      if (aboutMe) c.left = true;
      break;
    case "left":
      dropMember();
      // Left from another device of this user: gone here too.
      if (aboutMe) return forgetConversation(c);
      break;
    case "role":
      if (f.role === "member") delete c.roles[f.user_id];
      else c.roles[f.user_id] = f.role;
      break;
    case "settings":
      // The event does not say what changed: ask for the group as it is now.
      clearTimeout(membersTimer);
      membersTimer = setTimeout(() => c.left || loadMembers(c).catch(showChatError), 100);
      break;
    default:
      break;
  }
  touch(c);
  scheduleRender();
}

/**
 * A timeline line for a group event, placed after the newest entry known when it came. An event
 * that came again (one whose ack had not reached the server) comes after the same entry as the
 * first time and is dropped here.
 */
function addNotice(c, f) {
  const n = { after: `${c.seen}`, event: f.event, user_id: f.user_id ?? null, by: f.by, role: f.role ?? null };
  const same = (o) => o.after === n.after && o.event === n.event && o.user_id === n.user_id && o.by === n.by && o.role === n.role;
  if (c.notices.some(same)) return;
  n.seq = 1 + c.notices.filter((o) => o.after === n.after).length;
  c.notices.push(n);
  if (c.notices.length > MAX_NOTICES) c.notices.splice(0, c.notices.length - MAX_NOTICES);
}

/** "alice added bob", "You left", … */
function noticeText(n) {
  const who = nameIn(n.user_id ?? "", true);
  switch (n.event) {
    case "added":
      return n.by === n.user_id ? `${who} joined` : `${nameIn(n.by, true)} added ${nameIn(n.user_id)}`;
    case "removed":
      return `${nameIn(n.by, true)} removed ${nameIn(n.user_id)}`;
    case "left":
      return `${who} left`;
    case "role":
      if (n.role === "owner") return `${who} ${n.user_id === me.user_id ? "are" : "is"} now the owner`;
      return `${nameIn(n.by, true)} made ${nameIn(n.user_id)} ${n.role === "admin" ? "an admin" : "a member"}`;
    case "settings":
      return `${nameIn(n.by, true)} changed the group's settings`;
    default:
      return `${nameIn(n.by, true)} changed the group`;
  }
}
