import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { parseSweepParam } from '../../src/experiments/sweep-params.js';
import { loadTopology } from '../../src/topology/load.js';
import { applySettings, overridesOf, parameterPaths } from '../../src/topology/params.js';

const t = loadTopology('paper-2012');
const set = (...specs: string[]) => applySettings(t, specs).topology;
const fails = (specs: string[], re: RegExp) =>
  assert.throws(
    () => applySettings(t, specs),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_PARAM' && re.test(`${e.message}\n${e.hint ?? ''}`),
    specs.join(' '),
  );

test('--set: numbers (aliases, sizes), strings, optional sections, whole lists; the original is untouched', () => {
  assert.equal(set('host.lanes=1').host.link.lanes, 1);
  assert.equal(set('ssd.capacityBytes=64MiB').ssd.capacityBytes, 64 * 2 ** 20);
  assert.equal(set('chunk=64KiB', 'depth=2').copy.chunkBytes, 65536);
  const serial = set('boxes.0.slots.1.serial=0007').boxes[0].slots[1];
  assert.deepEqual(serial, { kind: 'ssd', serial: '0007' }, 'a string field keeps the text (not the number 7)');
  // A field the preset leaves out but the schema knows: one slot's SSD overrides.
  assert.deepEqual(set('boxes.0.slots.1.ssd.writeMBps=500').boxes[0].slots[1], { kind: 'ssd', serial: 'OCZ-M84-0002', ssd: { writeMBps: 500 } });
  const slots = set('boxes.0.slots=[{kind: ssd, serial: A}, {kind: dc-buffer}, {kind: ssd, serial: B}]').boxes[0].slots;
  assert.deepEqual(slots.map((s) => s.kind), ['ssd', 'dc-buffer', 'ssd']);
  assert.equal(set('host.link={generation: 2, lanes: 4, latencyNs: 50}').host.link.generation, 2);
  // Changes that only make sense together are validated together.
  assert.deepEqual(set('boxes.0.slots.2={kind: ssd}', 'boxes.0.slots.2.serial=C').boxes[0].slots[2], { kind: 'ssd', serial: 'C' });
  assert.equal(t.host.link.lanes, 8);
  assert.equal(applySettings(t, []).topology, t);
  assert.deepEqual(overridesOf(applySettings(t, ['host.lanes=1']).settings), [{ set: 'host.lanes=1', path: 'host.link.lanes' }]);
});

test('--set: unknown paths list the valid ones; bad values say what the schema wants', () => {
  fails(['host.lanez=1'], /'host\.lanez' is not a parameter of topology 'paper-2012'; did you mean host\.lanes\?\nvalid parameters: boxes\.0\.name, .*boxes\.0\.slots\.1\.serial, .*host\.lanes, .*ssd\.writeMBps/s);
  fails(['ssd.capacity=64MiB'], /'ssd\.capacity' is not a parameter/);
  fails(['boxes.3.name=x'], /'boxes\.3' is not a parameter/);
  fails(['host.link.lanes.x=1'], /'host\.link\.lanes\.x' is not a parameter/);
  fails(['boxes.0.slots.2.serial=x'], /'boxes\.0\.slots\.2\.serial' is not a parameter/);
  fails(['__proto__.polluted=1'], /is not a parameter path/);
  fails(['host.lanes=3'], /--set host\.lanes=3 is not valid: host\.link\.lanes: lanes must be one of 1, 2, 4, 8, 16/);
  fails(['host.lanes=fast'], /'fast' is not a value for host\.lanes/);
  fails(['host.lanes=1,2'], /takes one value, not 2\n.*sweep --param/);
  fails(['host.link={lanes: 4}'], /--set host\.link=\{lanes: 4\} is not valid: host\.link\.generation: Required/);
  fails(['boxes.0.slots=[{kind: ssd}'], /not a YAML value/);
  fails(['hostlanes'], /--set 'hostlanes' is not PATH=VALUE/);
  fails(['ssd.writeMBps=500', 'pcie.mpsBytes=100'], /^--set pcie\.mpsBytes=100 is not valid: pcie\.mpsBytes: must be one of 128/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('sweep --param and --set share one path syntax and validator', () => {
  const paths = parameterPaths(t, 'all');
  for (const p of parameterPaths(t, 'numeric')) assert.ok(paths.includes(p), p);
  assert.deepEqual(parseSweepParam(t, 'boxes.0.slots.1.ssd.writeMBps=250,500').path, ['boxes', '0', 'slots', '1', 'ssd', 'writeMBps']);
  for (const [spec, re] of [
    ['host.lanez=1', /'host\.lanez' is not a numeric parameter/],
    ['ssd.capacity=1', /'ssd\.capacity' is not a numeric parameter/],
    ['host.lanes=3', /host\.lanes=3 is not valid: host\.link\.lanes: lanes must be one of/],
  ] as const) {
    assert.throws(() => parseSweepParam(t, spec), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_PARAM' && re.test(e.message), spec);
    assert.throws(() => applySettings(t, [spec]), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_PARAM' && re.test(e.message.replace('not a parameter', 'not a numeric parameter').replace('--set ', '')), spec);
  }
});

test('ethernet.maxPayloadBytes: 1500 by default, up to 9000; one TLP of MPS bytes must fit a frame and the ports\' credits', () => {
  assert.equal(t.ethernet.maxPayloadBytes, 1500);
  fails(['pcie.mpsBytes=2048'], /pcie\.mpsBytes: a TLP of 2048 B of payload is a 2076-byte ExpEther frame payload .* more than ethernet\.maxPayloadBytes 1500/);
  fails(['ethernet.maxPayloadBytes=9001'], /ethernet\.maxPayloadBytes/);
  fails(['ethernet.maxPayloadBytes=1400'], /ethernet\.maxPayloadBytes/);
  fails(['ethernet.maxPayloadBytes=9000', 'pcie.mpsBytes=4096'], /pcie\.portCredits\.postedDataBytes: 2048 B of credits cannot take one TLP of pcie\.mpsBytes 4096 B/);
  fails(['ethernet.maxPayloadBytes=9000', 'ethernet.switchBufferBytes=4096'], /ethernet\.switchBufferBytes: an output buffer of 4096 B cannot hold one 9000-byte-payload frame \(9042 B on the wire\)/);
  const j = set('ethernet.maxPayloadBytes=9000', 'pcie.mpsBytes=4096', 'pcie.portCredits.postedDataBytes=8192', 'pcie.portCredits.completionDataBytes=16384');
  assert.deepEqual([j.ethernet.maxPayloadBytes, j.pcie.mpsBytes], [9000, 4096]);
});

test('host.readCompletionBytes: the RCB (64, 128) or combined completions up to the MPS', () => {
  assert.equal(set('host.readCompletionBytes=128').host.readCompletionBytes, 128);
  fails(['host.readCompletionBytes=96'], /host\.readCompletionBytes/);
  fails(['host.readCompletionBytes=1024'], /host\.readCompletionBytes: completions of 1024 B exceed pcie\.mpsBytes 128: a completion carries at most MPS; give 64, 128 or a power of two up to 128/);
  assert.equal(set('pcie.mpsBytes=1024', 'pcie.portCredits.postedDataBytes=16384', 'pcie.portCredits.completionDataBytes=32768', 'host.readCompletionBytes=1024').host.readCompletionBytes, 1024);
  assert.equal(loadTopology('paper-2012-live').host.readCompletionBytes, 1024);
});
