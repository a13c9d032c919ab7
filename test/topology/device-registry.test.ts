import type { NicDevice } from '../../src/host/dc/manager.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ZodTypeAny } from 'zod';
import { DconnectError } from '../../src/core/errors.js';
import { resourceName } from '../../src/experiments/bottleneck.js';
import type { FoundFunction } from '../../src/host/enumeration.js';
import { boot } from '../../src/runtime/boot.js';
import { buildFabric } from '../../src/topology/builder.js';
import { DEVICE_KINDS, deviceKinds, deviceTraceKey, entryForFunction, kindOf, knownKinds, slotParams } from '../../src/topology/device-registry.js';
import { dcBufferKind } from '../../src/topology/kinds/dc-buffer.js';
import { ssdKind } from '../../src/topology/kinds/ssd.js';
import { nicKind } from '../../src/topology/kinds/nic.js';
import { loadTopology } from '../../src/topology/load.js';
import { PARAM_ALIASES, validateTopology } from '../../src/topology/params.js';
import { topologySchema } from '../../src/topology/schema.js';

const fn = (classCode: number, vendorId = 0x1234, deviceId = 0x5678): FoundFunction => ({ id: 0x300, bdf: '03:00.0', vendorId, deviceId, classCode, isBridge: false, bars: [], parent: -1 });

/** The zod schema below `t` at a path of object keys, array elements ('[]') and refinements unwrapped. */
function schemaAt(t: ZodTypeAny, path: string[]): ZodTypeAny {
  let s = t;
  for (const k of path) {
    for (;;) {
      const def = s._def as { typeName: string; schema?: ZodTypeAny; innerType?: ZodTypeAny };
      if (def.typeName === 'ZodEffects' && def.schema) s = def.schema;
      else if ((def.typeName === 'ZodOptional' || def.typeName === 'ZodDefault') && def.innerType) s = def.innerType;
      else break;
    }
    s = k === '[]' ? (s._def as { type: ZodTypeAny }).type : (s as unknown as { shape: Record<string, ZodTypeAny> }).shape[k];
    assert.ok(s, `the schema has ${path.join('.')}`);
  }
  return s;
}

test('registry entries are unique: kind, parameter block, trace prefix, and the names the host gives', () => {
  const unique = (xs: string[], what: string) => assert.equal(new Set(xs).size, xs.length, `${what} differ: ${xs.join(', ')}`);
  unique(deviceKinds.map((k) => k.kind), 'kinds');
  unique(deviceKinds.map((k) => k.paramsKey), 'parameter blocks');
  unique(deviceKinds.map((k) => k.tracePrefix), 'trace prefixes');
  unique(deviceKinds.flatMap((k) => Array.from({ length: 40 }, (_, i) => k.name(i))), 'device names');
  assert.deepEqual(knownKinds(), ['ssd', 'dc-buffer', 'nic']);
  assert.deepEqual(DEVICE_KINDS.map((k) => k.name(0)), ['sda', 'dcbuf0', 'nic0']);
  assert.equal(ssdKind.name(27), 'sdb1');
});

test('every slot kind the schema accepts has a registry entry, and every entry is a slot kind and a parameter block of the schema', () => {
  const slots = schemaAt(topologySchema, ['boxes', '[]', 'slots', '[]']);
  const accepted = [...(slots._def as { optionsMap: Map<unknown, unknown> }).optionsMap.keys()];
  assert.deepEqual(accepted, knownKinds());
  for (const k of deviceKinds) {
    assert.equal(kindOf(k.kind), k);
    assert.equal(schemaAt(topologySchema, [k.paramsKey]), k.block ?? k.params, `the topology's ${k.paramsKey} block is the kind's`);
    assert.equal(PARAM_ALIASES[`${k.paramsKey}.lanes`], `${k.paramsKey}.link.lanes`);
  }
});

test('drivers match by class code as Linux matches them: NVMe and Ethernet by class alone, the DC buffer by class, vendor and device id', () => {
  assert.equal(entryForFunction(fn(0x010802, 0x1b85, 0x8084)), ssdKind);
  assert.equal(entryForFunction(fn(0x010802, 0x8086, 0x0953)), ssdKind, "any vendor's NVMe controller binds the NVMe driver");
  assert.equal(entryForFunction(fn(0x050000, 0x1172, 0xdc00)), dcBufferKind);
  assert.equal(entryForFunction(fn(0x050000, 0x1172, 0x0001)), undefined, "another of the vendor's memory controllers is not the DC buffer");
  assert.equal(entryForFunction(fn(0x050000, 0x8086, 0xdc00)), undefined, "another vendor's memory controller is not either");
  assert.equal(entryForFunction(fn(0x020000, 0x1033, 0x4e10)), nicKind, 'an Ethernet controller (02:00:00) binds the NIC driver');
  assert.equal(entryForFunction(fn(0x028000)), undefined, 'another network controller (02:80:00) matches no driver');
  assert.equal(entryForFunction(fn(0x010601)), undefined, 'nor does a SATA AHCI controller');
});

test('the devices the builder makes are those their drivers match, trace under their kind prefix, and are named from their entry', () => {
  const t = loadTopology('paper-2012');
  const fabric = buildFabric(t, 1);
  assert.deepEqual(
    fabric.slots.map((s) => s.kind),
    t.boxes[0].slots.map((s) => s.kind),
  );
  const keys = fabric.trace.names();
  for (const s of fabric.slots) {
    const k = kindOf(s.kind);
    const key = `${k.tracePrefix}.${s.box}.slot${s.slot}`;
    assert.ok(keys.includes(key), `${key} is traced`);
    assert.deepEqual(deviceTraceKey(key), { kind: k, slot: `${s.box}.slot${s.slot}` });
  }
  const host = boot(fabric, { maxTransferBytes: t.copy.chunkBytes });
  const endpoints = host.functions.filter((f) => !f.isBridge);
  assert.equal(endpoints.length, fabric.slots.length);
  endpoints.forEach((f, i) => assert.equal(entryForFunction(f)?.kind, fabric.slots[i].kind, `${f.bdf}: the driver of the slot's kind takes it`));
  assert.deepEqual(
    deviceKinds.flatMap((k) => k.driver.devices(host.manager).map((d) => d.name)),
    ['sda', 'sdb', 'dcbuf0'],
  );
  const devices = { 'box0.slot0': 'sda', 'box0.slot2': 'dcbuf0' };
  assert.equal(resourceName('ssd.box0.slot0', devices), 'sda');
  assert.equal(resourceName('dcbuffer.box0.slot2', devices), 'dcbuf0 DDR');
  assert.equal(deviceTraceKey('bridge.box0.slot0'), undefined);
});

test("a slot's parameters are its kind's block with the slot's overrides laid over it, field by field", () => {
  const t = loadTopology('paper-2012');
  (t.boxes[0].slots[1] as { ssd?: object }).ssd = { writeMBps: 500 };
  assert.deepEqual(slotParams(t, 'box0', 0), t.ssd);
  assert.deepEqual(slotParams(t, 'box0', 1), { ...t.ssd, writeMBps: 500 });
  assert.deepEqual(slotParams(t, 'box0', 2), t.dcBuffer);
  assert.throws(() => slotParams(t, 'box0', 3), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY');
});

test('an unknown slot kind is an error listing the known kinds', () => {
  const t = loadTopology('paper-2012') as unknown as { boxes: { slots: unknown[] }[] };
  t.boxes[0].slots[0] = { kind: 'gpu' };
  const r = validateTopology(t);
  assert.ok(!r.ok);
  const issue = r.issues.find((i) => i.path.join('.') === 'boxes.0.slots.0.kind');
  assert.ok(issue, 'the issue names the slot');
  for (const k of knownKinds()) assert.match(issue.message, new RegExp(`'${k}'`));
  assert.throws(
    () => kindOf('gpu'),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && /'gpu'/.test(e.message) && knownKinds().every((k) => e.hint?.includes(k)),
  );
});

test('a NIC slot (paper-2012-nic) builds the NIC, its network and its clients, and boot binds the NIC driver to it', () => {
  const t = loadTopology('paper-2012-nic');
  const fabric = buildFabric(t, 1);
  assert.deepEqual(fabric.slots.map((s) => s.kind), ['ssd', 'ssd', 'dc-buffer', 'nic']);
  assert.deepEqual([...fabric.nodes.keys()], ['client0', 'client1']);
  assert.ok(fabric.switches.some((s) => s.name === 'net.box0.slot3'), 'the NIC network has its switch');
  assert.ok(fabric.trace.names().includes('nic.box0.slot3'));
  const host = boot(fabric, { maxTransferBytes: t.copy.chunkBytes });
  assert.deepEqual(
    deviceKinds.flatMap((k) => k.driver.devices(host.manager).map((d) => d.name)),
    ['sda', 'sdb', 'dcbuf0', 'nic0'],
  );
  const nic = host.manager.devicesOf<NicDevice>('nic')[0];
  assert.equal(nic.driver.mac, nic.mac);
  assert.equal(nic.driver.rxBufferBytes, 512 * 1024, 'the driver read the receive packet buffer from PBA');
});

test('client names on NICs\' networks are unique, and differ from hosts\' and boxes\'', () => {
  const t = loadTopology('paper-2012-nic') as unknown as { boxes: { name: string; slots: { kind: string; clients?: { name: string }[] }[] }[] };
  t.boxes[0].slots[3].clients = [{ name: 'client0' }, { name: 'client0' }];
  let r = validateTopology(t);
  assert.ok(!r.ok);
  assert.ok(r.issues.some((i) => i.path.join('.') === 'boxes.0.slots.3.clients.1.name' && /'client0' is taken/.test(i.message)));
  t.boxes[0].slots[3].clients = [{ name: 'box0' }];
  r = validateTopology(t);
  assert.ok(!r.ok && r.issues.some((i) => /'box0' is taken \(by a host or box\)/.test(i.message)));
});

test('capabilities are the kinds\' own: every relay a host records is of a kind that declares relay, every endpoint of one that declares endpoint', () => {
  const t = loadTopology('paper-2012-nic');
  t.ssd.cmbSizeBytes = 1 << 20;
  const host = boot(buildFabric(t, 1), { maxTransferBytes: 1 << 20 });
  const kindOfDevice = (name: string) => deviceKinds.find((k) => k.driver.devices(host.manager).some((d) => d.name === name))!;
  assert.deepEqual(host.manager.relays().map((r) => r.name), ['sda CMB', 'sdb CMB', 'dcbuf0']);
  for (const r of host.manager.relays()) assert.ok(kindOfDevice(r.device).capabilities.includes('relay'), r.name);
  for (const d of host.manager.blockDevices()) assert.ok(kindOfDevice(d.name).capabilities.includes('endpoint'), d.name);
  assert.deepEqual(nicKind.capabilities, []);
});

test('each kind prints its own columns of the devices tables', () => {
  const row = { name: 'x', box: 'box0', slot: 0, bdf: '03:00.0', bar0: 0 };
  assert.deepEqual(ssdKind.columns({ ...row, capacityBytes: 256e9, serial: 'S1' }), { capacity: '256 GB', id: 'S1' });
  assert.deepEqual(ssdKind.columns({ ...row, capacityBytes: 256e9, serial: 'S1', relayBytes: 32 << 20 }), { capacity: '256 GB', id: 'S1 (CMB 32 MiB)' });
  assert.deepEqual(dcBufferKind.columns({ ...row, capacityBytes: 64 << 20 }), { capacity: '64 MiB', id: '-' });
  assert.deepEqual(nicKind.columns({ ...row, capacityBytes: 0, mac: '00:60:b9:20:00:03' }), { capacity: '-', id: 'MAC 00:60:b9:20:00:03' });
});
