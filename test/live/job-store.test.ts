import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import { JobStore, type NewJob } from '../../src/live/job-store.js';

const T = { timeout: 10_000 };
const MiB = 1 << 20;

const FIELDS: NewJob = { src: 'sda', dst: 'sdb', srcOffset: 0, dstOffset: 4 * MiB, lengthBytes: 64 * MiB, via: 'dc-buffer', chunkBytes: MiB, depth: 4 };

function withStore(fn: (s: JobStore, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'dc-jobs-'));
  try {
    fn(new JobStore(dir), dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function codeOf(code: string, message?: RegExp): (e: unknown) => boolean {
  return (e) => e instanceof DconnectError && e.code === code && (!message || message.test(e.message));
}

describe('JobStore: durable live copy jobs', () => {
  it('creates queued jobs j1, j2, ... that read back as written', T, () =>
    withStore((s) => {
      const a = s.create(FIELDS);
      assert.equal(a.id, 'j1');
      assert.equal(a.state, 'queued');
      assert.equal(a.doneBytes, 0);
      assert.equal(a.resumes, 0);
      assert.ok(!Number.isNaN(Date.parse(a.createdAt)));
      assert.equal(a.updatedAt, a.createdAt);
      assert.deepEqual(s.get('j1'), a);
      assert.equal(s.create({ ...FIELDS, via: 'host' }).id, 'j2');
      assert.equal(s.get('j3'), null);
    }),
  );

  it('never reuses an id, even when records are deleted, and lists by numeric id', T, () =>
    withStore((s, dir) => {
      for (let i = 1; i <= 11; i++) s.create(FIELDS);
      assert.deepEqual(s.list().map((j) => j.id), ['j1', 'j2', 'j3', 'j4', 'j5', 'j6', 'j7', 'j8', 'j9', 'j10', 'j11']);
      unlinkSync(join(dir, 'j11.json'));
      assert.equal(s.create(FIELDS).id, 'j12');
      assert.equal(new JobStore(dir).create(FIELDS).id, 'j13', 'a new store on the directory continues');
      writeFileSync(join(dir, 'j40.json'), JSON.stringify({ ...s.get('j1'), id: 'j40' })); // a record the counter has not seen
      assert.equal(s.create(FIELDS).id, 'j41');
    }),
  );

  it('persists updates atomically, keeping id and createdAt and moving updatedAt', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dc-jobs-'));
    try {
      const s = new JobStore(dir);
      const j = s.create(FIELDS);
      await new Promise((r) => setTimeout(r, 5));
      const u = s.update(j.id, { state: 'running', doneBytes: 8 * MiB, id: 'j9', createdAt: 'x' } as never);
      assert.equal(u.id, 'j1');
      assert.equal(u.createdAt, j.createdAt);
      assert.ok(u.updatedAt > j.updatedAt);
      const err = { code: 'DEVICE_ERROR', message: 'box0 stopped answering', hint: 'dconnect copy --resume j1' };
      s.update('j1', { state: 'failed', error: err, resumes: 1 });
      const again = new JobStore(dir).require('j1');
      assert.equal(again.state, 'failed');
      assert.equal(again.doneBytes, 8 * MiB);
      assert.deepEqual(again.error, err);
      assert.deepEqual(readdirSync(dir).sort(), ['j1.json', 'last-id'], 'no temporary file left behind');
      assert.throws(() => s.update('j1', { doneBytes: FIELDS.lengthBytes + 1 }), codeOf('BAD_REQUEST', /doneBytes/));
      assert.throws(() => s.update('j1', { state: 'lost' as never }), codeOf('BAD_REQUEST', /state/));
      assert.equal(s.require('j1').doneBytes, 8 * MiB, 'a refused update writes nothing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses hostile and malformed ids before they reach a path', T, () =>
    withStore((s) => {
      s.create(FIELDS);
      for (const id of ['../j1', 'j1/../../etc/passwd', '/etc/passwd', 'j1.json', 'j', 'j0', 'J1', 'j-1', '', 'j1\0']) {
        assert.throws(() => s.get(id), codeOf('NO_SUCH_JOB', /not a job id/), JSON.stringify(id));
        assert.throws(() => s.update(id, { state: 'done' }), codeOf('NO_SUCH_JOB'), JSON.stringify(id));
      }
      assert.throws(() => s.require('j7'), (e) => codeOf('NO_SUCH_JOB', /no job j7/)(e) && /dconnect status/.test((e as DconnectError).hint ?? ''));
    }),
  );

  it('reports a record that does not parse as an error naming the file', T, () =>
    withStore((s, dir) => {
      s.create(FIELDS);
      const bad = join(dir, 'j2.json');
      writeFileSync(bad, '{"id": "j2", "st');
      assert.throws(() => s.get('j2'), (e) => codeOf('BAD_STATE', /not JSON/)(e) && (e as Error).message.includes(bad));
      assert.throws(() => s.list(), codeOf('BAD_STATE'));
      writeFileSync(bad, JSON.stringify({ ...s.get('j1'), id: 'j2', lengthBytes: -1 }));
      assert.throws(() => s.get('j2'), codeOf('BAD_STATE', /lengthBytes/));
      writeFileSync(bad, JSON.stringify(s.get('j1')));
      assert.throws(() => s.get('j2'), codeOf('BAD_STATE', /names job j1/));
    }),
  );
});
