// Shared helpers of the browser end-to-end tests: Debian's Chromium driven
// by playwright-core, the real herald binary (started and stopped by the
// integration tests' harness) serving the built chat demo with its schemas
// on the sqlite engine, and the few page actions every test needs. Screenshots go to
// tests/e2e/artifacts/ (ignored by git).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { HeraldServer, REPO, tomlConfig, unique } from '../../integration/node/lib/harness.mjs';

export const DIST = path.join(REPO, 'examples', 'chat', 'dist');
/** The demo's event schemas, which every test server validates publishes against. */
export const SCHEMA = path.join(REPO, 'examples', 'chat', 'schema', 'chat.json');
export const ARTIFACTS = path.join(REPO, 'tests', 'e2e', 'artifacts');
/** Longest wait for something to show on a page; generous for a loaded 2-core machine. */
export const UI_TIMEOUT_MS = 20_000;

export const DESKTOP = { viewport: { width: 1280, height: 800 } };
export const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

export async function launchBrowser() {
  if (!fs.existsSync(path.join(DIST, 'index.html'))) {
    throw new Error(`the chat demo is not built (${DIST}): run npm run build in examples/chat`);
  }
  return chromium.launch({
    executablePath: process.env.HERALD_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** A data directory for the sqlite engine that outlives restarts of the server. */
export function dataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'herald-e2e-data-'));
}

/**
 * The demo's server: the built page, the demo's schemas for chat:*, presence
 * and join/leave on chat:* (as in examples/chat/herald.toml), the sqlite
 * engine in `data` (the memory engine without), and `extra` config sections.
 */
export function chatServer({ name, data = null, extra = {} }) {
  const engine = data === null ? { type: 'memory' } : { type: 'sqlite', data_dir: data };
  const chat = { schema: SCHEMA, strict_events: true, presence: true, join_leave: true };
  return new HeraldServer({ name, staticDir: DIST, config: tomlConfig({ engine, 'namespaces.chat': chat, ...extra }) });
}

export function roomName() {
  return unique('e2e');
}

/**
 * A new browser context (its own storage: another user) with the room open
 * and a name picked; `routeWebSocket`: a playwright WebSocketRoute handler
 * for the page's connections to /ws (to watch or drop frames).
 */
export async function openChat(browser, server, { name, room, device = DESKTOP, routeWebSocket = null }) {
  const context = await browser.newContext(device);
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  if (routeWebSocket) await context.routeWebSocket(/\/ws$/, routeWebSocket);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  page.errors = errors;
  await page.goto(server.url(`/#/room/${room}`));
  await page.getByLabel('Your name').fill(name);
  await page.getByRole('button', { name: 'Continue' }).click();
  await waitStatus(page, 'Connected');
  await page.getByRole('log', { name: 'Messages' }).waitFor();
  return page;
}

export function connection(page) {
  return page.getByRole('status', { name: 'Connection', exact: true });
}

export async function waitStatus(page, text) {
  await connection(page).filter({ hasText: text }).waitFor();
}

export async function send(page, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

/** The text of every message shown, oldest first. */
export async function messageTexts(page) {
  return page.getByRole('log', { name: 'Messages' }).getByTestId('message-text').allTextContents();
}

/** Waits until the message list is exactly `texts` (in order, each once). */
export async function waitMessages(page, texts) {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  let shown = [];
  while (Date.now() < deadline) {
    shown = await messageTexts(page);
    if (JSON.stringify(shown) === JSON.stringify(texts)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`messages shown: ${JSON.stringify(shown)}, expected: ${JSON.stringify(texts)}`);
}

/** The "Who is online" bar of the room. */
export function onlineBar(page) {
  return page.getByRole('region', { name: 'Who is online' });
}

/** Waits until the online bar lists exactly `names` (sorted, as shown: this tab first, marked "(you)"). */
export async function waitOnline(page, names) {
  const deadline = Date.now() + UI_TIMEOUT_MS;
  let shown = [];
  while (Date.now() < deadline) {
    shown = (await onlineBar(page).getByRole('list').first().getByRole('listitem').allTextContents()).map((t) => t.trim());
    if (JSON.stringify(shown) === JSON.stringify(names)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`online: ${JSON.stringify(shown)}, expected: ${JSON.stringify(names)}`);
}

export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}
