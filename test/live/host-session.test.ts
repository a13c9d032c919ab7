/**
 * The host's sessions in this process (no spawned nodes): a session boots over loopback UDP against
 * a box node run in the same process, serves model requests, and ends once (its waiters told why)
 * when its watchdog judges a box lost; the manager then keeps the last session's counters and starts
 * a new session, with a new epoch, at the next request. The watchdog's clock is driven by hand.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import { loadTopology } from '../../src/topology/load.js';
import { runBoxNode, type RunningBox } from '../../src/live/box-node.js';
import { HostSession, SessionManager } from '../../src/live/host-session.js';
import { StateDir } from '../../src/live/state-dir.js';
import { UdpTransport } from '../../src/live/udp-transport.js';
import type { Clock } from '../../src/live/watchdog.js';

const T = { timeout: 60_000 };
/** Long, so the real time a loaded machine takes between the steps never counts: the test moves the clock past it by hand. */
const PEER_TIMEOUT_MS = 60_000;

/** The wall clock's time base (the transport stamps datagrams with performance.now()) moved on by hand, with timers fired by `tick`. */
class SkewedClock implements Clock {
  skewMs = 0;
  private fns = new Set<() => void>();
  nowMs(): number {
    return performance.now() + this.skewMs;
  }
  every(_periodMs: number, fn: () => void): { cancel(): void } {
    this.fns.add(fn);
    return { cancel: () => void this.fns.delete(fn) };
  }
  /** Jumps `ms` ahead and lets every timer look once. */
  tick(ms: number): void {
    this.skewMs += ms;
    for (const fn of [...this.fns]) fn();
  }
}

async function withHost(fn: (h: { t: ReturnType<typeof loadTopology>; transport: UdpTransport; clock: SkewedClock; state: StateDir; make: (epoch: number) => HostSession; logs: string[] }) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dc-sess-'));
  const t = loadTopology('paper-2012');
  const state = new StateDir(dir);
  state.ensure();
  const key = state.fabricKey(true);
  const transport = await UdpTransport.open({ node: 'host', bind: { host: '127.0.0.1', port: 0 }, epoch: 0, role: 'host', key, seed: 1, onKeepalive: (b, inc, st) => keepalives.fn(b, inc, st) });
  const keepalives = { fn: (_b: string, _i: number, _s: number) => {} };
  const clock = new SkewedClock();
  const logs: string[] = [];
  const sessions: HostSession[] = [];
  const make = (epoch: number) => {
    const s = new HostSession({ topology: t, seed: 1, burstBytes: 0, pace: 'none', dilation: 1, transport, epoch, clock, peerTimeoutMs: PEER_TIMEOUT_MS, label: (b) => `${b} (test)`, logOf: (b) => `${dir}/logs/${b}.log`, log: (l) => logs.push(l) });
    sessions.push(s);
    // The host node routes keepalives through its manager; here straight to the newest session.
    keepalives.fn = (b, inc, st) => s.watchdog.keepalive(b, inc, st);
    return s;
  };
  try {
    await fn({ t, transport, clock, state, make, logs });
  } finally {
    for (const s of sessions) s.halt();
    await transport.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A UDP socket that takes the box's address and answers nothing (a box that is not there). */
async function silentPeer(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

describe('HostSession and SessionManager: the connection to the boxes', () => {
  it('a box that never answers ends the boot once the peer timeout passes: BOX_LOST to every waiter, once', T, async () =>
    withHost(async ({ transport, clock, make, logs }) => {
      const sink = await silentPeer();
      try {
        transport.setPeer('box0', { host: '127.0.0.1', port: (sink.address() as { port: number }).port });
        let epoch = 40;
        const m = new SessionManager(() => make(++epoch));
        const s = m.ensure();
        assert.equal(s.epoch, 41);
        assert.equal(m.ensure(), s, 'one session at a time');
        const ended: Error[] = [];
        s.onEnd((e) => ended.push(e));
        assert.deepEqual(s.watchdog.waiting(), ['box0'], 'booting waits on every box');
        clock.tick(PEER_TIMEOUT_MS / 2);
        assert.equal(s.failed, null, 'within the timeout');
        clock.tick(PEER_TIMEOUT_MS);
        await assert.rejects(s.booted, (e) => e instanceof DconnectError && e.code === 'BOX_LOST' && /box box0 \(test\) stopped answering/.test(e.message));
        assert.equal(ended.length, 1);
        assert.equal(m.current(), null, 'the manager forgets an ended session');
        assert.ok(Object.keys(m.lastTrace).length > 0, 'and keeps its counters');
        assert.ok(logs.some((l) => /^session 41 ended: box box0/.test(l)), logs.join('\n'));
        s.fail(new Error('again'));
        assert.equal(ended.length, 1, 'a session ends once');
        const late: Error[] = [];
        s.onEnd((e) => late.push(e));
        assert.equal(late.length, 1, 'a waiter that comes after the end hears it at once');
        const next = m.ensure();
        assert.equal(next.epoch, 42, 'the next request starts a new session with a new epoch');
        assert.notEqual(next, s);
      } finally {
        sink.close();
      }
    }),
  );

  it('boots against a box in this process, serves a model request, and ends when the box stops answering while a request waits on it', T, async () =>
    withHost(async ({ t, transport, state, make, clock }) => {
      const box = (): Promise<RunningBox> =>
        runBoxNode({ topology: t, name: 'box0', state, seed: 1, pace: 'none', burstBytes: 0, dilation: 1, listen: { host: '127.0.0.1', port }, key: state.fabricKey(false), faults: [], log: () => {} });
      let port = 0;
      const b = await box();
      port = b.transport.address().port;
      try {
        transport.setPeer('box0', { host: '127.0.0.1', port });
        const m = new SessionManager(() => make(1));
        const host = await m.booted();
        const s = m.current()!;
        assert.deepEqual(host.manager.blockDevices().map((d) => d.name), ['sda', 'sdb']);
        assert.deepEqual(s.watchdog.waiting(), [], 'booted: nothing waited on');
        assert.deepEqual(m.exports.map((e) => e.name), ['sda', 'sdb'], 'the exports are kept for NBD');
        const data = await s.viaModel<Uint8Array>(s.boxOf('sda'), (io, done) => io.read(io.device('sda'), 0, 4096, done));
        assert.equal(data.length, 4096);
        assert.deepEqual(s.watchdog.waiting(), [], 'a finished request waits on nothing');
        // A request still out when the session ends hears why.
        const pending = s.viaModel<void>(s.boxOf('sda'), () => {}); // never completes by itself
        await new Promise((r) => setImmediate(r)); // the request is on its way into the model
        assert.deepEqual(s.watchdog.waiting(), ['box0'], 'the request waits on the drive\'s box');
        await b.stop();
        clock.tick(2 * PEER_TIMEOUT_MS);
        await assert.rejects(pending, (e) => e instanceof DconnectError && e.code === 'BOX_LOST' && /box box0 \(test\) stopped answering/.test(e.message));
        assert.equal(m.current(), null);
      } finally {
        await b.stop();
      }
    }),
  );
});
