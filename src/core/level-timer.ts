import type { Scheduler } from './scheduler.js';

/**
 * The time integral of a level (tags in use, commands in work, 1 while a window is full), for a trace
 * counter: level x ps, accumulated only when the level changes. `readPs` includes the time since the
 * last change, so a snapshot is the integral up to now and the difference of two snapshots is exact
 * over that interval, whatever happened before it (the fast fidelity scales such differences).
 * Observation only: nothing in the model reads it back, so it changes no timing.
 */
export class LevelTimer {
  private level = 0;
  private sincePs = 0;
  private accPs = 0;

  constructor(private readonly clock: Pick<Scheduler, 'now'>) {}

  /** The level from now on. */
  set(level: number): void {
    if (level === this.level) return;
    const now = this.clock.now();
    this.accPs += this.level * (now - this.sincePs);
    this.sincePs = now;
    this.level = level;
  }

  /** The integral of the level over time up to now, level x ps. */
  readPs(): number {
    return this.accPs + this.level * (this.clock.now() - this.sincePs);
  }
}
