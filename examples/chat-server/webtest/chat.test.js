// The web page in a real headless Chromium, against a running chat server: two users in two
// browser contexts (so two separate sessionStorages) chat with each other.
//
//   CHAT_WEBTEST_URL=http://127.0.0.1:8080 node --test
//
// ./run starts a fresh server and sets the variables. CHAT_WEBTEST_SHOTS names the folder for
// the end-of-test screenshots (default: a new temp folder, printed).

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE_URL = process.env.CHAT_WEBTEST_URL;
const CHROMIUM = process.env.CHAT_WEBTEST_CHROMIUM ?? "/usr/bin/chromium";

// Waits are for the page to reach a state, not limits on speed: generous, so a slow machine
// still passes, while a page that never gets there fails instead of hanging.
const WAIT_MS = 20_000;

async function launch() {
  // playwright-core's launch() starts Chromium on a fresh, empty, temporary profile and removes
  // it afterwards. The flags keep a root, offline, GPU-less machine quiet: no sandbox (root), no
  // background calls to Google services that cannot be reached here.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A page of its own context (its own storage: a device of its own), recording the page's
 *  uncaught errors. */
async function openPage(browser, viewport, url = BASE_URL) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && page.errors.push(`${m.text()} (${m.location().url})`));
  await page.goto(url);
  return page;
}

const PASSWORD = "correct horse battery staple";

async function signUp(page, username) {
  await page.locator("#auth-username").fill(username);
  await page.locator("#auth-password").fill(PASSWORD);
  await page.locator("#signup-btn").click();
  await page.locator("#app").waitFor();
  await page.locator("#me-name", { hasText: username }).waitFor();
}

async function logIn(page, username) {
  await page.locator("#auth-username").fill(username);
  await page.locator("#auth-password").fill(PASSWORD);
  await page.locator("#login-btn").click();
  await page.locator("#app").waitFor();
  await page.locator("#me-name", { hasText: username }).waitFor();
}

/** Sends `body` from the open conversation and waits until the server confirmed it. */
async function send(page, body) {
  await page.locator("#composer-input").fill(body);
  await page.locator("#composer-input").press("Enter");
  // Confirmed messages carry their server id; pending ones do not.
  await page.locator(".msg.mine[data-id]", { hasText: body }).waitFor();
}

const mark = (page, body) => page.locator(".msg.mine", { hasText: body }).locator(".mark");

test("two users chat: live delivery, receipts, typing", { skip: !BASE_URL && "CHAT_WEBTEST_URL is not set" }, async (t) => {
  const browser = await launch();
  t.after(() => browser.close());

  // Unique names, so the test also runs against a server that has seen it before.
  const suffix = Math.random().toString(36).slice(2, 8);
  const alice = `alice-${suffix}`;
  const bob = `bob-${suffix}`;

  const a = await openPage(browser, { width: 1100, height: 720 });
  const b = await openPage(browser, { width: 390, height: 760 }); // a phone: one pane at a time
  await signUp(a, alice);
  await signUp(b, bob);

  // Alice starts a direct chat by username. The body is markup, which must show as text.
  const first = "hi <b>bob</b> & welcome";
  await a.locator("#direct-username").fill(bob);
  await a.locator("#direct-form button").click();
  await a.locator("#chat-title", { hasText: bob }).waitFor();
  await send(a, first);

  // Bob sees it arrive live: his list gains Alice's conversation with one unread message.
  const bobsEntry = b.locator("#conv-list .conv", { hasText: alice });
  await bobsEntry.locator(".badge", { hasText: "1" }).waitFor();
  await bobsEntry.locator(".conv-preview", { hasText: first }).waitFor();

  // Bob's page acked it, so Alice sees "delivered" and not yet "read".
  await mark(a, first).and(a.locator(".delivered")).waitFor();
  assert.equal(await mark(a, first).textContent(), "✓");

  // Bob opens the conversation, which reads it: Alice sees the read mark.
  await bobsEntry.click();
  const received = b.locator(".msg.theirs", { hasText: first });
  await received.waitFor();
  assert.equal(await received.locator(".body").textContent(), first);
  assert.equal(await received.locator(".body b").count(), 0, "user text must not become markup");
  await mark(a, first).and(a.locator(".read")).waitFor();
  assert.equal(await mark(a, first).textContent(), "✓✓");
  await bobsEntry.locator(".badge").waitFor({ state: "detached" }).catch(() => {}); // list is redrawn
  assert.equal(await b.locator("#conv-list .badge").count(), 0, "nothing unread once opened");

  // Typing shows on the other side, both ways.
  await b.locator("#composer-input").pressSequentially("hello", { delay: 20 });
  await a.locator("#typing", { hasText: `${bob} is typing…` }).waitFor();
  await a.locator("#composer-input").pressSequentially("one sec", { delay: 20 });
  await b.locator("#typing", { hasText: `${alice} is typing…` }).waitFor();

  // Bob replies; Alice has the conversation open, so she reads it at once.
  const reply = "hello alice, all good here";
  await b.locator("#composer-input").fill(reply);
  await b.locator("#composer").locator("button").click();
  await a.locator(".msg.theirs", { hasText: reply }).waitFor();
  await a.locator("#typing", { hasText: "typing" }).waitFor({ state: "hidden" }).catch(() => {});
  assert.equal(await a.locator("#typing").textContent(), "", "a sent message ends its typing line");
  await mark(b, reply).and(b.locator(".read")).waitFor();

  // Each sees the other online.
  await a.locator("#chat-subtitle", { hasText: "online" }).waitFor();
  await b.locator("#chat-subtitle", { hasText: "online" }).waitFor();

  // Messages show in id order on both sides.
  for (const page of [a, b]) {
    const bodies = await page.locator(".msg .body").allTextContents();
    assert.deepEqual(bodies, [first, reply]);
  }

  const shots = process.env.CHAT_WEBTEST_SHOTS || mkdtempSync(join(tmpdir(), "chat-webtest-"));
  await a.screenshot({ path: join(shots, "alice.png") });
  await b.screenshot({ path: join(shots, "bob.png") });
  t.diagnostic(`screenshots: ${shots}`);

  // A group: Alice creates it with Bob as a member; Bob, back on his list, sees it arrive by name.
  const group = `Weekend ${suffix}`;
  const question = "who is in for saturday?";
  await a.locator(".group-box summary").click();
  await a.locator("#group-name").fill(group);
  await a.locator("#group-members").fill(bob);
  await a.locator("#group-form button").click();
  await a.locator("#chat-title", { hasText: group }).waitFor();
  await a.locator("#chat-subtitle", { hasText: "2 members" }).waitFor();
  await send(a, question);
  await b.locator("#back-btn").click();
  const bobsGroup = b.locator("#conv-list .conv", { hasText: group });
  await bobsGroup.locator(".badge", { hasText: "1" }).waitFor();
  await bobsGroup.click();
  const asked = b.locator(".msg.theirs", { hasText: question });
  assert.equal(await asked.locator(".sender").textContent(), alice, "group messages name their sender");
  await mark(a, question).and(a.locator(".read")).waitFor();
  await a.screenshot({ path: join(shots, "alice-group.png") });
  await b.screenshot({ path: join(shots, "bob-group.png") });

  // sessionStorage keeps Alice signed in across a reload, and history comes back from the server.
  await a.reload();
  await a.locator("#conv-list .conv", { hasText: bob }).click();
  await a.locator(".msg.theirs", { hasText: reply }).waitFor();
  assert.deepEqual(await a.locator(".msg .body").allTextContents(), [first, reply]);

  assert.deepEqual(a.errors, [], "no errors on Alice's page");
  assert.deepEqual(b.errors, [], "no errors on Bob's page");
});

/** The open conversation's list entry, and the conversation opened by clicking it. */
async function openChat(page, title) {
  await page.locator("#conv-list .conv", { hasText: title }).click();
  await page.locator("#chat-title", { hasText: title }).waitFor();
}

/** A message of the open conversation by its text (not by a quote of it in a reply). */
const message = (page, text) =>
  page.locator("#message-list .msg").filter({ has: page.locator(":scope > .body", { hasText: text }) });

/** Clicks one of a message's actions (they show while it is hovered). */
async function act(page, text, action) {
  const m = message(page, text);
  await m.hover();
  await m.locator(`.actions .act.${action}`).click();
}

/** A timeline line of a group event. */
const notice = (page, text) => page.locator("#message-list .notice", { hasText: text });

/** A row of the open group's members panel. */
const memberRow = (page, username) => page.locator("#member-list .member", { hasText: username });

/** Waits until this page's local copy holds everything it was told so far. */
const persisted = (page) => page.evaluate(() => LocalCache.persisted());

/** Chrome reports each 4xx answer on the console; these are the ones a test provokes on purpose. */
const expectedErrors = (page, ...statuses) =>
  page.errors.filter((e) => !statuses.some((s) => e.includes(`status of ${s}`)));

test("groups, invites, two devices, message events, blocking and the local copy", { skip: !BASE_URL && "CHAT_WEBTEST_URL is not set" }, async (t) => {
  const browser = await launch();
  t.after(() => browser.close());

  const suffix = Math.random().toString(36).slice(2, 8);
  const [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map((n) => `${n}-${suffix}`);
  const wide = { width: 1100, height: 760 };
  const a = await openPage(browser, wide);
  const b = await openPage(browser, wide);
  const c = await openPage(browser, wide);
  await signUp(a, alice);
  await signUp(b, bob);
  await signUp(c, carol);
  // Bob's second device: another browser context that logs in as him.
  const b2 = await openPage(browser, wide);
  await logIn(b2, bob);

  // Alice creates a group with Bob: she is its owner, he a plain member.
  const group = `Trip ${suffix}`;
  await a.locator(".group-box summary").click();
  await a.locator("#group-name").fill(group);
  await a.locator("#group-members").fill(bob);
  await a.locator("#group-form button").click();
  await a.locator("#chat-title", { hasText: group }).waitFor();
  await a.locator("#info-btn").click();
  await memberRow(a, alice).locator(".role-badge", { hasText: "owner" }).waitFor();
  await memberRow(a, bob).waitFor();
  assert.equal(await memberRow(a, bob).locator(".role-badge").count(), 0, "bob starts as a plain member");

  // She makes him an admin; the group event brings the group to both of his devices.
  await memberRow(a, bob).locator(".role-btn", { hasText: "Make admin" }).click();
  await memberRow(a, bob).locator(".role-badge", { hasText: "admin" }).waitFor();
  await notice(a, `You made ${bob} an admin`).waitFor();
  await openChat(b, group);
  await notice(b, `${alice} made you an admin`).waitFor();

  // Bob, an admin, adds Carol and then removes her; everyone's view follows live.
  await b.locator("#info-btn").click();
  await memberRow(b, alice).waitFor();
  await b.locator("#member-username").fill(carol);
  await b.locator("#member-form button").click();
  await memberRow(b, carol).waitFor();
  await memberRow(a, carol).waitFor();
  await notice(a, `${bob} added ${carol}`).waitFor();
  await openChat(c, group);
  await notice(c, `${bob} added you`).waitFor();
  assert.equal(await c.locator("#info-btn").isVisible(), true);
  await memberRow(b, carol).locator(".remove-btn").click();
  await memberRow(b, carol).waitFor({ state: "detached" });
  await memberRow(a, carol).waitFor({ state: "detached" });
  await notice(a, `${bob} removed ${carol}`).waitFor();
  await c.locator("#left-note").waitFor();
  assert.equal(await c.locator("#composer").isVisible(), false, "a removed member cannot write");
  await b.locator("#group-panel-close").click();

  // Alice makes a one-use invite link; Carol opens it (in her signed-in tab) and is back in.
  await a.locator("#invite-max-uses").fill("1");
  await a.locator("#invite-form button").click();
  const firstLink = await a.locator("#invite-list .invite-link").first().inputValue();
  assert.match(firstLink, /\/#\/invite\/[0-9a-f]{32}$/);
  await c.goto(firstLink);
  await c.locator("#chat-title", { hasText: group }).waitFor();
  await c.locator("#left-note").waitFor({ state: "hidden" });
  await memberRow(a, carol).waitFor();
  await notice(a, `${carol} joined`).waitFor();

  // Dave, signed out, opens the used-up link: after signing up he is told it is gone (410).
  const d = await openPage(browser, wide, `${BASE_URL}/?invite=${firstLink.split("/").pop()}`);
  await d.locator("#auth-notice", { hasText: "join the group" }).waitFor();
  await signUp(d, dave);
  await d.locator("#sidebar-error", { hasText: "used up" }).waitFor();
  assert.match(await d.locator("#sidebar-error").textContent(), /\(gone\)/);
  // A second link, with no limits, lets him in; revoked, it is gone from Alice's panel.
  await a.locator("#invite-form button").click();
  await a.locator("#invite-list .invite").nth(1).waitFor();
  const secondLink = await a.locator("#invite-list .invite-link").first().inputValue();
  assert.notEqual(secondLink, firstLink);
  await d.goto(secondLink);
  await d.locator("#chat-title", { hasText: group }).waitFor();
  await memberRow(a, dave).waitFor();
  await a.locator(`#invite-list .invite[data-code="${secondLink.split("/").pop()}"] .revoke-btn`).click();
  await a.locator("#invite-list .invite").nth(1).waitFor({ state: "detached" });

  // Dave leaves (the button asks twice): the group is gone from his list; the others see it.
  await d.locator("#info-btn").click();
  await d.locator("#leave-btn").click();
  await d.locator("#leave-btn", { hasText: "again" }).click();
  await d.locator("#conv-list .conv", { hasText: group }).waitFor({ state: "detached" });
  await notice(a, `${dave} left`).waitFor();
  await memberRow(a, dave).waitFor({ state: "detached" });
  await a.locator("#group-panel-close").click();

  // One message reaches both of Bob's devices.
  const plan = "plan for saturday?";
  await send(a, plan);
  await message(b, plan).waitFor();
  await openChat(b2, group);
  await message(b2, plan).waitFor();

  // Bob replies to it: Alice sees his reply quoting her message.
  await act(b, plan, "reply");
  await b.locator("#composer-bar", { hasText: `Replying to ${alice}` }).waitFor();
  const yes = "count me in";
  await send(b, yes);
  const replyOnA = message(a, yes);
  await replyOnA.locator(".quote", { hasText: plan }).waitFor();
  assert.equal(await replyOnA.locator(".quote-sender").textContent(), "You", "the quote names its sender");
  assert.equal(await replyOnA.locator(".sender").textContent(), bob);

  // Alice edits her message: Bob's second device shows the new text, marked edited, live.
  const sunday = "plan for sunday?";
  await act(a, plan, "edit");
  assert.equal(await a.locator("#composer-input").inputValue(), plan, "the composer holds the text to edit");
  await a.locator("#composer-input").fill(sunday);
  await a.locator("#composer-input").press("Enter");
  await message(b2, sunday).locator(".edited").waitFor();
  await message(b, yes).locator(".quote", { hasText: sunday }).waitFor();

  // She sends a message and deletes it: it is gone from Bob's screen, live.
  const oops = "oops, wrong chat";
  await send(a, oops);
  await message(b, oops).waitFor();
  await act(a, oops, "delete");
  await a.locator(".confirm-yes").click();
  await b.locator("#message-list .msg.deleted").waitFor();
  assert.equal(await message(b, oops).count(), 0, "the deleted text is gone");

  // Carol reacts; Alice sees the count, and Bob's second device adds to it.
  await message(c, sunday).waitFor();
  await act(c, sunday, "react");
  await message(c, sunday).locator('.pick[data-emoji="👍"]').click();
  const thumbs = (page) => message(page, sunday).locator('.reaction[data-emoji="👍"]');
  await thumbs(a).locator(".count", { hasText: "1" }).waitFor();
  await act(b2, sunday, "react");
  await message(b2, sunday).locator('.pick[data-emoji="👍"]').click();
  await thumbs(a).locator(".count", { hasText: "2" }).waitFor();
  await thumbs(b2).and(b2.locator(".reaction.mine")).waitFor();
  const shots = process.env.CHAT_WEBTEST_SHOTS || mkdtempSync(join(tmpdir(), "chat-webtest-"));
  t.diagnostic(`screenshots: ${shots}`);
  await message(a, yes).hover();
  await a.screenshot({ path: join(shots, "alice-group-events.png") });
  await a.locator("#info-btn").click();
  await memberRow(a, carol).waitFor();
  await a.screenshot({ path: join(shots, "alice-members-panel.png") });
  await a.locator("#group-panel-close").click();

  // Bob's second device reloads with the network held: no API call answered, no WebSocket to
  // the server. What shows can only come from the local copy.
  await thumbs(b2).locator(".count", { hasText: "2" }).waitFor();
  await persisted(b2);
  const shown = await b2.locator("#message-list .msg .body").allTextContents();
  const heldCalls = [];
  const heldSockets = [];
  let released = false;
  await b2.route("**/api/**", (route) => (released ? route.continue() : heldCalls.push(route)));
  await b2.routeWebSocket(/\/ws/, (ws) => (released ? ws.connectToServer() : heldSockets.push(ws)));
  await b2.reload();
  await b2.locator("#chat-title", { hasText: group }).waitFor();
  await message(b2, sunday).locator(".edited").waitFor();
  assert.deepEqual(await b2.locator("#message-list .msg .body").allTextContents(), shown);
  assert.equal(await thumbs(b2).locator(".count").textContent(), "2");
  assert.equal(await b2.locator("#message-list .msg.deleted").count(), 1);
  await message(b2, yes).locator(".quote", { hasText: sunday }).waitFor();
  await notice(b2, `${carol} joined`).waitFor();
  assert.ok(heldCalls.length > 0 && heldSockets.length > 0, "the page did try the network");
  assert.equal(await b2.locator("#conv-list .conv", { hasText: group }).count(), 1);
  // Meanwhile Alice writes. Released, the page connects again (the server's 4002 asks a client
  // to reconnect and sync) and gets just that.
  const later = "see you there";
  await send(a, later);
  released = true;
  for (const route of heldCalls) await route.continue();
  for (const ws of heldSockets) await ws.close({ code: 4002, reason: "reconnect and sync" });
  await message(b2, later).waitFor();
  await b2.locator("#conn-status.online").waitFor({ state: "attached" });

  // Blocking: Carol blocks Alice in their direct chat; Alice's message to her then fails with
  // the server's code, and keeps its text.
  await a.locator("#direct-username").fill(carol);
  await a.locator("#direct-form button").click();
  await a.locator("#chat-title", { hasText: carol }).waitFor();
  await send(a, "hi carol");
  await openChat(c, alice);
  await c.locator("#block-btn", { hasText: "Block" }).click();
  await c.locator("#block-btn", { hasText: "Unblock" }).waitFor();
  await c.locator("#blocked-note").waitFor();
  const refused = "are you ignoring me?";
  await a.locator("#composer-input").fill(refused);
  await a.locator("#composer-input").press("Enter");
  const failed = message(a, refused);
  await failed.locator(".failed-why", { hasText: "(blocked)" }).waitFor();
  await failed.locator(".revise").click();
  assert.equal(await a.locator("#composer-input").inputValue(), refused, "the text comes back to the composer");
  await a.locator("#composer-input").fill("");
  await c.locator("#account-btn").click();
  const blockedAlice = c.locator("#blocked-list .blocked-user", { hasText: alice });
  await blockedAlice.locator(".unblock-btn").click();
  await blockedAlice.waitFor({ state: "detached" });
  await send(a, "hello again");
  await c.locator("#conv-list .conv", { hasText: alice }).locator(".conv-preview", { hasText: "hello again" }).waitFor();

  // Devices: Bob's second device lists both and logs the first one out, which is sent back to
  // the login screen (close code 4001).
  await b2.locator("#account-btn").click();
  await b2.locator("#device-list .device").nth(1).waitFor();
  assert.equal(await b2.locator("#device-list .device.current").count(), 1);
  await b2.locator("#device-list .device:not(.current) .device-logout").click();
  await b.locator("#auth-notice", { hasText: "logged out" }).waitFor();
  assert.equal(await b.locator("#app").isVisible(), false);
  await b2.locator("#device-list .device").nth(1).waitFor({ state: "detached" });

  await b2.screenshot({ path: join(shots, "bob2-devices.png") });
  await b.screenshot({ path: join(shots, "bob-logged-out.png") });

  assert.deepEqual(a.errors, [], "no errors on Alice's page");
  assert.deepEqual(b.errors, [], "no errors on Bob's first page");
  assert.deepEqual(b2.errors, [], "no errors on Bob's second page");
  assert.deepEqual(expectedErrors(c), [], "no errors on Carol's page");
  assert.deepEqual(expectedErrors(d, 410), [], "no errors on Dave's page but the used-up invite");
});
