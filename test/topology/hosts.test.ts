/**
 * Several hosts in one topology (issue 12, "Isolation"): `extraHosts` and a slot's `group`, validated
 * by the schema, built by the builder with every component's name unique and the first host's names
 * unchanged. The behaviour (enumeration, moves, dropped frames) is test/integration/isolation.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';
import { validateTopology, describeIssue } from '../../src/topology/params.js';
import { hostsOf, type Topology } from '../../src/topology/schema.js';

function issues(t: unknown): string {
  const r = validateTopology(t);
  return r.ok ? '' : r.issues.map(describeIssue).join('\n');
}

const twoHosts = (): Topology => loadTopology('two-hosts');

test('one host: no extraHosts, every slot in expether.groupId; fabric.hosts is the first host, the same objects as before', () => {
  const t = loadTopology('paper-2012');
  assert.equal(t.extraHosts, undefined, 'an absent field stays absent (results and reports unchanged)');
  assert.ok(t.boxes[0].slots.every((s) => s.group === undefined));
  const f = buildFabric(t, 1);
  assert.equal(f.hosts.length, 1);
  const [h] = f.hosts;
  assert.equal(h.name, 'host');
  assert.equal(h.groupId, t.expether.groupId);
  assert.equal(h.rootComplex, f.rootComplex);
  assert.equal(h.link, f.hostLink);
  assert.equal(h.bridge, f.hostBridge);
  assert.deepEqual(h.slots, f.slots);
  assert.deepEqual(f.switches.map((s) => `${s.name}:${s.ports.length}`), ['sw0:2', 'sw1:5']);
});

test('two-hosts preset: the second host has its own root complex, link, bridge and MAC on sw0; its bridge shows only its group', () => {
  const t = twoHosts();
  assert.deepEqual(
    hostsOf(t).map((h) => `${h.name}:${h.groupId}`),
    ['host:1', 'host1:2'],
  );
  const f = buildFabric(t, 1);
  assert.deepEqual(f.switches.map((s) => `${s.name}:${s.ports.length}`), ['sw0:3', 'sw1:8'], 'sw0 gains a port for host1');
  const [a, b] = f.hosts;
  assert.equal(b.name, 'host1');
  assert.notEqual(a.bridge.mac, b.bridge.mac);
  assert.equal(a.bridge.groupId, 1);
  assert.equal(b.bridge.groupId, 2);
  assert.deepEqual(a.bridge.slotMacs, f.slots.slice(0, 3).map((s) => s.bridge.mac));
  assert.deepEqual(b.bridge.slotMacs, f.slots.slice(3).map((s) => s.bridge.mac));
  assert.deepEqual(f.slots.map((s) => s.group), [1, 1, 1, 2, 2, 2]);
  assert.deepEqual(f.slots.map((s) => s.bridge.groupId), [1, 1, 1, 2, 2, 2]);
  assert.deepEqual(f.slots.map((s) => s.bridge.hostMac === (s.group === 1 ? a.bridge.mac : b.bridge.mac)), [true, true, true, true, true, true]);
  // Every trace name is unique (the registry throws otherwise); the first host's are unchanged.
  const names = f.trace.names();
  for (const n of ['hostLink.upstream', 'host.rootComplex', 'bridge.host', 'eth.hostBridge', 'host1Link.upstream', 'host1Link.downstream', 'host1.rootComplex', 'bridge.host1', 'eth.host1Bridge']) {
    assert.ok(names.includes(n), `trace source ${n}`);
  }
  assert.equal(b.bridge.eth.channel, f.switches[0].ports[2].channel, 'host1 plugs into sw0 after the first host and sw1');
});

test('an extra host overrides fields of the host block; the rest are the first host\'s', () => {
  const t = twoHosts();
  t.extraHosts = [{ name: 'host1', groupId: 2, queueEntries: 16, link: { generation: 1, lanes: 1, latencyNs: 100 } }];
  const r = validateTopology(t);
  assert.ok(r.ok, issues(t));
  const [a, b] = hostsOf(r.topology);
  assert.equal(a.config.queueEntries, 64);
  assert.equal(b.config.queueEntries, 16);
  assert.equal(b.config.link.lanes, 1);
  assert.equal(b.config.memoryBytes, a.config.memoryBytes);
  const f = buildFabric(r.topology, 1);
  assert.equal(f.hosts[1].link.name, 'host1Link');
  assert.equal(f.hostLink.name, 'hostLink');
});

test('several hosts on one switch (switchHops 1) and on several boxes: ports added after the single-host ones', () => {
  const one = twoHosts();
  one.ethernet.switchHops = 1;
  const f1 = buildFabric(one, 1);
  assert.deepEqual(f1.switches.map((s) => `${s.name}:${s.ports.length}`), ['sw0:9']);
  assert.equal(f1.hostBridge.eth.channel, f1.switches[0].ports[7].channel);
  assert.equal(f1.hosts[1].bridge.eth.channel, f1.switches[0].ports[8].channel);
  const boxes = twoHosts();
  boxes.boxes = [
    { name: 'box0', slots: [{ kind: 'ssd', serial: 'A0' }, { kind: 'dc-buffer' }] },
    { name: 'box1', slots: [{ kind: 'ssd', serial: 'B0', group: 2 }, { kind: 'dc-buffer', group: 2 }] },
  ];
  const f2 = buildFabric(boxes, 1);
  assert.deepEqual(f2.switches.map((s) => `${s.name}:${s.ports.length}`), ['sw0:4', 'sw1.box0:3', 'sw1.box1:3']);
  assert.equal(f2.hosts[1].bridge.eth.channel, f2.switches[0].ports[3].channel);
});

test('the schema refuses: two hosts in one group, a taken host name, a slot whose group has no host, an unknown host field', () => {
  const t = twoHosts();
  const sameGroup = { ...t, extraHosts: [{ name: 'host1', groupId: 1 }] };
  assert.match(issues(sameGroup), /extraHosts\.0\.groupId: group 1 is already host 'host''s: each host has its own ExpEther group/);
  const taken = { ...t, extraHosts: [{ name: 'host', groupId: 2 }] };
  assert.match(issues(taken), /extraHosts\.0\.name: host name 'host' is taken/);
  const dup = { ...t, extraHosts: [{ name: 'h2', groupId: 2 }, { name: 'h2', groupId: 3 }] };
  assert.match(issues(dup), /extraHosts\.1\.name: host name 'h2' is taken/);
  const boxName = { ...t, extraHosts: [{ name: 'box0', groupId: 2 }] };
  assert.match(issues(boxName), /extraHosts\.0\.name: host name 'box0' is also a box's name/);
  const orphan = structuredClone(t);
  orphan.boxes[0].slots[5].group = 7;
  assert.match(issues(orphan), /boxes\.0\.slots\.5\.group: group 7 has no host: no host would enumerate this slot \(groups with a host: 1 \(host\), 2 \(host1\)\)/);
  const oneHost = loadTopology('paper-2012');
  oneHost.boxes[0].slots[1].group = 2;
  assert.match(issues(oneHost), /boxes\.0\.slots\.1\.group: group 2 has no host/);
  const field = { ...t, extraHosts: [{ name: 'host1', groupId: 2, lanes: 4 }] };
  assert.match(issues(field), /extraHosts\.0\.lanes: not a field of the topology/);
  const badName = { ...t, extraHosts: [{ name: '1st', groupId: 2 }] };
  assert.match(issues(badName), /extraHosts\.0\.name: a host name is a letter/);
});

test('a group holds at most 32 slots (device numbers on its host\'s virtual switch)', () => {
  const t = loadTopology('paper-2012');
  t.ethernet.switchHops = 2;
  t.boxes = [0, 1].map((b) => ({ name: `box${b}`, slots: Array.from({ length: 17 }, () => ({ kind: 'dc-buffer' as const })) }));
  assert.match(issues(t), /group 1 has 34 slots; a host's virtual switch holds at most 32/);
  t.extraHosts = [{ name: 'host1', groupId: 2 }];
  t.boxes[1].slots.forEach((s) => (s.group = 2));
  assert.equal(issues(t), '');
});
