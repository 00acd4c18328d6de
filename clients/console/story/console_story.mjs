// The operator console in headless Chromium (Debian's /usr/bin/chromium through playwright-core; no
// browser download), with axe-core on every page. tests/e2e/test_console_story.py runs it against
// `billing-dev run` (Envoy serves the console on the internal listener); by hand:
//   CONSOLE_URL=http://127.0.0.1:8081/console/ ADMIN_KEY_ID=... ADMIN_SECRET=... node clients/console/story/console_story.mjs
//
// Protocol on stdout, one line each:
//   STEP <name>            a step passed
//   PAGE <json>            a page at a width: {name, width, unimplemented, violations, overflow, errors}
//   DATA <name> <json>     something the test checks on its side
//   DONE                   the story ran to its end
// On a failure: FAIL <message> on stderr, console-failure.png in SCREENSHOT_DIR, exit code 1.
//
// Environment: CONSOLE_URL, ADMIN_KEY_ID, ADMIN_SECRET (required); USER_ID (an account with a ledger),
// EVENT_ID (an outbound event delivered to ENDPOINT_ID), ACTIONS=1 (the grant story: needs
// GetAccountOverview, OperatorGrant and ListAuditEntries; with PAYMENT_ID, a payment of USER_ID, the
// refund story too), DEMO_URL (the demo app of USER_ID: open in a second page during the grant story, whose
// balance must follow the grant live), LOGIN_URL (a `billing console-login` URL: signs in a fresh tab),
// SCREENSHOT_DIR (default: a temporary folder; the screenshots are console-<page>.png), CHROMIUM (default
// /usr/bin/chromium), STEP_TIMEOUT_MS (15000).
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { chromium } from 'playwright-core';

const consoleUrl = required('CONSOLE_URL');
const adminKeyId = required('ADMIN_KEY_ID');
const adminSecret = required('ADMIN_SECRET');
const userId = process.env.USER_ID || '';
const eventId = process.env.EVENT_ID || '';
const paymentId = process.env.PAYMENT_ID || '';
const demoUrl = process.env.DEMO_URL || '';
const screenshotDir = process.env.SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'billing-console-story-'));
const stepTimeoutMs = Number(process.env.STEP_TIMEOUT_MS || 15_000);
const WIDTHS = [1280, 768];

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

function say(line) {
  process.stdout.write(`${line}\n`);
}

/** The page's state once it settled: loaded, or saying its API is not built yet (501). */
async function settle(page) {
  await page.locator('h1').first().waitFor();
  await page.waitForFunction(() => document.querySelectorAll('.loading').length === 0);
  return (await page.locator('[data-unimplemented="true"]').count()) > 0;
}

/** axe-core (WCAG 2.x A and AA rules and best practices): the violations, impact and where. */
async function axe(page) {
  const results = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  return results.violations.map((violation) => ({
    id: violation.id, impact: violation.impact, help: violation.help,
    nodes: violation.nodes.slice(0, 5).map((node) => node.target.join(' ')),
  }));
}

/** The document is wider than the window (sideways scrolling of the whole page; tables scroll in their regions). */
async function overflows(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > document.documentElement.clientWidth + 1);
}

async function visit(page, errors, name, hash, { screenshot = true, check = undefined } = {}) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await page.goto(`${consoleUrl}${hash}`);
    const unimplemented = await settle(page);
    if (check && !unimplemented) await check(page);
    const violations = await axe(page);
    if (screenshot && (width === 1280 || name === 'account')) {
      const suffix = width === 1280 ? '' : `-${width}`;
      await page.screenshot({ path: join(screenshotDir, `console-${name}${suffix}.png`), fullPage: true });
    }
    say(`PAGE ${JSON.stringify({ name, width, unimplemented, violations, overflow: await overflows(page), errors: errors.splice(0) })}`);
  }
}

async function signIn(page, errors) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(consoleUrl);
  await page.getByRole('heading', { name: 'Billing console' }).waitFor();
  const violations = await axe(page);
  await page.screenshot({ path: join(screenshotDir, 'console-sign-in.png'), fullPage: true });
  say(`PAGE ${JSON.stringify({ name: 'sign-in', width: 1280, unimplemented: false, violations, overflow: await overflows(page), errors: errors.splice(0) })}`);

  // Keyboard only: the fields in order, Enter submits.
  await page.getByLabel('Admin key id').focus();
  await page.keyboard.type(adminKeyId);
  await page.keyboard.press('Tab');
  await page.keyboard.type(adminSecret);
  await page.keyboard.press('Enter');
  await page.getByRole('navigation', { name: 'Console' }).waitFor();
  await page.getByRole('heading', { name: 'Accounts', level: 1 }).waitFor();
  const stored = await page.evaluate(() => ({
    session: Object.keys(sessionStorage), local: Object.keys(localStorage), cookies: document.cookie,
  }));
  say(`DATA storage ${JSON.stringify(stored)}`);
  say('STEP signed-in');
}

async function webhooks(page) {
  // The delivery of the test's event, then its replay dialog, opened and closed with the keyboard only.
  const deliveries = page.getByRole('region', { name: 'Webhook deliveries' });
  if (eventId) await deliveries.getByText(eventId).first().waitFor();
  const replay = page.getByRole('button', { name: `Replay ${eventId}` }).first();
  if (!eventId || !(await replay.count())) return;
  await replay.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: `Replay ${eventId}` });
  await dialog.waitFor();
  const focusedInside = await page.evaluate(() => Boolean(document.activeElement?.closest('[role="dialog"]')));
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  const focusBack = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? '');
  say(`DATA replay-dialog ${JSON.stringify({ focusedInside, focusBack })}`);
}

async function account(page) {
  await page.getByRole('heading', { name: 'Balance (as the user sees it)' }).waitFor();
  await page.getByRole('heading', { name: 'Timeline: the available balance' }).waitFor();
  const summary = await page.locator('[data-console="timeline-summary"]').innerText();
  say(`DATA timeline ${JSON.stringify({ summary })}`);
}

/** The demo app of USER_ID in a second page of the browser, as the user has it open while support acts:
 * loaded now (its session key and live stream get ready while the console's pages are visited). */
async function openDemo(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(stepTimeoutMs);
  // Script errors and failed requests, named by URL (Chromium's console line for a failed load has none);
  // the favicon the demo does not ship is the one expected 404.
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  page.on('response', (response) => {
    if (response.status() >= 400 && new URL(response.url()).pathname !== '/favicon.ico') {
      errors.push(`${response.status()} ${response.request().method()} ${response.url()}`);
    }
  });
  page.on('requestfailed', (request) => errors.push(`${request.failure()?.errorText} ${request.method()} ${request.url()}`));
  await page.goto(demoUrl);
  return { page, errors };
}

function demoTotal(page) {
  // <section aria-labelledby=…><h3>AI Time Balance</h3><dl><div><dt>Total</dt><dd>45 min</dd></div>…
  return page.getByRole('region', { name: 'AI Time Balance' })
    .locator('div', { has: page.locator('dt', { hasText: /^Total$/ }) }).locator('dd');
}

/** The demo before the grant: on its live stream (Server-Sent Events), its total read, this document marked. */
async function demoBeforeGrant(demo) {
  const { page } = demo;
  await page.locator('[data-demo="live"][data-live="yes"]').waitFor();
  await demoTotal(page).waitFor();
  await page.evaluate(() => { window.storyDocumentMarker = 'before the grant'; });
  return { user: await page.getByText(/^Welcome, /).innerText(), before: await demoTotal(page).innerText() };
}

/** The demo after the grant: its total changed from the stream, without a reload (the marker survived). */
async function demoAfterGrant(demo, seen) {
  const { page, errors } = demo;
  await demoTotal(page).filter({ hasNotText: seen.before }).waitFor();
  const after = await demoTotal(page).innerText();
  const marker = await page.evaluate(() => window.storyDocumentMarker ?? null);
  const live = await page.locator('[data-demo="live"]').getAttribute('data-live');
  await page.screenshot({ path: join(screenshotDir, 'console-demo-live.png'), fullPage: true });
  say(`DATA demo-live ${JSON.stringify({ ...seen, after, reloaded: marker !== 'before the grant', live, errors: errors.splice(0) })}`);
}

/** Grant with a reason through the dialog (keyboard only), see the balance change and the audit row (and,
 * with the demo open, the user's page follow it live). */
async function grantStory(page, errors, demo) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${consoleUrl}#/accounts/${encodeURIComponent(userId)}`);
  const balance = page.getByRole('region', { name: 'Balance (as the user sees it)' });
  await balance.waitFor();
  const available = () => balance.locator('div', { has: page.locator('dt', { hasText: /^Available$/ }) }).locator('dd').innerText();
  const before = await available();
  const demoSeen = demo ? await demoBeforeGrant(demo) : undefined;
  await page.getByRole('button', { name: 'Grant minutes…' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Grant minutes' });
  await dialog.waitFor();
  await dialog.getByLabel('Minutes').focus();
  await page.keyboard.type('30');
  await dialog.getByLabel(/^Reason/).focus();
  await page.keyboard.type('console story: outage credit');
  await page.keyboard.press('Tab'); // Cancel
  await page.keyboard.press('Tab'); // Grant
  await page.keyboard.press('Enter');
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: /^Done: Grant/ }).waitFor();
  await page.waitForFunction((was) => {
    const term = [...document.querySelectorAll('dt')].find((dt) => dt.textContent === 'Available');
    return term?.nextElementSibling?.textContent !== was;
  }, before);
  const after = await available();
  await page.screenshot({ path: join(screenshotDir, 'console-granted.png'), fullPage: true });
  if (demo) await demoAfterGrant(demo, demoSeen);
  await page.goto(`${consoleUrl}#/audit?user=${encodeURIComponent(userId)}`);
  const row = page.getByRole('region', { name: 'Audit entries' }).getByRole('row').filter({ hasText: 'console story: outage credit' });
  await row.first().waitFor();
  const audit = await row.first().innerText();
  await page.screenshot({ path: join(screenshotDir, 'console-audit-row.png'), fullPage: true });
  errors.splice(0);
  say(`DATA grant ${JSON.stringify({ before, after, audit })}`);
}

function availableIn(page) {
  const balance = page.getByRole('region', { name: 'Balance (as the user sees it)' });
  return balance.locator('div', { has: page.locator('dt', { hasText: /^Available$/ }) }).locator('dd');
}

/** Find the user by a Stripe payment id, refund it with a reason, and watch the claw-back arrive (its webhook). */
async function refundStory(page, errors) {
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${consoleUrl}#/accounts?q=${encodeURIComponent(paymentId)}`);
  const matches = page.getByRole('region', { name: 'Matching accounts' });
  const link = matches.getByRole('link', { name: userId, exact: true });
  await link.waitFor();
  const matchedBy = await matches.getByRole('row').filter({ hasText: userId }).innerText();
  await link.focus();
  await page.keyboard.press('Enter');
  await availableIn(page).waitFor();
  const before = await availableIn(page).innerText();
  await page.getByRole('button', { name: `Refund payment ${paymentId}` }).click();
  const dialog = page.getByRole('dialog', { name: `Refund payment ${paymentId}` });
  await dialog.getByLabel(/^Reason/).fill('console story: customer asked');
  await dialog.getByRole('button', { name: 'Refund', exact: true }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('status').filter({ hasText: /^Done: refund of/ }).waitFor();
  const deadline = Date.now() + stepTimeoutMs;
  let after = await availableIn(page).innerText();
  while (after === before) {
    if (Date.now() > deadline) throw new Error(`the refund's claw-back did not arrive: still ${after}`);
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await page.waitForFunction(() => document.querySelectorAll('.loading').length === 0);
    after = await availableIn(page).innerText();
  }
  await page.screenshot({ path: join(screenshotDir, 'console-refunded.png'), fullPage: true });
  errors.splice(0);
  say(`DATA refund ${JSON.stringify({ matchedBy, before, after })}`);
}

/** The one-time URL of `billing console-login` in a fresh tab: signed in, the fragment gone. */
async function loginUrl(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeoutMs);
    await page.goto(process.env.LOGIN_URL);
    await page.getByRole('navigation', { name: 'Console' }).waitFor();
    await page.getByRole('heading', { name: 'Accounts', level: 1 }).waitFor();
    const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('billing.console.key') || '{}'));
    say(`DATA login-url ${JSON.stringify({ url: page.url(), keyId: stored.key_id ?? '', expires: stored.expires_at ?? '' })}`);
  } finally {
    await context.close();
  }
}

async function loginLink(page, errors) {
  // A one-time link: the fragment leaves the address bar whatever the server answers (here a made-up code).
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${consoleUrl}#login=made-up-code-0123456789`);
  await page.getByRole('heading', { name: 'Billing console' }).waitFor();
  await page.getByRole('alert').first().waitFor();
  const result = { url: page.url(), alert: await page.getByRole('alert').first().innerText() };
  errors.splice(0); // the refused redeem is a failed request in the browser's console, as expected
  say(`DATA login-link ${JSON.stringify(result)}`);
}

async function main() {
  mkdirSync(screenshotDir, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(stepTimeoutMs);
    // Console errors: CSP violations and failed loads show up here. A 501 of a not-yet-built API is expected.
    const errors = [];
    page.on('console', (message) => {
      if (message.type() === 'error' && !/status of 501/.test(message.text())) errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(String(error)));
    let demo;
    try {
      await signIn(page, errors);
      if (demoUrl && process.env.ACTIONS === '1' && userId) demo = await openDemo(context);
      await visit(page, errors, 'webhooks', '#/webhooks', { check: webhooks });
      say('STEP webhooks');
      await visit(page, errors, 'accounts', `#/accounts?q=${encodeURIComponent(userId || 'e2e')}`);
      if (userId) await visit(page, errors, 'account', `#/accounts/${encodeURIComponent(userId)}`, { check: account });
      await visit(page, errors, 'audit', '#/audit');
      await visit(page, errors, 'stripe', '#/stripe');
      await visit(page, errors, 'operations', '#/operations');
      say('STEP pages');
      if (process.env.ACTIONS === '1' && userId) {
        await grantStory(page, errors, demo);
        say('STEP grant');
        if (demo) {
          await demo.page.close();
          demo = undefined;
        }
        if (paymentId) {
          await refundStory(page, errors);
          say('STEP refund');
        }
      }
      if (process.env.LOGIN_URL) {
        await loginUrl(browser);
        say('STEP login-url');
      }
      await loginLink(page, errors);
      say('STEP login-link');
    } catch (error) {
      await page.screenshot({ path: join(screenshotDir, 'console-failure.png'), fullPage: true }).catch(() => undefined);
      const text = await page.locator('body').innerText().catch(() => '<no page text>');
      process.stderr.write(`FAIL ${error instanceof Error ? error.stack : String(error)}\nerrors: ${JSON.stringify(errors)}\npage text:\n${text}\n`);
      if (demo) {
        await demo.page.screenshot({ path: join(screenshotDir, 'console-demo-failure.png'), fullPage: true }).catch(() => undefined);
        const demoText = await demo.page.locator('body').innerText().catch(() => '<no page text>');
        process.stderr.write(`demo page (${demo.page.url()}) errors: ${JSON.stringify(demo.errors)}\ndemo page text:\n${demoText}\n`);
      }
      process.exitCode = 1;
      return;
    }
    say('DONE');
  } finally {
    await browser.close();
  }
}

await main();
