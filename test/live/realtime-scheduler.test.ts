import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { INITIAL_TIMEOUT_WALL_MS, LagStats, MIN_TIMEOUT_WALL_MS, MS_PER_TURN, RealtimeScheduler, RttEstimator, type WallClock } from '../../src/live/realtime-scheduler.js';

/** A wall clock the test moves by hand: timers fire when `advance` passes them. No real time is read. */
class FakeClock implements WallClock {
  ms = 1000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  /** Extra wall time every timer callback takes (a slow machine). */
  workMs = 0;
  nowMs(): number {
    return this.ms;
  }
  setTimer(ms: number, fn: () => void): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.ms + Math.max(0, ms), fn, id });
    return id;
  }
  clear(handle: unknown): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }
  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (!t || t.at > end) break;
      this.timers.shift();
      this.ms = Math.max(this.ms, t.at);
      t.fn();
      this.ms += this.workMs;
    }
    this.ms = Math.max(this.ms, end);
  }
}

describe('RealtimeScheduler (live mode): events at simulated time x dilation on the wall clock', () => {
  it('runs each event when the wall clock reaches its time times the dilation, in the model\'s order', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1000, clock }); // 1 simulated us = 1 wall ms
    const ran: [string, number, number][] = [];
    const at = (name: string) => () => ran.push([name, s.now(), clock.nowMs()]);
    s.schedule(3_000_000, at('b')); // 3 us
    s.schedule(1_000_000, at('a')); // 1 us
    s.schedule(3_000_000, at('c')); // same time as b, scheduled after it
    s.start((e) => assert.fail(e));
    clock.advance(0.5);
    assert.deepEqual(ran, [], 'nothing is due yet');
    clock.advance(10);
    assert.deepEqual(ran, [
      ['a', 1_000_000, 1001],
      ['b', 3_000_000, 1003],
      ['c', 3_000_000, 1003],
    ]);
    assert.equal(s.lag.maxMs, 0);
  });

  it('measures lag (max and p99) when the machine is slower than the dilation allows, and the order stays', () => {
    const clock = new FakeClock();
    clock.workMs = 2; // every timer callback costs 2 wall ms
    const s = new RealtimeScheduler({ dilation: 1000, clock });
    const order: number[] = [];
    for (let i = 0; i < 5; i++) s.schedule(i * 1_000_000, () => order.push(i));
    s.start((e) => assert.fail(e));
    clock.advance(50);
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
    const lag = s.lag.summary();
    assert.equal(lag.events, 5);
    assert.ok(lag.maxMs > 0, 'events ran late');
    assert.ok(lag.p99Ms >= 0 && lag.p99Ms <= lag.maxMs);
  });

  it('a hard limit stops the run with a clear error when an event is later than it', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1000, hardLimitMs: 5, clock });
    s.schedule(1_000_000, () => {
      clock.ms += 20; // this event takes 20 wall ms
    });
    s.schedule(2_000_000, () => assert.fail('must not run: it would be 19 ms late'));
    let err: unknown = null;
    s.start((e) => (err = e));
    clock.advance(30);
    assert.ok(err instanceof DconnectError && err.code === 'LAG_LIMIT', String(err));
    assert.match((err as Error).message, /ran 19\.0 ms late, over the hard limit of 5 ms/);
  });

  it('input from outside enters at the simulated time of now', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1000, clock });
    s.start((e) => assert.fail(e));
    clock.advance(7); // 7 us of simulated time have passed on the wall
    let seen = -1;
    s.inject(() => (seen = s.now()));
    clock.advance(1);
    assert.equal(seen, 7_000_000);
  });

  it('refuses a dilation that is not a positive number', () => {
    assert.throws(() => new RealtimeScheduler({ dilation: 0 }), /--time-dilation 0 is not a positive number/);
  });

  it('lag statistics are bounded buckets: p99 is an upper bound from its bucket', () => {
    const l = new LagStats();
    for (let i = 0; i < 99; i++) l.add(0.02);
    l.add(250);
    assert.equal(l.summary().maxMs, 250);
    assert.equal(l.quantileMs(0.99), 0.03, '99 of 100 under 0.03 ms');
    assert.equal(l.quantileMs(1), 250);
  });

  it('pace none: events run back to back, the simulated clock free of the wall clock', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1, pace: 'none', clock });
    const ran: number[] = [];
    for (let i = 1; i <= 3; i++) s.schedule(i * 1e12, () => ran.push(s.now())); // 1, 2, 3 simulated seconds
    s.start((e) => assert.fail(e));
    clock.advance(0);
    assert.deepEqual(ran, [1e12, 2e12, 3e12], 'three simulated seconds in no wall time');
    assert.equal(s.lagSummary(), null, 'lag means nothing unpaced');
  });

  it('pace none: a timeout waits for its wall deadline too, and input meanwhile runs first, at the current simulated time', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1, pace: 'none', clock });
    const ran: [string, number, number][] = [];
    s.schedule(5_000_000, () => {
      ran.push(['work', s.now(), clock.nowMs()]);
      s.scheduleTimeout(200_000_000, () => ran.push(['timeout', s.now(), clock.nowMs()])); // 200 us
    });
    s.start((e) => assert.fail(e));
    clock.advance(0);
    assert.deepEqual(ran, [['work', 5_000_000, 1000]]);
    clock.advance(0.1); // 100 us of wall time: the timeout (200 us) is not due
    s.inject(() => ran.push(['input', s.now(), clock.nowMs()]));
    clock.advance(0);
    assert.deepEqual(ran[1], ['input', 5_000_000, 1000.1]);
    clock.advance(INITIAL_TIMEOUT_WALL_MS - 0.2);
    assert.equal(ran.length, 2, 'still waiting: before a round trip is measured, a timeout waits INITIAL_TIMEOUT_WALL_MS of wall time');
    clock.advance(0.2);
    assert.equal(ran[2][0], 'timeout');
    assert.equal(ran[2][1], 205_000_000, 'at its own simulated time');
    assert.ok(ran[2][2] >= 1000 + INITIAL_TIMEOUT_WALL_MS - 1e-9, `ran at wall ${ran[2][2]}`);
  });

  it('pace model: input while events run late enters right behind the backlog, not ahead of it', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1000, clock });
    s.start((e) => assert.fail(e));
    s.schedule(1_000_000, () => {}); // due at 1 wall ms
    clock.ms += 50; // the machine stalls for 50 ms: that event is 49 ms late
    let at = -1;
    s.inject(() => (at = s.now()));
    clock.advance(0);
    assert.equal(at, 1_000_000, 'stamped at the backlog head, not at 50 simulated us');
  });

  it('pace none: a busy node runs a timeout no earlier than its wall deadline, even when its simulated time has passed', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1, pace: 'none', clock });
    const ran: string[] = [];
    s.scheduleTimeout(1_000_000, () => ran.push(`timeout@${s.now()}`)); // 1 us
    for (let i = 1; i <= 5; i++) s.schedule(i * 1e9, () => ran.push(`work${i}`)); // 1..5 ms of simulated work
    s.start((e) => assert.fail(e));
    clock.advance(0);
    assert.deepEqual(ran, ['work1', 'work2', 'work3', 'work4', 'work5'], 'the work ran at once; the timeout waits for the wall');
    clock.advance(INITIAL_TIMEOUT_WALL_MS);
    assert.equal(ran[5], 'timeout@5000000000', 'then it runs, at the current simulated time (its own has passed)');
  });

  it('pace none: once round trips are measured, a timeout waits 2 srtt + one turn, never under MIN_TIMEOUT_WALL_MS', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1, pace: 'none', clock });
    s.start((e) => assert.fail(e));
    // Round trips of 3 ms, steady: the timeout is 2 x 3 + 1 (one turn).
    for (let i = 0; i < 40; i++) {
      const stamp = s.timeoutStamp();
      clock.ms += 3;
      s.roundTrip(stamp);
    }
    assert.ok(Math.abs(s.rtt.timeoutMs() - (6 + MS_PER_TURN)) < 0.01, `timeout ${s.rtt.timeoutMs()} ms`);
    const ran: number[] = [];
    s.scheduleTimeout(1000, () => ran.push(clock.nowMs()));
    const armed = clock.nowMs();
    clock.advance(6.9);
    assert.deepEqual(ran, []);
    clock.advance(0.2);
    assert.equal(ran.length, 1);
    assert.ok(ran[0] - armed >= 6.99 && ran[0] - armed < INITIAL_TIMEOUT_WALL_MS, `waited ${ran[0] - armed} ms`);
  });
  it('pace none: a timeout given the stamp of when its frame left counts from then, never from before now\'s stamp', () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1, pace: 'none', clock });
    s.start((e) => assert.fail(e));
    const sent = s.timeoutStamp();
    clock.advance(5);
    const ran: string[] = [];
    s.scheduleTimeout(1000, () => ran.push('since'), 'ack', sent);
    s.scheduleTimeout(1000, () => ran.push('now'));
    clock.advance(INITIAL_TIMEOUT_WALL_MS - 5 + 0.1);
    assert.deepEqual(ran, ['since'], 'the stamped one is due a timeout after the frame left');
    clock.advance(5);
    assert.deepEqual(ran, ['since', 'now']);
    const later = s.timeoutStamp() + 1000;
    s.scheduleTimeout(1000, () => ran.push('future'), 'ack', later);
    clock.advance(INITIAL_TIMEOUT_WALL_MS + 0.1);
    assert.deepEqual(ran, ['since', 'now', 'future'], 'a stamp after now counts from now');
  });
  it("pace none: a NAK repeat ('repair') waits by the measured repair time, not by the ACK round trip that repairs inflate", () => {
    const clock = new FakeClock();
    const s = new RealtimeScheduler({ dilation: 1, pace: 'none', clock });
    s.start((e) => assert.fail(e));
    // ACKs wait behind repairs (12 ms), repairs themselves take 1 ms.
    for (let i = 0; i < 40; i++) {
      const stamp = s.timeoutStamp();
      clock.ms += 12;
      s.roundTrip(stamp);
      const nak = s.timeoutStamp();
      clock.ms += 1;
      s.roundTrip(nak, 'repair');
    }
    assert.ok(s.rtt.timeoutMs() > 12, `ACK timeout ${s.rtt.timeoutMs()} ms`);
    assert.ok(Math.abs(s.repair.timeoutMs() - (2 + MS_PER_TURN)) < 0.01, `repairs of 1 ms: ${s.repair.timeoutMs()} ms`);
    const ran: string[] = [];
    s.scheduleTimeout(1000, () => ran.push('nak'), 'repair');
    s.scheduleTimeout(1000, () => ran.push('rto'));
    clock.advance(2 + MS_PER_TURN + 0.1);
    assert.deepEqual(ran, ['nak'], 'the NAK repeat is due first');
    clock.advance(INITIAL_TIMEOUT_WALL_MS);
    assert.deepEqual(ran, ['nak', 'rto']);
  });
});

describe('RttEstimator (RFC 6298 smoothing, RFC 8985 probe timeout)', () => {
  it('first sample: srtt = r, then alpha 1/8; the timeout 2 srtt + one turn within the floor and the initial value', () => {
    const e = new RttEstimator();
    assert.equal(e.timeoutMs(), INITIAL_TIMEOUT_WALL_MS);
    e.add(3);
    assert.equal(e.srttMs, 3);
    assert.equal(e.timeoutMs(), 2 * 3 + MS_PER_TURN);
    e.add(200);
    assert.equal(e.timeoutMs(), INITIAL_TIMEOUT_WALL_MS, 'an outlier inflates it only up to the cap');
    e.srttMs = 8;
    e.add(0);
    assert.equal(e.srttMs, 7);
    const fast = new RttEstimator();
    for (let i = 0; i < 100; i++) fast.add(0.1);
    assert.equal(fast.timeoutMs(), MIN_TIMEOUT_WALL_MS, 'a fast round trip still waits the floor');
  });
});
