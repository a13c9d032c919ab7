import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TIMELINE_ENTRIES, WireTimeline } from '../../src/core/wire-timeline.js';

test('wire timeline: things that enter in order go one behind the other', () => {
  const w = new WireTimeline();
  assert.equal(w.place(0, 10, 0), 0);
  assert.equal(w.place(5, 10, 5), 10);
  assert.equal(w.place(50, 10, 50), 50);
  assert.equal(w.lastEndPs, 60);
});

test('wire timeline: what entered earlier but is committed later goes into a gap before what entered after it', () => {
  const w = new WireTimeline();
  // A frame that entered at 100 is committed first (a burst's frames come later, at its last arrival).
  assert.equal(w.place(100, 10, 100), 100);
  // The burst's frames entered at 0, 20, 40, ...: the first fit before the frame at 100, in order.
  assert.equal(w.place(0, 30, 0), 0);
  assert.equal(w.place(30, 30, 20), 30);
  assert.equal(w.place(60, 30, 40), 60);
  // The next one (entered at 60) would overlap the frame at 100: nothing committed moves, so it goes after.
  assert.equal(w.place(90, 30, 60), 110);
});

test('wire timeline: something never passes what entered before it, even where a gap would hold it', () => {
  const w = new WireTimeline();
  w.place(0, 10, 0);
  w.place(100, 10, 50); // entered at 50, waits until 100 (say, for credits)
  // Entered at 60 (after the one above), ready at 20: per frame it queues behind it.
  assert.equal(w.place(20, 10, 60), 110);
  // Entered at 40 (before it): the gap at 20 holds it.
  assert.equal(w.place(20, 10, 40), 20);
});

test('wire timeline: it keeps a bounded number of entries, and nothing starts before those it forgot', () => {
  const w = new WireTimeline();
  for (let i = 0; i < 2 * MAX_TIMELINE_ENTRIES; i++) w.place(i * 100, 10, i * 100);
  // Entered before everything: the gaps among the oldest half, forgotten, are gone; the first kept one's is not.
  const floor = (MAX_TIMELINE_ENTRIES - 1) * 100 + 10;
  assert.equal(w.place(0, 10, -1), floor);
});
