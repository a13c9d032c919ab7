/**
 * A canonical description of model state relative to the present, for the exact fast path: two
 * states whose digests are equal evolve identically (shifted in time), so a repeat proves a period.
 *
 * Components write what decides their future: queue contents and lengths, credits, windows, timers
 * as offsets from now, device state machines. They leave out labels that do not change timing
 * (sequence numbers as absolute values, command ids' history, addresses above the 4 KiB page
 * offset of a payload already split into TLPs), so states that differ only in labels compare equal.
 * Callbacks held in state or pending in the scheduler are named: prebuilt ones by their owner,
 * closures by `labelCallback` at the site that makes them (what they captured that matters).
 */
export type AnyCallback = (...args: never[]) => unknown;

const callbackLabels = new WeakMap<AnyCallback, string>();

/** Names a callback for digests (call where the closure is made; cheap, per command not per TLP). */
export function labelCallback<F extends AnyCallback>(fn: F, label: string): F {
  callbackLabels.set(fn, label);
  return fn;
}

export class StateDigest {
  private readonly parts: (number | string)[] = [];
  private readonly names = new Map<AnyCallback, string>();

  constructor(readonly nowPs: number) {}

  num(x: number): void {
    this.parts.push(x);
  }

  flag(b: boolean): void {
    this.parts.push(b ? 1 : 0);
  }

  str(s: string): void {
    this.parts.push(s);
  }

  /** A time in the future (or past, which is the same as now for a busy-until): its offset from now, at least 0. */
  until(absPs: number): void {
    this.parts.push(absPs > this.nowPs ? absPs - this.nowPs : 0);
  }

  /** Registers the name of a prebuilt callback owned by a component (before the scheduler is digested). */
  name(fn: AnyCallback, name: string): void {
    this.names.set(fn, name);
  }

  /** A callback's name: registered, its site label, or its source text (same site, same text); '-' for none. */
  callbackName(fn: AnyCallback | null | undefined): string {
    if (!fn) return '-';
    return this.names.get(fn) ?? callbackLabels.get(fn) ?? `?${fn.toString()}`;
  }

  callback(fn: AnyCallback | null | undefined): void {
    this.parts.push(this.callbackName(fn));
  }

  /** Opens a section (a component), so lengths cannot alias across components. */
  section(name: string): void {
    this.parts.push(`#${name}`);
  }

  /** The canonical text; equal texts mean equal states (compare texts or hash them). */
  text(): string {
    return this.parts.join(',');
  }
}

/** What a component implements to take part in the exact fast path. */
export interface Digestible {
  digest(d: StateDigest): void;
}
