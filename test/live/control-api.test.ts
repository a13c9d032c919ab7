/**
 * The control API's schemas at both ends, in this process: the server refuses a malformed body with
 * BAD_REQUEST naming each field (and what it must be, and what was given) before a handler runs; the
 * typed client parses every answer with the same schema, so an answer of another shape is a clear
 * BAD_RESPONSE rather than a crash later; and the job record read from disk goes through the same
 * schema as the API's job view.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import { devicesSchema, hostApi, jobRecordSchema, jobViewSchema, route, type JobView } from '../../src/live/control-api.js';
import { listDevices } from '../../src/runtime/devices.js';
import { loadTopology } from '../../src/topology/load.js';
import { hostClient } from '../../src/live/control-client.js';
import { startControlServer, type Route } from '../../src/live/control-http.js';

const T = { timeout: 15_000 };

const RECORD = { id: 'j1', state: 'done', src: 'sda', dst: 'sdb', srcOffset: 0, dstOffset: 0, lengthBytes: 1 << 20, via: 'dc-buffer', chunkBytes: 131072, depth: 4, doneBytes: 1 << 20, resumes: 0, createdAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:01.000Z' } as const;
const RESULT = { mode: 'direct', relay: 'dcbuf0', bytes: 1 << 20, movedBytes: 1 << 20, wallSeconds: 0.5, mbPerSecWall: 2, simulatedSeconds: 0.01, mbPerSecSimulated: 100, verified: true, verifySeconds: 0.2, srcSha256: 'ab', dstSha256: 'ab', hostLink: { upstreamPayloadBytes: 0, downstreamPayloadBytes: 0 }, pace: 'none', dilation: 1, granularity: { mode: 'tlp' }, lag: null } as const;
const VIEW: JobView = { ...RECORD, bytesDone: 1 << 20, result: RESULT };

/** A control server in a fresh directory with `routes`; `fn` gets the client. */
async function withServer(routes: Route[], fn: (c: ReturnType<typeof hostClient>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dc-api-'));
  const srv = await startControlServer({ socketPath: join(dir, 'host.sock'), routes });
  try {
    await fn(hostClient({ socketPath: srv.socketPath }));
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof DconnectError, `a DconnectError, not ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

describe('control API schemas: the server validates, the client parses', () => {
  it('a malformed job request is refused naming each field, before the handler runs', T, async () => {
    const seen: unknown[] = [];
    await withServer([route(hostApi.submit, ({ body }) => (seen.push(body), VIEW)), route(hostApi.resume, ({ body }) => (seen.push(body), VIEW))], async (c) => {
      const ok = await c.submit({ src: 'sda', dst: 'sdb', lengthBytes: 1 << 20 });
      assert.deepEqual(ok, VIEW);
      assert.deepEqual(seen, [{ src: 'sda', dst: 'sdb', lengthBytes: 1 << 20 }], 'the handler gets the parsed body');
      const bad = (body: unknown) => c.submit(body as never);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', lengthBytes: -1 }), 'BAD_REQUEST', /field lengthBytes must be a non-negative integer number of bytes, not -1/);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb' }), 'BAD_REQUEST', /field lengthBytes must be a non-negative integer number of bytes, missing/);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', lengthBytes: 1.5 }), 'BAD_REQUEST', /field lengthBytes .* not 1\.5/);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', lengthBytes: 1, via: 'dma' }), 'BAD_REQUEST', /field via must be dc-buffer, cmb, nearest or host, not "dma"/);
      await rejectsWith(bad({ src: '', dst: 7, lengthBytes: 1 }), 'BAD_REQUEST', /field src must be a device name, not ""; field dst must be a device name, not 7/);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', lenghtBytes: 1 }), 'BAD_REQUEST', /field lenghtBytes is not a field of the request \(fields: src, dst, /);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', files: { srcPath: 'data', dstPath: '/b' } }), 'BAD_REQUEST', /field files\.srcPath must be an absolute path on the drive's file system/);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', lengthBytes: 1, capture: { links: ['../x'], name: 'a.pcap' } }), 'BAD_REQUEST', /field capture\.links\.0 /);
      await rejectsWith(bad({ src: 'sda', dst: 'sdb', lengthBytes: 1, verify: 'yes' }), 'BAD_REQUEST', /field verify must be true or false, not "yes"/);
      await rejectsWith(bad([1, 2]), 'BAD_REQUEST', /the body must be a JSON object/);
      await rejectsWith(c.resume('j1', { verify: 'no' } as never), 'BAD_REQUEST', /POST \/jobs\/:id\/resume: field verify must be true or false, not "no"/);
      assert.equal(seen.length, 1, 'no malformed body reached a handler');
      await c.resume('j1');
      await c.resume('j1', { verify: false });
      assert.deepEqual(seen.slice(1), [undefined, { verify: false }]);
    });
  });

  it('an answer of another shape is BAD_RESPONSE naming the field, not a crash later', T, async () => {
    const wrong: Route[] = [
      { method: 'GET', pattern: '/status', handler: () => ({ node: 'host', pid: 1, pace: 'none', dilation: 1, session: { epoch: 'one' }, transport: {}, jobs: [] }) },
      { method: 'GET', pattern: '/jobs/:id', handler: () => ({ ...VIEW, bytesDone: undefined }) },
      { method: 'GET', pattern: '/devices', handler: () => ({ devices: [{ name: 'sda', kind: 'ssd', box: 'box0', slot: 0, bdf: '03:00.0', capacityBytes: 1, bar0: 0, serial: 's', future: 1 }], more: true }) },
    ];
    await withServer(wrong, async (c) => {
      await rejectsWith(c.status(), 'BAD_RESPONSE', /the answer to GET \/status from .* is not what this dconnect expects: session\.epoch: Expected number, received string/);
      await rejectsWith(c.job('j1'), 'BAD_RESPONSE', /GET \/jobs\/j1 .* bytesDone: Required/);
      const d = await c.devices();
      assert.equal(d.devices[0]!.name, 'sda', 'fields this client knows are kept');
      assert.equal((d as Record<string, unknown>).more, true, 'a newer host\'s extra top-level field passes through');
    });
  });

  it('a job record and the API\'s view of it are the same shape (the job store reads with jobRecordSchema)', () => {
    assert.ok(jobRecordSchema.safeParse({ ...RECORD, result: RESULT }).success);
    assert.ok(jobRecordSchema.safeParse({ ...RECORD, state: 'cancelled', result: { captured: { frames: 3, path: '/s/captures/a.pcap' } } }).success, 'a cancelled job keeps its capture only');
    const r = jobRecordSchema.safeParse({ ...RECORD, doneBytes: RECORD.lengthBytes + 1 });
    assert.ok(!r.success && r.error.issues.some((i) => i.path.join('.') === 'doneBytes'), 'the restart marker never passes the range');
    assert.ok(!jobRecordSchema.safeParse({ ...RECORD, result: { ...RESULT, verifySeconds: 'x' } }).success, 'a result of neither shape is refused');
    const view = jobViewSchema.parse({ ...RECORD, result: RESULT, bytesDone: 5 });
    assert.equal(view.bytesDone, 5);
  });
});

describe('GET /devices rows', () => {
  it("carry a kind's own fields through (a new kind's columns need no schema edit), and refuse a field of another type", () => {
    const row = { kind: 'ssd', name: 'sda', box: 'box0', slot: 0, bdf: '01:00.0', capacityBytes: 1 << 30, bar0: 0xf000_0000, serial: 'S1', firmware: '1.2', lanes: 4 };
    const parsed = devicesSchema.parse({ devices: [row] });
    assert.deepEqual(parsed.devices[0], row);
    assert.equal(devicesSchema.safeParse({ devices: [{ ...row, firmware: { v: 1 } }] }).success, false);
  });

  it('listDevices gives each kind’s fields, in the order the kind records them, and no undefined ones', () => {
    const rows = listDevices(loadTopology('paper-2012-nic'), 1);
    const ssd = rows.find((r) => r.kind === 'ssd')!;
    assert.deepEqual(Object.keys(ssd), ['name', 'kind', 'box', 'slot', 'bdf', 'capacityBytes', 'bar0', 'serial']);
    const nic = rows.find((r) => r.kind === 'nic')!;
    assert.match(String(nic.mac), /^00:60:b9:/);
    assert.ok(Object.values(nic).every((v) => v !== undefined));
  });
});
