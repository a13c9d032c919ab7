import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import { controlRequest, MAX_REQUEST_BYTES, startControlServer, type ControlServer, type Route } from '../../src/live/control-http.js';
import { liveError } from '../../src/live/state-dir.js';

const T = { timeout: 15_000 };
const TOKEN = 'ab'.repeat(32);

const ROUTES: Route[] = [
  { method: 'GET', pattern: '/devices', handler: () => [{ name: 'sda' }, { name: 'sdb' }] },
  { method: 'POST', pattern: '/echo', handler: (r) => ({ body: r.body, q: r.query.get('q') }) },
  { method: 'POST', pattern: '/jobs/:id/cancel', handler: (r) => ({ cancelled: r.params.id }) },
  { method: 'GET', pattern: '/jobs/:id', handler: (r) => { throw liveError('NO_SUCH_JOB', `no job ${r.params.id}`, 'dconnect status lists the jobs'); } },
  { method: 'DELETE', pattern: '/jobs/:id', handler: () => { throw liveError('CONFLICT', 'job is running', 'cancel it first'); } },
  { method: 'POST', pattern: '/bad', handler: () => { throw new DconnectError('BAD_OPTION', 'depth 0', 'use 1..64'); } },
  { method: 'GET', pattern: '/boom', handler: async () => { await Promise.resolve(); throw new TypeError('x is undefined'); } },
  { method: 'GET', pattern: '/nothing', handler: () => undefined },
];

/** A fresh short directory (socket paths are bounded) removed after `fn`, and a server closed after it. */
async function withServer(fn: (srv: ControlServer, dir: string) => Promise<void>, tcp?: { host: string; port: number }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dc-ctl-'));
  const srv = await startControlServer({ socketPath: join(dir, 'host.sock'), tcp, ...(tcp ? { token: TOKEN } : {}), routes: ROUTES });
  try {
    await fn(srv, dir);
  } finally {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp, hint?: RegExp): Promise<void> {
  await assert.rejects(p, (e) => {
    assert.ok(e instanceof DconnectError, `a DconnectError, not ${String(e)}`);
    assert.equal(e.code, code);
    if (message) assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? '', hint);
    return true;
  });
}

/** A raw request, to see the status and headers the client hides (a JSON body is typed as such unless `headers` say otherwise). */
function raw(target: string | { host: string; port: number }, method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }): Promise<{ status: number; headers: Record<string, unknown>; body: unknown }> {
  return new Promise((done, fail) => {
    const where = typeof target === 'string' ? { socketPath: target } : { host: target.host, port: target.port };
    const req = request({ ...where, method, path, agent: false, timeout: 10_000, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => done({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('raw request timed out')));
    req.on('error', fail);
    req.end(body);
  });
}

describe('control-http: the control API transport', () => {
  it('round-trips JSON on a Unix socket (0600), with route params and the query', T, () =>
    withServer(async (srv) => {
      assert.equal(statSync(srv.socketPath).mode & 0o777, 0o600);
      const t = { socketPath: srv.socketPath };
      assert.deepEqual(await controlRequest(t, 'GET', '/devices'), [{ name: 'sda' }, { name: 'sdb' }]);
      assert.deepEqual(await controlRequest(t, 'POST', '/echo?q=hi', { a: [1, 'ü'] }), { body: { a: [1, 'ü'] }, q: 'hi' });
      assert.deepEqual(await controlRequest(t, 'POST', '/echo'), { q: null }, 'no body reaches the handler as undefined');
      assert.deepEqual(await controlRequest(t, 'POST', '/jobs/j12/cancel'), { cancelled: 'j12' });
      assert.deepEqual(await controlRequest(t, 'POST', '/jobs/a%20b/cancel'), { cancelled: 'a b' });
      assert.equal(await controlRequest(t, 'GET', '/nothing'), null);
    }),
  );

  it('serves loopback TCP on an ephemeral port too, and refuses a non-loopback address', T, async () => {
    await withServer(
      async (srv) => {
        assert.ok(srv.tcp && srv.tcp.port > 0);
        assert.deepEqual(await controlRequest(srv.tcp!, 'POST', '/jobs/j3/cancel', undefined, { token: TOKEN }), { cancelled: 'j3' });
        await rejectsWith(controlRequest(srv.tcp!, 'GET', '/jobs/j3', undefined, { token: TOKEN }), 'NO_SUCH_JOB');
      },
      { host: '127.0.0.1', port: 0 },
    );
    const dir = mkdtempSync(join(tmpdir(), 'dc-ctl-'));
    try {
      await rejectsWith(startControlServer({ socketPath: join(dir, 's'), tcp: { host: '0.0.0.0', port: 0 }, routes: ROUTES }), 'BAD_REQUEST', /loopback only/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what a web page or another local process could send: an Origin, a body that is not JSON-typed; on TCP no token, a wrong token, a foreign Host', T, () =>
    withServer(
      async (srv) => {
        const s = srv.socketPath;
        const origin = await raw(s, 'POST', '/jobs/j1/cancel', '{}', { 'content-type': 'application/json', origin: 'http://evil.example' });
        assert.equal(origin.status, 403);
        assert.equal((origin.body as { error: { code: string } }).error.code, 'FORBIDDEN');
        const form = await raw(s, 'POST', '/echo', '{"a":1}', { 'content-type': 'text/plain' });
        assert.equal(form.status, 415);
        assert.equal((form.body as { error: { code: string } }).error.code, 'UNSUPPORTED_MEDIA');
        assert.equal((await raw(s, 'POST', '/echo', '{"a":1}', { 'content-type': 'application/json; charset=utf-8' })).status, 200);
        const tcp = srv.tcp!;
        const host = `127.0.0.1:${tcp.port}`;
        const none = await raw(tcp, 'GET', '/devices', undefined, { host });
        assert.equal(none.status, 401, 'no token');
        const wrong = await raw(tcp, 'GET', '/devices', undefined, { host, authorization: `Bearer ${'cd'.repeat(32)}` });
        assert.equal(wrong.status, 401, 'a wrong token');
        const rebound = await raw(tcp, 'GET', '/devices', undefined, { host: `evil.example:${tcp.port}`, authorization: `Bearer ${TOKEN}` });
        assert.equal(rebound.status, 403, 'a foreign Host (DNS rebinding)');
        const unknownRoute = await raw(tcp, 'GET', '/secret', undefined, { host });
        assert.equal(unknownRoute.status, 401, 'an unauthenticated request learns nothing of the routes');
        const good = await raw(tcp, 'GET', '/devices', undefined, { host, authorization: `Bearer ${TOKEN}` });
        assert.equal(good.status, 200);
        assert.equal((await raw(s, 'GET', '/devices')).status, 200, 'the Unix socket needs no token: its 0600 mode is the door');
      },
      { host: '127.0.0.1', port: 0 },
    ),
  );

  it('answers 404, 405, 400 and 413 with JSON errors', T, () =>
    withServer(async (srv) => {
      const s = srv.socketPath;
      const nf = await raw(s, 'GET', '/secret/admin');
      assert.equal(nf.status, 404);
      assert.deepEqual(nf.body, { error: { code: 'NOT_FOUND', message: 'no /secret/admin in the control API' } });
      const bm = await raw(s, 'DELETE', '/devices');
      assert.equal(bm.status, 405);
      assert.equal(bm.headers.allow, 'GET');
      assert.equal((bm.body as { error: { code: string } }).error.code, 'BAD_METHOD');
      const bj = await raw(s, 'POST', '/echo', '{"a": ');
      assert.equal(bj.status, 400);
      assert.equal((bj.body as { error: { code: string } }).error.code, 'BAD_REQUEST');
      const big = await raw(s, 'POST', '/echo', new Uint8Array(MAX_REQUEST_BYTES + 1).fill(0x20));
      assert.equal(big.status, 413);
      assert.match((big.body as { error: { message: string } }).error.message, /limit is 1048576/);
      const edge = JSON.stringify('x'.repeat(MAX_REQUEST_BYTES - 2)); // exactly the limit
      assert.equal((await raw(s, 'POST', '/echo', edge)).status, 200);
      // The client sees the same as DconnectErrors.
      await rejectsWith(controlRequest({ socketPath: s }, 'GET', '/nope'), 'NOT_FOUND');
      await rejectsWith(controlRequest({ socketPath: s }, 'POST', '/echo', 'x'.repeat(2 * MAX_REQUEST_BYTES)), 'BAD_REQUEST', /limit/);
    }),
  );

  it("maps a handler's DconnectError to a status and back to the same error in the client", T, () =>
    withServer(async (srv) => {
      const s = srv.socketPath;
      assert.equal((await raw(s, 'GET', '/jobs/j9')).status, 404);
      assert.equal((await raw(s, 'DELETE', '/jobs/j9')).status, 409);
      const bad = await raw(s, 'POST', '/bad');
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body, { error: { code: 'BAD_OPTION', message: 'depth 0', hint: 'use 1..64' } });
      await rejectsWith(controlRequest({ socketPath: s }, 'GET', '/jobs/j9'), 'NO_SUCH_JOB', /^no job j9$/, /dconnect status/);
      await rejectsWith(controlRequest({ socketPath: s }, 'DELETE', '/jobs/j9'), 'CONFLICT', /running/, /cancel it first/);
      await rejectsWith(controlRequest({ socketPath: s }, 'POST', '/bad'), 'BAD_OPTION', /depth 0/, /1\.\.64/);
    }),
  );

  it('answers 500 INTERNAL when a handler throws anything else, and keeps serving', T, () =>
    withServer(async (srv) => {
      const s = srv.socketPath;
      const boom = await raw(s, 'GET', '/boom');
      assert.equal(boom.status, 500);
      assert.deepEqual(boom.body, { error: { code: 'INTERNAL', message: 'x is undefined' } });
      await rejectsWith(controlRequest({ socketPath: s }, 'GET', '/boom'), 'INTERNAL');
      assert.equal((await controlRequest<unknown[]>({ socketPath: s }, 'GET', '/devices')).length, 2);
    }),
  );

  it('says NOT_RUNNING when no server listens, by socket or by port', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dc-ctl-'));
    try {
      const sock = join(dir, 'host.sock');
      await rejectsWith(controlRequest({ socketPath: sock }, 'GET', '/devices'), 'NOT_RUNNING', new RegExp(`no live fabric answers at ${sock}`), /dconnect up/);
      // A port that was just free: bind one, note it, close it.
      const port = await new Promise<number>((done) => {
        const s = createServer().listen(0, '127.0.0.1', () => {
          const p = (s.address() as { port: number }).port;
          s.close(() => done(p));
        });
      });
      await rejectsWith(controlRequest({ host: '127.0.0.1', port }, 'GET', '/devices'), 'NOT_RUNNING', /127\.0\.0\.1:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('times out with TIMEOUT when the server does not answer', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dc-ctl-'));
    const sock = join(dir, 'host.sock');
    const conns = new Set<Socket>();
    const silent = createServer((c) => void conns.add(c)); // accepts, never answers
    try {
      await new Promise<void>((done) => silent.listen(sock, done));
      await rejectsWith(controlRequest({ socketPath: sock }, 'GET', '/devices', undefined, { timeoutMs: 200 }), 'TIMEOUT', /within 200 ms/);
    } finally {
      for (const c of conns) c.destroy(); // an unread connection would keep close() pending forever
      await new Promise((done) => silent.close(done));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaces a stale socket file, refuses a live one, and removes its socket on close', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dc-ctl-'));
    const sock = join(dir, 'host.sock');
    try {
      // A socket file nobody listens on, as a killed host leaves it: a process binds it and exits without close().
      const r = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.exit(0))`], { timeout: 5_000 });
      assert.equal(r.status, 0);
      assert.ok(statSync(sock).isSocket(), 'the dead host left its socket file');
      const first = await startControlServer({ socketPath: sock, routes: ROUTES });
      try {
        assert.equal((await controlRequest<unknown[]>({ socketPath: sock }, 'GET', '/devices')).length, 2);
        await rejectsWith(startControlServer({ socketPath: sock, routes: ROUTES }), 'ALREADY_RUNNING', /already answers/);
        assert.equal((await controlRequest<unknown[]>({ socketPath: sock }, 'GET', '/devices')).length, 2, 'the first server is untouched');
      } finally {
        await first.close();
        await first.close(); // idempotent
      }
      assert.equal(existsSync(sock), false);
      writeFileSync(sock, 'not a socket');
      await rejectsWith(startControlServer({ socketPath: sock, routes: ROUTES }), 'STATE_PATH', /not a socket/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
