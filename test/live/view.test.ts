/**
 * The web view in a real browser (issue "See a move happen"): Debian's chromium, driven by
 * playwright-core (which never downloads a browser), against a live fabric started with
 * --control-tcp. The page loads with no console error, draws every link of the topology, its numbers
 * change during a live copy and end equal to GET /counters, and the replay slider moves through a
 * recorded simulated run. Screenshots go to $DCONNECT_SCREENSHOT_DIR when set (docs/img/ was made
 * so), else to the test's temporary directory. Skipped, saying why, when chromium is not installed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { controlRequest } from '../../src/live/control-http.js';
import type { FabricCounters } from '../../src/live/fabric-counters.js';
import type { ViewTopology } from '../../src/runtime/view-topology.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const COMMAND_MS = 60_000;
/** Where Debian's chromium package puts the browser; CHROMIUM overrides. */
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `chromium is not installed at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM=/path/to/it): the browser test of the web view is skipped`;

function ok(args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: COMMAND_MS });
  assert.equal(r.status, 0, `dconnect ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/** Polls `check` every 100 ms until it returns a value, at most `ms`. */
async function until<T>(what: string, check: () => Promise<T | null | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const updates = async (page: Page) => Number((await page.locator('#status').getAttribute('data-updates')) ?? 0);
/** The bytes the page's table shows for a trace source. */
const pageBytes = async (page: Page, source: string) => Number(await page.locator(`tr[data-source="${source}"] td[data-bytes]`).getAttribute('data-bytes'));

describe('web view in chromium (dconnect view)', { skip, timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-view-'));
  const state = join(dir, 's');
  const shots = process.env.DCONNECT_SCREENSHOT_DIR ?? dir;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  let topology: ViewTopology;

  before(async () => {
    ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=512MiB', '--pace', 'none', '--control-tcp', '127.0.0.1:0']);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    topology = (await controlRequest<{ topology: ViewTopology }>({ socketPath: join(state, 'host.sock') }, 'GET', '/view/topology', undefined, { timeoutMs: COMMAND_MS })).topology;
  });
  after(async () => {
    await browser?.close();
    spawnSync(process.execPath, [CLI, 'down', '--state', state], { timeout: COMMAND_MS });
    rmSync(dir, { recursive: true, force: true });
  });

  it('dconnect view prints a loopback URL; the page loads with no console error and draws every link', async () => {
    const { url } = JSON.parse(ok(['view', '--state', state, '--json'])) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/view#token=[0-9a-f]{64}$/);
    await page.goto(url);
    await until('two live updates', async () => (await updates(page)) >= 2);
    assert.ok(topology.links.length >= 9, `${topology.links.length} links`);
    for (const l of topology.links) assert.equal(await page.locator(`path[data-link="${l.id}"]`).count(), 1, `link ${l.id} is drawn`);
    for (const n of topology.nodes) assert.equal(await page.locator(`g[data-node="${n.id}"]`).count(), 1, `node ${n.id} is drawn`);
    assert.deepEqual(problems, []);
  });

  it('without the token the page says what to open, and the data routes refuse', async () => {
    const other = await browser.newPage();
    const { url } = JSON.parse(ok(['view', '--state', state, '--json'])) as { url: string };
    await other.goto(url.replace(/#.*$/, ''));
    await until('the error line', async () => /401.*dconnect view/.test((await other.locator('#status').textContent()) ?? ''));
    await other.close();
  });

  it('its numbers change during a live copy, and end equal to GET /counters', async () => {
    const copy = spawn(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '384MiB', '--live', '--state', state], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => copy.on('exit', r));
    const source = 'eth.box0.slot2'; // the DC buffer's cable, toward the switch
    const seen: number[] = [];
    let shot = false;
    let done = false;
    void exited.then(() => (done = true));
    while (!done && seen.length < 200) {
      seen.push(await pageBytes(page, source));
      if (!shot && /running, [1-9]/.test((await page.locator('#jobs').textContent()) ?? '')) {
        await page.waitForTimeout(600);
        await page.screenshot({ path: join(shots, 'view.png') });
        shot = true;
      }
      await page.waitForTimeout(150);
    }
    assert.equal(await exited, 0, 'the copy succeeded');
    const distinct = [...new Set(seen)];
    assert.ok(distinct.length >= 3, `the DC buffer cable's bytes changed during the copy: ${distinct.join(', ')}`);
    assert.ok(distinct.every((v, i) => i === 0 || v > distinct[i - 1]), 'and only grew');
    // Settled: two more updates after the job, then every number equals the control API's.
    const n = await updates(page);
    await until('two more updates', async () => (await updates(page)) >= n + 2);
    const { fabric } = await controlRequest<{ fabric: FabricCounters }>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters');
    for (const l of topology.links) {
      for (const d of l.directions) {
        const c = fabric.trace[d.source];
        assert.equal(await pageBytes(page, d.source), c.wireBytes ?? c.txWireBytes, `${d.source}: the page's bytes are /counters'`);
      }
    }
    assert.ok((await pageBytes(page, source)) > 384 * 2 ** 20, 'the DC buffer cable carried the data');
    assert.match((await page.locator('#jobs').textContent()) ?? '', /done, 384\.0 MiB of 384\.0 MiB \(100%\)/);
    assert.deepEqual(problems, []);
  });

  it('replays a recorded simulated run with its slider', async () => {
    const trace = join(dir, 'trace.json');
    spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '4MiB', '--via', 'both', '--trace-events', trace], { timeout: COMMAND_MS });
    await page.locator('#tracefile').setInputFiles(trace);
    await until('the replay', async () => ((await page.locator('#status').textContent()) ?? '').startsWith('replay: direct'));
    const slider = page.locator('#slider');
    const max = Number(await slider.getAttribute('max'));
    assert.ok(max > 100, `${max} windows`);
    const look = async (at: number) => {
      await slider.fill(String(at));
      return { time: await page.locator('#time').textContent(), jobs: await page.locator('#jobs').textContent(), util: await page.locator('path[data-link="cable:box0.slot2"]').getAttribute('data-util') };
    };
    const start = await look(0);
    const middle = await look(Math.round(max / 2));
    await page.screenshot({ path: join(shots, 'view-replay.png') });
    const end = await look(max);
    assert.notEqual(start.time, middle.time);
    assert.notEqual(middle.time, end.time);
    assert.match(start.jobs ?? '', /written 0 B of 4\.0 MiB \(0%\)/);
    assert.match(end.jobs ?? '', /written 4\.0 MiB of 4\.0 MiB \(100%\)/);
    // Windows are short (µs): a link idles between chunks, so look at a stretch of them mid-move.
    const busiest = async (link: string, last: number) => {
      let most = 0;
      for (let at = Math.round(last * 0.4); at <= Math.round(last * 0.6); at += Math.max(1, Math.round(last / 100))) {
        await slider.fill(String(at));
        most = Math.max(most, Number(await page.locator(`path[data-link="${link}"]`).getAttribute('data-util')));
      }
      return most;
    };
    assert.ok((await busiest('cable:box0.slot2', max)) > 0.2, "the DC buffer's cable is busy mid-move");
    assert.ok((await busiest('hostLink', max)) < 0.05, 'the host link is all but idle in the direct move');
    // The conventional run is the other choice: its host link carries the data.
    await page.locator('#run').selectOption({ label: 'conventional' });
    await until('the conventional run', async () => ((await page.locator('#status').textContent()) ?? '').startsWith('replay: conventional'));
    assert.ok((await busiest('hostLink', Number(await slider.getAttribute('max')))) > 0.2, 'the host link is busy in the conventional move');
    assert.deepEqual(problems, []);
  });
});

describe('copy --live --trace-events, and GET /counters for the whole fabric', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-livetrace-'));
  const state = join(dir, 's');
  before(() => {
    ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=256MiB', '--pace', 'none']);
  });
  after(() => {
    spawnSync(process.execPath, [CLI, 'down', '--state', state], { timeout: COMMAND_MS });
    rmSync(dir, { recursive: true, force: true });
  });

  it('samples the job in wall time, with simulated time as an argument; the DC buffer cable is busy, the host link is not', () => {
    const file = join(dir, 'live.json');
    const r = spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '96MiB', '--live', '--state', state, '--trace-events', file, '--trace-window', '100ms'], { encoding: 'utf8', timeout: COMMAND_MS });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /trace events: .* in .*live\.json/);
    const trace = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: { name: string; ph: string; ts: number; pid: number; args?: Record<string, number> }[]; otherData: { clock: string; runs: { windows: number; topology?: unknown }[] } };
    assert.equal(trace.otherData.clock, 'wall');
    assert.ok(trace.otherData.runs[0].windows >= 2 && trace.otherData.runs[0].topology);
    const track = (prefix: string) => trace.traceEvents.filter((e) => e.ph === 'C' && e.pid === 1 && e.name.startsWith(prefix));
    // The sampling stops within a period of the move's end, so the last windows may hold the start of the verification's reads (through the host): left out.
    const busy = (prefix: string) => track(prefix).slice(0, -3).reduce((m, e) => Math.max(m, e.args!.utilisation), 0);
    assert.ok(track('Ethernet box0.slot2').every((e) => typeof e.args!.simulatedUs === 'number'));
    assert.ok(busy('Ethernet box0.slot2 (dcbuf0) sw1.p') > 0.05, "the DC buffer's cable carried the data");
    // While the DC buffer's cable carries the move, the host link idles: in the windows where the
    // cable is busy, the host link is not (but for one, where the move's end meets the verification's
    // reads through the host).
    const cable = new Map(track('Ethernet box0.slot2 (dcbuf0) sw1.p').map((e) => [e.ts, e.args!.utilisation]));
    const during = track('PCIe hostLink upstream').filter((e) => (cable.get(e.ts) ?? 0) > 0.05);
    assert.ok(during.length >= 2, 'windows while the data moved');
    assert.ok(during.filter((e) => e.args!.utilisation >= 0.05).length <= 1, `the host link did not: ${during.map((e) => e.args!.utilisation.toFixed(3)).join(' ')}`);
  });

  it("GET /counters' fabric holds each box component's counters from its box; the host's own trace has zeros there", async () => {
    const c = await controlRequest<{ trace: Record<string, Record<string, number>>; fabric: FabricCounters }>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters');
    assert.equal(c.trace['eth.box0.slot2'].txWireBytes, 0, 'the host node does not run the box');
    assert.ok(c.fabric.trace['eth.box0.slot2'].txWireBytes > 96 * 2 ** 20);
    assert.deepEqual(c.fabric.trace['hostLink.upstream'], c.trace['hostLink.upstream']);
    assert.deepEqual(c.fabric.nodes, { host: 'here', box0: 'asked' });
    assert.ok(c.fabric.gauges['bridge.host'] && typeof c.fabric.gauges['bridge.host'].windowFrames === 'number');
  });
});
