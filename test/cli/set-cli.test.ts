import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dconnectIn } from '../helpers/cli-in-process.js';

const EXAMPLE = fileURLToPath(new URL('../../../docs/examples/small-ssds.yaml', import.meta.url));
/** A conventional copy's JSON, run in-process. */
const copyJson = async (...args: string[]) => {
  const r = await dconnectIn('copy', 'sda', 'sdb', '--length', '2MiB', '--via', 'host', '--json', ...args);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
};

test('copy --set changes the move: a conventional copy over host.lanes=1 is slower than over 8', async () => {
  const x1 = JSON.parse(await copyJson('--set', 'host.lanes=1'));
  const x8 = JSON.parse(await copyJson('--set', 'host.lanes=8'));
  assert.deepEqual([x1.hostLanes, x8.hostLanes], [1, 8]);
  assert.ok(x8.mbPerSec > 1.3 * x1.mbPerSec, `x8 ${x8.mbPerSec} MB/s against x1 ${x1.mbPerSec} MB/s`);
  // Several --sets apply together.
  const slow = JSON.parse(await copyJson('--set', 'host.lanes=8', '--set', 'ssd.writeMBps=100'));
  assert.ok(slow.mbPerSec < 0.6 * x8.mbPerSec);
});

test('--host-lanes N is an alias of --set host.lanes=N: the same JSON, byte for byte', async () => {
  assert.equal(await copyJson('--host-lanes', '1'), await copyJson('--set', 'host.lanes=1'));
  assert.match((await dconnectIn('copy', '--help')).stdout, /--host-lanes <n>.*alias of --set host\.lanes=N/s);
});

test('--set errors exit 2 with the message sweep gives, and nothing on stdout', async () => {
  const cases: [string[], RegExp][] = [
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--set', 'host.lanez=1'], /BAD_PARAM.*'host\.lanez' is not a parameter of topology 'paper-2012'; did you mean host\.lanes\?\n {2}hint: valid parameters: .*host\.lanes/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--set', 'host.lanes=3'], /BAD_PARAM.*--set host\.lanes=3 is not valid: host\.link\.lanes: lanes must be one of 1, 2, 4, 8, 16/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--host-lanes', '3'], /BAD_PARAM.*--host-lanes 3 is not valid: host\.link\.lanes: lanes must be one of/],
    [['copy', 'sda', 'sdb', '--length', '1MiB', '--set', 'ssd.writeMBps=fast'], /BAD_PARAM.*'fast' is not a value for ssd\.writeMBps/],
    [['sweep', '--param', 'depth=1', '--set', 'ssd.speed=1'], /BAD_PARAM.*'ssd\.speed' is not a parameter/],
    [['repro', '--only', 'fig6', '--set', 'pcie.mpsBytes=100'], /BAD_PARAM.*pcie\.mpsBytes: must be one of 128/],
    [['devices', '--set', 'nothing'], /BAD_PARAM.*--set 'nothing' is not PATH=VALUE/],
  ];
  for (const [args, re] of cases) {
    const r = await dconnectIn(...args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
  }
  const out = join(mkdtempSync(join(tmpdir(), 'dconnect-set-')), 'never');
  assert.equal((await dconnectIn('repro', '--only', 'fig6', '--set', 'depth=0', '--out', out)).code, 2);
  assert.equal(existsSync(out), false, 'nothing written');
});

test('repro and sweep take --set; the results and the report say which overrides were applied', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dconnect-set-'));
  const r = await dconnectIn('repro', '--runs', '1', '--size', '1MiB', '--only', 'fig6', '--threads', '1', '--set', 'ssd.writeMBps=500', '--set', 'depth=2', '--out', out, '--json');
  assert.equal(r.code === 0 || r.code === 1, true, r.stderr); // 1: a fidelity bound missed on purpose
  const j = JSON.parse(r.stdout);
  assert.deepEqual(j.overrides, [{ set: 'ssd.writeMBps=500', path: 'ssd.writeMBps' }, { set: 'depth=2', path: 'copy.depth' }]);
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(report, /## Topology overrides\n\nTopology overrides applied to every move: `--set ssd\.writeMBps=500`, `--set depth=2`\.\nFig\. 6 sets the commands in flight \(1 to 8\) itself, over `--set depth=2`\./);
  const plain = await dconnectIn('repro', '--runs', '1', '--size', '1MiB', '--only', 'fig6', '--threads', '1', '--out', out, '--json');
  assert.ok(j.fig6.points[1].mbPerSec > 1.3 * JSON.parse(plain.stdout).fig6.points[1].mbPerSec, 'a faster destination moves more');

  const s = await dconnectIn('sweep', '--param', 'depth=1,2', '--size', '1MiB', '--threads', '1', '--set', 'host.lanes=1', '--set', 'depth=4', '--via', 'host', '--out', out);
  assert.equal(s.code, 0, s.stderr);
  assert.match(s.stdout, /^overrides: --set host\.lanes=1, --set depth=4 \(superseded by --param\)$/m);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')).overrides.map((o: { set: string }) => o.set), ['host.lanes=1', 'depth=4']);
});

test('the extends example gives 64 MiB drives, and a copy on it runs', async () => {
  const d = JSON.parse((await dconnectIn('devices', '--topology', EXAMPLE, '--json')).stdout);
  assert.deepEqual(d.devices.filter((x: { kind: string }) => x.kind === 'ssd').map((x: { capacityBytes: number }) => x.capacityBytes), [64 << 20, 64 << 20]);
  assert.match((await dconnectIn('devices', '--topology', EXAMPLE)).stdout, /sda\s+ssd\s+box0\/slot0\s+\S+\s+67\.1 MB/);
  const ok = await dconnectIn('copy', 'sda', 'sdb:60MiB', '--length', '4MiB', '--topology', EXAMPLE, '--json');
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).verified, true);
  const r = await dconnectIn('copy', 'sda', 'sdb:62MiB', '--length', '4MiB', '--topology', EXAMPLE);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /OUT_OF_RANGE.*capacity of 67108864 bytes/);
});
