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

/** A page of its own context, recording the page's uncaught errors. */
async function openPage(browser, viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.errors = [];
  page.on("pageerror", (e) => page.errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && page.errors.push(`${m.text()} (${m.location().url})`));
  await page.goto(BASE_URL);
  return page;
}

async function signUp(page, username) {
  await page.locator("#auth-username").fill(username);
  await page.locator("#auth-password").fill("correct horse battery staple");
  await page.locator("#signup-btn").click();
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
