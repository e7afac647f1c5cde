// Owns the headless-Chromium checks of the two pages idgen-server serves to people: /docs (the
// vendored Swagger UI) and /status (server-rendered HTML). Starts the real server itself.
//
// Env: IDGEN_SERVER_BIN (default ../../target/release/idgen-server), CHROMIUM (default
// /usr/bin/chromium). Run through ./run.sh, or `node --test pages.test.mjs` from this folder.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
const serverBin = process.env.IDGEN_SERVER_BIN
  ? path.resolve(process.env.IDGEN_SERVER_BIN)
  : path.resolve(here, '..', '..', 'target', 'release', 'idgen-server');
const chromiumBin = process.env.CHROMIUM || '/usr/bin/chromium';
const screenshotPath = path.join(repoRoot, 'target', 'browser', 'status.png');

const WORKER_ID = '17';
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 10_000;
const PAGE_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 45_000;
const LOOPBACK = '127.0.0.1';

// ---------------------------------------------------------------------------------------------
// The server

/**
 * The server refuses IDGEN_* variables it does not know (IDGEN_SERVER_BIN, or CI's
 * IDGEN_REQUIRE_REDIS), so it gets the environment without any of them, plus the worker id.
 */
function serverEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('IDGEN_')));
  return { ...env, IDGEN_WORKER_ID: WORKER_ID };
}

/** Starts idgen-server on a free loopback port; resolves with its base URL once it says so. */
async function startServer() {
  assert.ok(existsSync(serverBin), `no server binary at ${serverBin} (set IDGEN_SERVER_BIN)`);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'idgen-browser-'));
  const child = spawn(serverBin, ['--bind', `${LOOPBACK}:0`, '--data-dir', dataDir], {
    env: serverEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = { child, dataDir, base: null, stderr: '', exited: null };
  child.stderr.setEncoding('utf8');
  // Keep draining stderr (logs) so the pipe never fills; keep the tail for failure messages.
  child.stderr.on('data', (chunk) => {
    server.stderr = (server.stderr + chunk).slice(-8_000);
  });
  server.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  server.base = await new Promise((resolve, reject) => {
    let stdout = '';
    // Settling twice is a no-op, so the error/exit handlers below may stay attached.
    const fail = (why) => {
      clearTimeout(timer);
      reject(new Error(`${why}\nstdout: ${stdout}\nstderr tail:\n${server.stderr}`));
    };
    const timer = setTimeout(() => fail(`no start-up line within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
    child.once('error', (err) => fail(`could not start ${serverBin}: ${err.message}`));
    child.once('exit', (code, signal) => fail(`server exited before listening (code ${code}, signal ${signal})`));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (server.base) return; // later output is only drained
      stdout += chunk;
      const match = /listening on (http:\/\/[^\s]+)/.exec(stdout);
      if (match && stdout.includes('\n')) {
        clearTimeout(timer);
        resolve(match[1].replace(/\/$/, ''));
      }
    });
  });
  assert.match(server.base, /^http:\/\/127\.0\.0\.1:\d+$/, 'server should listen on 127.0.0.1');
  return server;
}

/** SIGTERM, then SIGKILL if the server is still alive after the grace period; removes its data. */
async function stopServer(server) {
  if (!server) return;
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timedOut = Symbol('timeout');
    let timer;
    const result = await Promise.race([
      server.exited,
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(timedOut), STOP_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    if (result === timedOut) {
      child.kill('SIGKILL');
      await server.exited;
    }
  }
  await rm(server.dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// The browser: one context per page, with every request, failure and console error recorded.

function launchArgs() {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return root ? ['--no-sandbox'] : [];
}

/** A fresh context + page that records what the page does; requests off loopback are aborted. */
async function openRecordedPage(browser, contextOptions) {
  const context = await browser.newContext(contextOptions);
  context.setDefaultTimeout(PAGE_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(PAGE_TIMEOUT_MS);
  const log = { requests: [], failed: [], badStatus: [], consoleErrors: [], pageErrors: [] };
  // Recorded by page.on('request') below; aborting keeps the test off the network either way.
  await context.route(
    (url) => url.hostname !== LOOPBACK,
    (route) => route.abort('blockedbyclient'),
  );
  const page = await context.newPage();
  page.on('request', (req) => log.requests.push(`${req.method()} ${req.url()}`));
  page.on('requestfailed', (req) =>
    log.failed.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText ?? 'failed'}`),
  );
  page.on('response', (res) => {
    if (res.status() >= 400) log.badStatus.push(`${res.status()} ${res.request().method()} ${res.url()}`);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const loc = msg.location();
      log.consoleErrors.push(`${msg.text()} (${loc.url}:${loc.lineNumber})`);
    }
  });
  page.on('pageerror', (err) => log.pageErrors.push(String(err?.stack || err)));
  return { context, page, log };
}

/** The host of a recorded "METHOD URL" line, or the scheme for URLs without one (data:, blob:). */
function hostOf(entry) {
  const url = new URL(entry.slice(entry.indexOf(' ') + 1));
  return url.hostname || url.protocol;
}

function assertStayedLocal(log) {
  assert.ok(log.requests.length > 0, 'the page should have made requests');
  const offLoopback = log.requests.filter((entry) => hostOf(entry) !== LOOPBACK);
  assert.deepEqual(offLoopback, [], `requests that left ${LOOPBACK}:\n${offLoopback.join('\n')}`);
}

function assertClean(log) {
  // One assertion for all kinds, so a failure shows every problem the page had at once.
  const problems = [
    ...log.failed.map((line) => `failed request: ${line}`),
    ...log.badStatus.map((line) => `error response: ${line}`),
    ...log.consoleErrors.map((line) => `console error: ${line}`),
    ...log.pageErrors.map((line) => `uncaught page error: ${line}`),
  ];
  assert.deepEqual(problems, [], `the page had problems:\n${problems.join('\n')}`);
}

/** True when `buf` starts with the PNG signature; returns the IHDR width and height. */
function pngSize(buf) {
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(buf.length > 33, `PNG too short: ${buf.length} bytes`);
  assert.ok(buf.subarray(0, 8).equals(signature), 'not a PNG: bad signature');
  assert.equal(buf.toString('latin1', 12, 16), 'IHDR', 'PNG without IHDR first');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

// ---------------------------------------------------------------------------------------------
// The tests

describe('idgen-server pages in headless Chromium', () => {
  let server;
  let browser;

  // Last resort if the runner is torn down without the after hook: never leave a server behind.
  const killOnExit = () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
    }
  };
  process.once('exit', killOnExit);

  before(async () => {
    server = await startServer();
    browser = await chromium.launch({
      executablePath: chromiumBin,
      headless: true,
      args: launchArgs(),
      timeout: PAGE_TIMEOUT_MS,
    });
  });

  after(async () => {
    try {
      if (browser) await browser.close();
    } finally {
      await stopServer(server);
      process.removeListener('exit', killOnExit);
    }
  });

  test('/docs: Swagger UI lists GET /v1/ids/{kind}, all assets from the server', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const { context, page, log } = await openRecordedPage(browser, { viewport: { width: 1280, height: 900 } });
    try {
      const response = await page.goto(`${server.base}/docs`, { waitUntil: 'load' });
      assert.ok(response, 'no response for /docs');
      assert.equal(new URL(page.url()).pathname, '/docs/', '/docs should redirect to /docs/');
      assert.equal(response.status(), 200, `/docs/ answered ${response.status()}`);

      // The operations list, rendered from /openapi.json.
      await page.locator('.swagger-ui .opblock').first().waitFor({ state: 'visible' });
      const titleText = await page.locator('.swagger-ui .info .title').first().innerText();
      assert.ok(titleText.trim().length > 0, 'the spec title should be shown');

      const ops = await page.locator('.swagger-ui .opblock').evaluateAll((blocks) =>
        blocks.map((block) => {
          const method = block.querySelector('.opblock-summary-method')?.textContent ?? '';
          const pathEl = block.querySelector('.opblock-summary-path');
          const p = pathEl?.getAttribute('data-path') || pathEl?.textContent || '';
          return { method: method.trim().toUpperCase(), path: p.replace(/[\u200b\s]/g, '') };
        }),
      );
      const idsOp = ops.findIndex((op) => op.method === 'GET' && op.path === '/v1/ids/{kind}');
      assert.ok(
        idsOp >= 0,
        `GET /v1/ids/{kind} not listed; operations: ${ops.map((op) => `${op.method} ${op.path}`).join(', ')}`,
      );

      // Expand it: the parameters section with the `kind` path parameter should open.
      const block = page.locator('.swagger-ui .opblock').nth(idsOp);
      await block.locator('.opblock-summary').first().click();
      await block.locator('.opblock-body').waitFor({ state: 'visible' });
      await block.locator('.parameters [data-param-name="kind"], .parameters .parameter__name').first().waitFor();
      const params = await block.locator('.parameters .parameter__name').allInnerTexts();
      assert.ok(
        params.some((name) => name.replace(/[\s*]/g, '').startsWith('kind')),
        `the kind parameter should be shown; parameters: ${params.join(', ')}`,
      );

      // Let late requests (fonts, images, lazily loaded chunks) happen before judging them.
      await page.waitForLoadState('networkidle', { timeout: PAGE_TIMEOUT_MS });
      assert.ok(
        log.requests.some((entry) => entry.endsWith(`${server.base}/openapi.json`)),
        `the page should load /openapi.json; requests:\n${log.requests.join('\n')}`,
      );
      assertStayedLocal(log);
      assertClean(log);
      t.diagnostic(`${log.requests.length} requests, all to ${LOOPBACK}; ${ops.length} operations listed`);
    } finally {
      await context.close();
    }
  });

  test('/status on a phone: worker id, ready badge, no horizontal scroll, screenshot', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const phone = { width: 390, height: 844 };
    const { context, page, log } = await openRecordedPage(browser, {
      viewport: phone,
      deviceScaleFactor: 2,
      isMobile: true,
      hasTouch: true,
    });
    try {
      const response = await page.goto(`${server.base}/status`, { waitUntil: 'load' });
      assert.ok(response, 'no response for /status');
      assert.equal(response.status(), 200, `/status answered ${response.status()}`);

      assert.equal((await page.locator('#worker-id').innerText()).trim(), WORKER_ID);
      const ready = page.locator('#ready');
      assert.equal((await ready.innerText()).trim(), 'ready');
      assert.equal(await ready.getAttribute('class'), 'ok');

      const widths = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        bodyScrollWidth: document.body.scrollWidth,
        innerWidth: window.innerWidth,
      }));
      // innerWidth grows if a mobile browser zooms out to fit wide content: pin it to the phone.
      assert.equal(widths.innerWidth, phone.width, `viewport widened: ${JSON.stringify(widths)}`);
      assert.ok(
        widths.scrollWidth <= widths.innerWidth && widths.bodyScrollWidth <= widths.innerWidth,
        `horizontal scroll on a ${phone.width}px phone: ${JSON.stringify(widths)}`,
      );

      await mkdir(path.dirname(screenshotPath), { recursive: true });
      await rm(screenshotPath, { force: true });
      await page.screenshot({ path: screenshotPath, fullPage: true, timeout: PAGE_TIMEOUT_MS });
      const png = await readFile(screenshotPath);
      const size = pngSize(png);
      assert.equal(size.width, phone.width * 2, `screenshot width ${size.width}`);
      assert.ok(size.height >= phone.height * 2, `screenshot height ${size.height}`);

      await page.waitForLoadState('networkidle', { timeout: PAGE_TIMEOUT_MS });
      assertStayedLocal(log);
      assertClean(log);
      t.diagnostic(`${log.requests.length} requests, all to ${LOOPBACK}; screenshot ${size.width}x${size.height} at ${screenshotPath}`);
    } finally {
      await context.close();
    }
  });
});
