import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EventBudgetExceeded, PS_PER_MS, PS_PER_NS, PS_PER_S, PS_PER_US, VirtualScheduler } from '../../src/core/scheduler.js';


interface Ran {
  /** When it was due, its insertion order, when it ran. */
  t: number;
  ins: number;
  actual: number;
}

/** Schedules events that record when they ran (and schedule their children at their own run). */
function recorder(s: VirtualScheduler): { add: (delay: number, children: number[]) => void; executed: Ran[] } {
  let insertion = 0;
  const executed: Ran[] = [];
  const add = (delay: number, children: number[]) => {
    const ins = insertion++;
    const t = s.now() + delay;
    s.schedule(delay, () => {
      executed.push({ t, ins, actual: s.now() });
      for (const c of children) add(c, []);
    });
  };
  return { add, executed };
}

/** Every event ran at its due time, in (time, insertion order). */
function assertRanInOrder(executed: Ran[]): void {
  for (const e of executed) assert.equal(e.actual, e.t);
  for (let i = 1; i < executed.length; i++) {
    const a = executed[i - 1];
    const b = executed[i];
    assert.ok(a.t < b.t || (a.t === b.t && a.ins < b.ins), `event ${i - 1} (t=${a.t}, ins=${a.ins}) ran before event ${i} (t=${b.t}, ins=${b.ins})`);
  }
}

describe('VirtualScheduler ordering', () => {
  it('starts at time 0 with nothing pending', () => {
    const s = new VirtualScheduler();
    assert.equal(s.now(), 0);
    assert.equal(s.pending(), 0);
    assert.equal(s.step(), false);
    s.run();
    assert.equal(s.now(), 0);
  });

  it('runs events in time order and advances now() to each event time', () => {
    const s = new VirtualScheduler();
    const seen: [string, number][] = [];
    s.schedule(300, () => seen.push(['c', s.now()]));
    s.schedule(100, () => seen.push(['a', s.now()]));
    s.schedule(200, () => seen.push(['b', s.now()]));
    assert.equal(s.pending(), 3);
    s.run();
    assert.deepEqual(seen, [
      ['a', 100],
      ['b', 200],
      ['c', 300],
    ]);
    assert.equal(s.now(), 300);
    assert.equal(s.eventsExecuted, 3);
    assert.equal(s.pending(), 0);
  });

  it('runs events scheduled for the same time in FIFO order', () => {
    const s = new VirtualScheduler();
    const seen: number[] = [];
    for (let i = 0; i < 50; i++) s.schedule(1000, () => seen.push(i));
    s.run();
    assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
  });

  it('delay is relative to the time of scheduling, and zero-delay events run after the current one', () => {
    const s = new VirtualScheduler();
    const seen: [string, number][] = [];
    s.schedule(100, () => {
      seen.push(['outer', s.now()]);
      s.schedule(0, () => seen.push(['zero', s.now()]));
      s.schedule(50, () => seen.push(['later', s.now()]));
      seen.push(['outer-end', s.now()]);
    });
    s.schedule(100, () => seen.push(['sibling', s.now()]));
    s.run();
    assert.deepEqual(seen, [
      ['outer', 100],
      ['outer-end', 100],
      ['sibling', 100], // scheduled before 'zero', same time: FIFO
      ['zero', 100],
      ['later', 150],
    ]);
  });

  it('property: any schedule (also nested, also past the initial capacity) executes sorted by (time, insertion order)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ delay: fc.integer({ min: 0, max: 40 }), children: fc.array(fc.integer({ min: 0, max: 40 }), { maxLength: 3 }) }), { maxLength: 120 }),
        (specs) => {
          const s = new VirtualScheduler(4); // small: exercises grow()
          const { add, executed } = recorder(s);
          for (const sp of specs) add(sp.delay, sp.children);
          s.run();
          const total = specs.length + specs.reduce((n, sp) => n + sp.children.length, 0);
          assert.equal(executed.length, total);
          assertRanInOrder(executed);
        },
      ),
      { numRuns: 200, seed: 12345 },
    );
  });
});

describe('VirtualScheduler calendar (buckets, years, resizes)', () => {
  it('property: delays over nine orders of magnitude, bursts at one instant, stops at untilPs and events scheduled before the bucket found last: sorted by (time, insertion order)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            delay: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 0, max: 1e9 })),
            burst: fc.integer({ min: 1, max: 60 }),
            children: fc.array(fc.integer({ min: 0, max: 1e5 }), { maxLength: 2 }),
          }),
          { maxLength: 80 },
        ),
        fc.array(fc.integer({ min: 1, max: 1e9 }), { maxLength: 4 }),
        (specs, stops) => {
          const s = new VirtualScheduler(4);
          const { add, executed } = recorder(s);
          for (const sp of specs) for (let k = 0; k < sp.burst; k++) add(sp.delay, sp.children);
          // Stop short of the next event (the calendar has found it), then schedule before it.
          for (const u of [...stops].sort((a, b) => a - b)) {
            s.run({ untilPs: u });
            add(0, [1]);
          }
          s.run();
          assert.equal(s.pending(), 0);
          assertRanInOrder(executed);
        },
      ),
      { numRuns: 150, seed: 777 },
    );
  });
});

describe('VirtualScheduler delays', () => {
  it('rejects negative and NaN delays with a RangeError and schedules nothing', () => {
    const s = new VirtualScheduler();
    assert.throws(() => s.schedule(-1, () => {}), RangeError);
    assert.throws(() => s.schedule(-0.5, () => {}), RangeError);
    assert.throws(() => s.schedule(Number.NaN, () => {}), RangeError);
    assert.equal(s.pending(), 0);
  });

  it('rounds fractional delays up to the next integer picosecond', () => {
    const s = new VirtualScheduler();
    const seen: number[] = [];
    s.schedule(0.1, () => seen.push(s.now()));
    s.schedule(2.5, () => seen.push(s.now()));
    s.schedule(3, () => seen.push(s.now()));
    s.schedule(3.0000001, () => seen.push(s.now()));
    s.run();
    assert.deepEqual(seen, [1, 3, 3, 4]);
    for (const t of seen) assert.ok(Number.isInteger(t));
  });

  it('time units are consistent', () => {
    assert.equal(PS_PER_NS, 1e3);
    assert.equal(PS_PER_US, 1e6);
    assert.equal(PS_PER_MS, 1e9);
    assert.equal(PS_PER_S, 1e12);
  });
});

describe('VirtualScheduler.run options', () => {
  it('untilPs runs events at or before the limit, leaves the rest pending, and sets now() to the limit', () => {
    const s = new VirtualScheduler();
    const seen: number[] = [];
    for (const t of [100, 200, 300, 400]) s.schedule(t, () => seen.push(t));
    s.run({ untilPs: 300 });
    assert.deepEqual(seen, [100, 200, 300]);
    assert.equal(s.pending(), 1);
    s.run({ untilPs: 350 });
    assert.equal(s.now(), 350);
    assert.deepEqual(seen, [100, 200, 300]);
    // Delays are now relative to 350.
    s.schedule(10, () => seen.push(s.now()));
    s.run();
    assert.deepEqual(seen, [100, 200, 300, 360, 400]);
  });

  it('untilPs earlier than now() must not move time backwards', () => {
    const s = new VirtualScheduler();
    s.schedule(1000, () => {});
    s.schedule(5000, () => {});
    s.run({ untilPs: 1000 });
    assert.equal(s.now(), 1000);
    s.run({ untilPs: 10 });
    assert.ok(s.now() >= 1000, `time went backwards to ${s.now()}`);
  });

  it('stop() is checked between events', () => {
    const s = new VirtualScheduler();
    let count = 0;
    for (let i = 1; i <= 10; i++) s.schedule(i * 10, () => count++);
    s.run({ stop: () => count >= 4 });
    assert.equal(count, 4);
    assert.equal(s.now(), 40);
    assert.equal(s.pending(), 6);
    // A stop that is already true runs nothing.
    s.run({ stop: () => true });
    assert.equal(count, 4);
    s.run();
    assert.equal(count, 10);
  });

  it('throws EventBudgetExceeded for an endless self-rescheduling event, after exactly the budget', () => {
    const s = new VirtualScheduler();
    let runs = 0;
    const tick = () => {
      runs++;
      s.schedule(1000, tick);
    };
    s.schedule(0, tick);
    assert.throws(
      () => s.run({ maxEvents: 500 }),
      (e: unknown) => {
        assert.ok(e instanceof EventBudgetExceeded);
        assert.equal(e.code, 'EVENT_BUDGET_EXCEEDED');
        assert.equal(e.budget, 500);
        assert.match(e.message, /500 events/);
        return true;
      },
    );
    assert.equal(runs, 500);
    assert.equal(s.now(), 499 * 1000);
    // The budget counts events of this run only.
    assert.throws(() => s.run({ maxEvents: 10 }), EventBudgetExceeded);
    assert.equal(runs, 510);
  });

  it('a run that settles within its budget does not throw', () => {
    const s = new VirtualScheduler();
    for (let i = 0; i < 10; i++) s.schedule(i, () => {});
    assert.doesNotThrow(() => s.run({ maxEvents: 10 }));
    assert.equal(s.eventsExecuted, 10);
  });
});
