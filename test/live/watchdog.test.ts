/**
 * The host's watchdog on a clock driven by hand (no processes, no wall clock): a box is judged by
 * what it sends (any datagram, keepalives when idle), never by progress; silence counts only while
 * the host waits on it; a restarted or stopped box is a loss at once; a loss is reported once.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { Watchdog, WATCHDOG_MS, type Clock } from '../../src/live/watchdog.js';

/** A clock that moves only when told, with its periodic timers fired by `advance`. */
class ManualClock implements Clock {
  now = 1_000;
  private timers: { periodMs: number; next: number; fn: () => void; live: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  every(periodMs: number, fn: () => void): { cancel(): void } {
    const t = { periodMs, next: this.now + periodMs, fn, live: true };
    this.timers.push(t);
    return { cancel: () => void (t.live = false) };
  }
  /** Moves time by `ms`, firing every due timer in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.next <= end).sort((a, b) => a.next - b.next)[0];
      if (!due) break;
      this.now = due.next;
      due.next += due.periodMs;
      due.fn();
    }
    this.now = end;
  }
  live(): number {
    return this.timers.filter((t) => t.live).length;
  }
}

const TIMEOUT_MS = 1_000;

function setup() {
  const clock = new ManualClock();
  const heard = new Map<string, number>();
  const lost: DconnectError[] = [];
  const w = new Watchdog({ clock, timeoutMs: TIMEOUT_MS, lastHeardMs: (b) => heard.get(b) ?? null, label: (b) => `${b} (udp 127.0.0.1:1)`, epoch: 7, logOf: (b) => `/state/logs/${b}.log`, onLost: (e) => lost.push(e) });
  /** Box `b` sends something every `everyMs` for `forMs` (keepalives or data: the watchdog cannot tell, and need not). */
  const talk = (b: string, forMs: number, everyMs = 50) => {
    for (let t = 0; t < forMs; t += everyMs) {
      clock.advance(everyMs);
      heard.set(b, clock.now);
    }
  };
  return { clock, heard, lost, w, talk };
}

describe('Watchdog: liveness from what a box sends', () => {
  it('never judges a box that keeps sending, however long a wait lasts (no data progress needed)', () => {
    const { w, lost, talk } = setup();
    w.waitOn(['box0', 'box1']);
    for (let i = 0; i < 20; i++) {
      talk('box0', 500);
      talk('box1', 500);
    }
    assert.deepEqual(lost, [], '20 s of waiting with both boxes heard is no loss');
  });

  it('catches a box that stops within the timeout plus one look, naming it and the timeout', () => {
    const { w, lost, talk, clock } = setup();
    w.waitOn(['box0', 'box1']);
    talk('box0', 2_000);
    // box1 sent nothing since the wait began: lost once TIMEOUT_MS has passed, at the next look.
    assert.equal(lost.length, 1);
    assert.equal(lost[0]!.code, 'BOX_LOST');
    assert.match(lost[0]!.message, /^box box1 \(udp 127\.0\.0\.1:1\) stopped answering: nothing from it for 1\.\d s \(--peer-timeout 1000 ms\)$/);
    assert.match(lost[0]!.hint ?? '', /dconnect status/);
    clock.advance(10_000);
    assert.equal(lost.length, 1, 'a loss is reported once');
  });

  it('counts silence only while the host waits: a box idle and unheard for long is not lost until asked, then has the timeout', () => {
    const { w, lost, clock, heard } = setup();
    heard.set('box0', clock.now);
    clock.advance(60_000); // nothing asked of box0 for a minute
    assert.deepEqual(lost, []);
    const release = w.waitOn(['box0']);
    clock.advance(TIMEOUT_MS - WATCHDOG_MS);
    assert.deepEqual(lost, [], 'silence counts from when the wait began, not from the last datagram');
    release();
    clock.advance(10_000);
    assert.deepEqual(lost, [], 'released: no longer judged');
    w.waitOn(['box0']);
    clock.advance(TIMEOUT_MS + WATCHDOG_MS);
    assert.equal(lost.length, 1);
  });

  it('keeps a box waited on while any of its waits holds it (counted)', () => {
    const { w, lost, clock } = setup();
    const a = w.waitOn(['box0']);
    const b = w.waitOn(['box0']);
    a();
    a(); // twice is once
    assert.deepEqual(w.waiting(), ['box0']);
    clock.advance(TIMEOUT_MS + WATCHDOG_MS);
    assert.equal(lost.length, 1, 'still waited on through the second wait');
    b();
    assert.deepEqual(w.waiting(), []);
  });

  it('ends the session at once on a keepalive from another incarnation, or one saying the model stopped', () => {
    const restarted = setup();
    restarted.w.keepalive('box0', 11, 0);
    restarted.w.keepalive('box0', 11, 0);
    assert.equal(restarted.lost.length, 0, 'the incarnation this session met');
    restarted.w.keepalive('box0', 12, 0);
    assert.equal(restarted.lost.length, 1);
    assert.match(restarted.lost[0]!.message, /box box0 .* restarted during session 7: it knows nothing of this session/);
    assert.match(restarted.lost[0]!.hint ?? '', /--resume/);
    restarted.w.keepalive('box0', 13, 1);
    assert.equal(restarted.lost.length, 1, 'nothing after the loss');

    const stopped = setup();
    stopped.w.keepalive('box1', 5, 1);
    assert.equal(stopped.lost.length, 1);
    assert.match(stopped.lost[0]!.message, /box box1 .*: its model stopped with an error/);
    assert.equal(stopped.lost[0]!.hint, 'see /state/logs/box1.log');
  });

  it('stops its timer when stopped or after a loss', () => {
    const a = setup();
    assert.equal(a.clock.live(), 1);
    a.w.stop();
    assert.equal(a.clock.live(), 0);
    a.w.waitOn(['box0']);
    a.clock.advance(10_000);
    assert.deepEqual(a.lost, [], 'a stopped watchdog judges nothing');
    const b = setup();
    b.w.keepalive('box0', 1, 1);
    assert.equal(b.clock.live(), 0);
  });
});
