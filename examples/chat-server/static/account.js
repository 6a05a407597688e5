"use strict";
// The account view (this user's devices, each of which can be logged out, and the users it
// blocked) and the block button of a direct chat. Uses the state and helpers of app.js (the
// scripts share one global scope).

/** The devices as GET /api/devices last answered, or null before. */
let devices = null;

function setUpAccount() {
  $("account-btn").addEventListener("click", openAccount);
  $("account-back").addEventListener("click", () => {
    view = "chat";
    document.body.classList.remove("show-chat");
    render();
  });
  $("account-refresh").addEventListener("click", refreshAccount);
  $("block-btn").addEventListener("click", onBlockClick);
}

async function openAccount() {
  view = "account";
  panelOpen = false;
  document.body.classList.add("show-chat");
  render();
  await refreshAccount();
}

async function refreshAccount() {
  $("account-error").textContent = "";
  try {
    const [answer] = await Promise.all([api("GET", "/api/devices"), loadBlocked()]);
    devices = answer.devices;
  } catch (e) {
    $("account-error").textContent = errorText(e);
  }
  render();
}

/** Who this user blocked: for the block button and the blocked list. */
async function loadBlocked() {
  const { blocked: list } = await api("GET", "/api/blocks");
  blocked.clear();
  for (const u of list) {
    blocked.add(u);
    wantProfile(u);
  }
  scheduleRender();
}

function renderAccount() {
  $("account-pane").hidden = view !== "account";
  if (view !== "account") return;
  const p = profiles.get(me.user_id);
  $("account-name").textContent = p ? `${p.display_name || p.username} (@${p.username})` : me.username ?? "";

  const rows = (devices ?? []).map(deviceRow);
  $("device-list").replaceChildren(...rows);
  if (devices && !rows.length) $("device-list").append(el("li", { className: "empty", textContent: "No devices." }));

  const people = [...blocked].map(blockedRow);
  $("blocked-list").replaceChildren(...people);
  if (!people.length) $("blocked-list").append(el("li", { className: "empty", textContent: "You have not blocked anyone." }));
}

function deviceRow(d) {
  const seen = d.current ? "this device" : d.last_seen ? lastSeenText(d.last_seen) : "never connected";
  return el(
    "li",
    { className: `device${d.current ? " current" : ""}`, dataset: { device: d.device_id } },
    el(
      "span",
      { className: "device-main" },
      el("span", { className: "device-name", textContent: d.name || "Unnamed device" }),
      el("span", { className: "device-seen", textContent: seen }),
    ),
    el("button", {
      type: "button",
      className: "secondary device-logout",
      textContent: d.current ? "Log out" : "Log out this device",
      onclick: () => logOutDevice(d),
    }),
  );
}

/** Logs a device out: its token stops working and its open connections close (code 4001). */
async function logOutDevice(d) {
  if (d.current) return logOutHere();
  $("account-error").textContent = "";
  try {
    await api("DELETE", `/api/devices/${encodeURIComponent(d.device_id)}`);
  } catch (e) {
    $("account-error").textContent = errorText(e);
  }
  await refreshAccount();
}

function blockedRow(userId) {
  const p = profiles.get(userId);
  return el(
    "li",
    { className: "blocked-user", dataset: { user: userId } },
    el("span", { className: "device-main" }, el("span", { className: "device-name", textContent: displayName(userId) }), p ? el("span", { className: "device-seen", textContent: `@${p.username}` }) : null),
    el("button", { type: "button", className: "secondary unblock-btn", textContent: "Unblock", onclick: () => setBlocked(userId, false).catch((e) => ($("account-error").textContent = errorText(e))) }),
  );
}

// ---------------------------------------------------------------------------------------------
// The block button of a direct chat

function renderBlockButton(c) {
  const direct = c.kind === "direct";
  const isBlocked = direct && blocked.has(c.peer);
  $("block-btn").hidden = !direct;
  $("block-btn").textContent = isBlocked ? "Unblock" : "Block";
  $("blocked-note").hidden = !isBlocked;
  if (isBlocked) {
    $("blocked-note").textContent = `You blocked ${displayName(c.peer)}: they cannot send you messages, add you to groups or see when you are online.`;
  }
}

async function onBlockClick() {
  const c = conversations.get(openId);
  if (!c || c.kind !== "direct") return;
  $("chat-error").textContent = "";
  try {
    await setBlocked(c.peer, !blocked.has(c.peer));
  } catch (e) {
    showChatError(e);
  }
}

async function setBlocked(userId, block) {
  if (block) await api("POST", "/api/blocks", { user_id: userId });
  else await api("DELETE", `/api/blocks/${encodeURIComponent(userId)}`);
  if (block) blocked.add(userId);
  else blocked.delete(userId);
  render();
}
