/**
 * A FIFO queue on a circular array. The model's queues (TLPs waiting for credits, frames on a wire,
 * requests in a FIFO) are pushed and shifted once per packet; Array#shift moves or re-allocates
 * the array, a ring only moves two indices.
 */
export class Ring<T> {
  private items: (T | undefined)[];
  private mask: number;
  private head = 0;
  private count = 0;

  constructor(capacity = 8) {
    let cap = 1;
    while (cap < capacity) cap *= 2;
    this.items = Array.from({ length: cap }, () => undefined); // packed, not holey
    this.mask = cap - 1;
  }

  get length(): number {
    return this.count;
  }

  push(x: T): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & this.mask] = x;
    this.count++;
  }

  /** The oldest element (undefined when empty). */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Removes and returns the oldest element (undefined when empty). */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined; // do not keep the packet alive
    this.head = (this.head + 1) & this.mask;
    this.count--;
    return x;
  }

  /** Replaces the oldest element (a burst whose first constituents left: the rest stays at the head). */
  setHead(x: T): void {
    if (this.count === 0) throw new Error('ring: setHead on an empty ring');
    this.items[this.head] = x;
  }

  /** The i-th oldest element (0 = the head); undefined outside 0..length-1. */
  at(i: number): T | undefined {
    return i >= 0 && i < this.count ? this.items[(this.head + i) & this.mask] : undefined;
  }

  private grow(): void {
    const old = this.items;
    const n = old.length;
    const items: (T | undefined)[] = Array.from({ length: n * 2 }, () => undefined);
    for (let i = 0; i < n; i++) items[i] = old[(this.head + i) & this.mask];
    this.items = items;
    this.mask = n * 2 - 1;
    this.head = 0;
  }
}

/**
 * A FIFO of numbers on a circular Float64Array: what `Ring<number>` would hold as boxed heap numbers
 * (every push an allocation), unboxed. For per-TLP bookkeeping such as a link's credit ledger.
 */
export class NumberRing {
  private items: Float64Array;
  private mask: number;
  private head = 0;
  private count = 0;

  constructor(capacity = 16) {
    let cap = 1;
    while (cap < capacity) cap *= 2;
    this.items = new Float64Array(cap);
    this.mask = cap - 1;
  }

  get length(): number {
    return this.count;
  }

  push(x: number): void {
    if (this.count === this.items.length) this.grow();
    this.items[(this.head + this.count) & this.mask] = x;
    this.count++;
  }

  /** Removes the oldest element and returns it (NaN when empty). */
  shift(): number {
    if (this.count === 0) return NaN;
    const x = this.items[this.head];
    this.head = (this.head + 1) & this.mask;
    this.count--;
    return x;
  }

  /** Removes the `n` oldest elements (all, if fewer). */
  drop(n: number): void {
    const k = n < this.count ? n : this.count;
    this.head = (this.head + k) & this.mask;
    this.count -= k;
  }

  /** The i-th oldest element (0 = the head); the caller keeps i within 0..length-1. */
  at(i: number): number {
    return this.items[(this.head + i) & this.mask];
  }

  private grow(): void {
    const old = this.items;
    const n = old.length;
    const items = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) items[i] = old[(this.head + i) & this.mask];
    this.items = items;
    this.mask = n * 2 - 1;
    this.head = 0;
  }
}
