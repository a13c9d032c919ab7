/**
 * The views' command-line side (issue "See a move happen"): copy --trace-events / --timeline /
 * --trace-window, --via both, repro --trace-events and dconnect view --replay write what they say,
 * and refuse bad input before any work, writing nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dconnect-views-'));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: dir, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('copy --via both --trace-events --timeline: both moves in one trace, a chart of both, two results', () => {
  const r = run('copy', 'sda', 'sdb', '--length', '2MiB', '--via', 'both', '--trace-events', 'both.json', '--timeline', 'both.svg', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.direct.mode, 'direct');
  assert.equal(out.conventional.mode, 'conventional');
  assert.equal(out.direct.fidelity.mode, 'full', 'a traced move runs at the full fidelity');
  const trace = JSON.parse(readFileSync(join(dir, 'both.json'), 'utf8'));
  assert.deepEqual(trace.otherData.runs.map((x: { label: string }) => x.label), ['direct', 'conventional']);
  assert.match(r.stderr, /ui\.perfetto\.dev/);
  const svg = readFileSync(join(dir, 'both.svg'), 'utf8');
  assert.ok(svg.startsWith('<svg') && svg.includes('conventional'));
});

test('bad view options are refused before any work, naming the option, and nothing is written', () => {
  const cases: [string[], RegExp][] = [
    [['--trace-events', join(dir, 'no-such-dir', 't.json')], /--trace-events .*does not exist/],
    [['--timeline', 'chart.gif'], /--timeline 'chart\.gif'.*PNG or SVG/],
    [['--trace-events', 't.json', '--fidelity', 'fast'], /full fidelity only/],
    [['--trace-window', '10us'], /--trace-window .*neither is given/],
    [['--trace-events', 't.json', '--trace-window', '1ns'], /below 10ns/],
    [['--trace-events', 't.json', '--trace-window', '5'], /--trace-window '5' is not a time/],
    [['--via', 'both', '--capture', 'host', '--pcap', 'x.pcap'], /--via both/],
  ];
  const before = readdirSync(dir).sort();
  for (const [extra, why] of cases) {
    const r = run('copy', 'sda', 'sdb', '--length', '1MiB', ...extra);
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, why, extra.join(' '));
  }
  assert.deepEqual(readdirSync(dir).sort(), before, 'nothing written');
});

test('repro --trace-events traces the first direct and conventional move of Fig. 5', () => {
  const r = run('repro', '--only', 'fig5', '--runs', '1', '--size', '4MiB', '--out', 'results', '--trace-events', 'fig5.json'); // 4 MiB: at 1 MiB the paper's bounds fail (exit 1)
  assert.equal(r.code, 0, r.stderr);
  const trace = JSON.parse(readFileSync(join(dir, 'fig5.json'), 'utf8'));
  assert.deepEqual(trace.otherData.runs.map((x: { label: string }) => x.label), ['fig5 direct x8 seed 1', 'fig5 conventional x8 seed 1']);
  assert.ok(trace.traceEvents.some((e: { cat?: string }) => e.cat === 'nvme'));
  const fig8 = run('repro', '--only', 'fig8', '--out', 'results8', '--trace-events', 'fig8.json');
  assert.equal(fig8.code, 2);
  assert.match(fig8.stderr, /no drive-to-drive move to trace/);
  assert.ok(!existsSync(join(dir, 'results8')), 'refused before any work');
  const nic = run('copy', 'sda', 'net:client0', '--length', '1MiB', '--topology', 'paper-2012-nic', '--trace-events', 'nic.json');
  assert.equal(nic.code, 2);
  assert.match(nic.stderr, /through a NIC is not traced yet/);
  const shard = run('repro', '--only', 'fig5', '--runs', '1', '--size', '1MiB', '--out', 'results', '--trace-events', 'shard.json', '--shard', '1/2');
  assert.equal(shard.code, 2);
  assert.match(shard.stderr, /not a shard/);
});

test('view --replay writes a standalone page with the trace; a file that is not one is refused', () => {
  const r = run('copy', 'sda', 'sdb', '--length', '1MiB', '--trace-events', 'one.json');
  assert.equal(r.code, 0, r.stderr);
  const ok = run('view', '--replay', 'one.json', '--out', 'one.html');
  assert.equal(ok.code, 0, ok.stderr);
  const page = readFileSync(join(dir, 'one.html'), 'utf8');
  assert.ok(page.includes('window.DCONNECT_TRACE = {') && page.includes('ELK'));
  assert.ok(!/<script[^>]+src=/.test(page), 'the page loads no script from anywhere');
  writeFileSync(join(dir, 'not-a-trace.json'), '{"hello": 1}');
  for (const [args, why] of [
    [['--replay', 'not-a-trace.json', '--out', 'x.html'], /not a trace of a simulated dconnect run/],
    [['--replay', 'missing.json', '--out', 'x.html'], /--replay 'missing\.json'/],
    [['--replay', 'one.json', '--out', 'x.txt'], /the page is HTML/],
    [['--replay', 'one.json'], /option '--replay <file>' needs option '--out <file>'/],
    [['--out', 'x.html'], /option '--out <file>' needs option '--replay <file>'/],
  ] as [string[], RegExp][]) {
    const bad = run('view', ...args);
    assert.equal(bad.code, 2, args.join(' '));
    assert.match(bad.stderr, why);
  }
  assert.ok(!existsSync(join(dir, 'x.html')));
});

test('view without a fabric says how to start one', () => {
  const r = run('view', '--state', join(dir, 'no-fabric'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /NOT_RUNNING.*no fabric/);
  assert.match(r.stderr, /--control-tcp/);
});
