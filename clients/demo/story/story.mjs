// The demo's story in headless Chromium (Debian's /usr/bin/chromium through playwright-core; no
// browser download): welcome and buckets, operations until the 402 dialog, the suggested package
// bought on the Stripe stand-in's Checkout page, back on ?purchased=true where the blocked
// operation resumes once, then the history. tests/e2e/test_browser_story.py runs it against
// `billing run`; by hand: DEMO_URL=http://localhost:3000 node clients/demo/story/story.mjs
//
// Protocol on stdout, one line each, for the test to follow and act between steps:
//   STEP <name>          a step passed (its screenshot is <SCREENSHOT_DIR>/<nn>-<name>.png)
//   DATA <name> <json>   something the test checks on its side (the blocked operation's entry)
//   WAIT <name>          the script waits for one line on stdin before it goes on
//   DONE                 the story passed
// On a failure: FAIL <message> on stderr, failure.png in SCREENSHOT_DIR, exit code 1.
//
// Environment: DEMO_URL (required), SCREENSHOT_DIR (default: a temporary folder),
// CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS (default 15000: one expectation's wait).
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const demoUrl = required('DEMO_URL');
const screenshotDir = process.env.SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'billing-story-'));
const stepTimeoutMs = Number(process.env.STEP_TIMEOUT_MS || 15_000);
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
let screenshotCount = 0;

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function say(line) {
  process.stdout.write(`${line}\n`);
}

/** A step passed: its screenshot (the whole page, or one part of it), then its STEP line. */
async function step(page, name, part = undefined) {
  screenshotCount += 1;
  const path = join(screenshotDir, `${String(screenshotCount).padStart(2, '0')}-${name}.png`);
  await (part ? part.screenshot({ path }) : page.screenshot({ path, fullPage: true }));
  say(`STEP ${name}`);
}

/** A point where the test acts on its side (e.g. a consume over gRPC) before the story goes on. */
async function waitForTest(name) {
  say(`WAIT ${name}`);
  const line = await stdinLines.next();
  if (line.done) throw new Error(`stdin closed at the waiting point ${name}`);
}

function balanceSection(page) {
  return page.getByRole('region', { name: 'AI Time Balance' });
}

async function expectBalance(page, { total, daily, paid }) {
  const balance = balanceSection(page);
  for (const [term, minutes] of [['Total', total], ['Daily bonus', daily], ['Paid', paid]]) {
    // <div><dt>Total</dt><dd>45 min</dd></div>
    await balance.locator('div', { has: page.locator('dt', { hasText: term }) })
      .locator('dd', { hasText: new RegExp(`^${minutes} min$`) }).waitFor();
  }
}

async function runOperation(page, label) {
  await page.getByRole('button', { name: label, exact: true }).click();
}

async function story(page) {
  // 1. Welcome: the user, the daily bonus and the welcome bucket.
  await page.goto(demoUrl);
  await page.getByRole('heading', { name: 'AI Studio' }).waitFor();
  await page.getByText(/^Welcome, /).waitFor();
  await expectBalance(page, { total: 45, daily: 15, paid: 30 });
  const buckets = page.getByRole('region', { name: 'Buckets' });
  await buckets.getByText(/^daily: 15 min/).waitFor();
  await buckets.getByText(/^welcome: 30 min/).waitFor();
  await page.getByRole('region', { name: 'Packages' }).getByRole('button', { name: 'Buy Mini' }).waitFor();
  await step(page, 'welcome');

  // 2. Two builds (20 min each): daily bonus first, then the welcome bucket.
  await runOperation(page, 'Build an app');
  await page.getByRole('status').filter({ hasText: 'Build an app: used 20 min, 25 min left.' }).waitFor();
  await runOperation(page, 'Build an app');
  await page.getByRole('status').filter({ hasText: 'Build an app: used 20 min, 5 min left.' }).waitFor();
  await expectBalance(page, { total: 5, daily: 0, paid: 5 });
  await step(page, 'operations');

  // 3. A third build is refused: the 402 dialog with the server's suggestions.
  await runOperation(page, 'Build an app');
  const dialog = page.getByRole('dialog', { name: 'Not enough AI time' });
  await dialog.waitFor();
  await dialog.getByText('this operation needs 15 min more').waitFor();
  const suggestions = dialog.getByRole('list', { name: 'Suggestions' });
  const buy = suggestions.getByRole('button', { name: /^Buy / }).first();
  await buy.waitFor();
  const kept = await page.evaluate(() => Object.entries(sessionStorage)
    .filter(([key]) => key.startsWith('billing.resume:')).map(([, value]) => JSON.parse(value)));
  if (kept.length !== 1) throw new Error(`expected one blocked operation in sessionStorage, found ${JSON.stringify(kept)}`);
  say(`DATA blocked ${JSON.stringify({ ...kept[0], suggestion: await buy.innerText() })}`);
  await step(page, 'insufficient');

  // 4. Buy the suggested package: the stand-in's hosted Checkout page.
  await buy.click();
  await page.getByRole('heading', { name: 'Stripe stand-in checkout' }).waitFor();
  const pay = page.getByRole('button', { name: /^Pay / });
  await pay.waitFor();
  await step(page, 'checkout');

  // 5. Pay: back on ?purchased=true; the blocked build runs once with its resume token.
  await pay.click();
  await page.waitForURL((url) => url.origin === new URL(demoUrl).origin);
  await page.getByRole('status').filter({ hasText: 'Resumed “Build an app”: used 20 min.' }).waitFor();
  if (new URL(page.url()).searchParams.has('purchased')) throw new Error(`?purchased=true left in ${page.url()}`);
  await expectBalance(page, { total: 45, daily: 0, paid: 45 });
  await step(page, 'resumed');

  // 6. Live balance: the test consumes 5 minutes over gRPC, as another of the user's devices or
  // a backend job would; the page shows it from the stream, without a reload (the marker set on
  // this document survives only if the page was not loaded again).
  await page.locator('[data-demo="live"][data-live="yes"]').waitFor();
  await page.evaluate(() => { window.storyDocumentMarker = 'before the live consume'; });
  await waitForTest('after-resume');
  await expectBalance(page, { total: 40, daily: 0, paid: 40 });
  const marker = await page.evaluate(() => window.storyDocumentMarker);
  if (marker !== 'before the live consume') throw new Error('the page was reloaded to show the live consume');
  await step(page, 'live');

  // 7. History and usage: the package credit, three builds, no fourth, and the live consume.
  const history = page.getByRole('region', { name: 'History' });
  await history.getByRole('listitem').filter({ hasText: 'Package credit' }).filter({ hasText: '+60 min' }).waitFor();
  await page.getByRole('heading', { name: 'Usage this month: 65 min' }).waitFor();
  await step(page, 'history', page.locator('[data-demo="activity"]'));
}

async function main() {
  mkdirSync(screenshotDir, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(stepTimeoutMs);
    const consoleErrors = [];
    page.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
    try {
      await story(page);
    } catch (error) {
      await page.screenshot({ path: join(screenshotDir, 'failure.png'), fullPage: true }).catch(() => undefined);
      const text = await page.locator('body').innerText().catch(() => '<no page text>');
      process.stderr.write(`FAIL ${error instanceof Error ? error.message : String(error)}\n` +
        `at ${page.url()}; screenshot ${join(screenshotDir, 'failure.png')}\n` +
        `browser console errors: ${JSON.stringify(consoleErrors)}\npage text:\n${text}\n`);
      process.exitCode = 1;
      return;
    }
  } finally {
    await browser.close();
    process.stdin.destroy();
  }
  say('DONE');
}

await main();
