/**
 * Trace counters. Each component owns a plain object of numeric counters (its own typed shape) and
 * registers it under a hierarchical name; a snapshot is the set of all of them, which is what the
 * paper's PCIe analyzer would have shown and what the experiments read to find the saturated resource.
 */
export type CounterSet = Record<string, number>;

/** A component's counters under its part's name (`dma.mrd`), for a device that traces a part's counters beside its own. */
export function prefixKeys(prefix: string, counters: CounterSet): CounterSet {
  const out: CounterSet = {};
  for (const [k, v] of Object.entries(counters)) out[`${prefix}.${k}`] = v;
  return out;
}

export class TraceRegistry {
  private readonly sources = new Map<string, () => CounterSet>();
  /** Instantaneous levels (a bridge's window in use, a link's credits): read by views, never summed, never in a snapshot. */
  private readonly gaugeSources = new Map<string, () => CounterSet>();

  /** Registers a counter set; names must be unique (they identify a link, port or device). */
  register(name: string, read: () => CounterSet): void {
    if (this.sources.has(name)) throw new Error(`trace source '${name}' registered twice`);
    this.sources.set(name, read);
  }

  /** Registers an instantaneous level under a name (unique among gauges); `gauges()` reads them all. */
  registerGauge(name: string, read: () => CounterSet): void {
    if (this.gaugeSources.has(name)) throw new Error(`trace gauge '${name}' registered twice`);
    this.gaugeSources.set(name, read);
  }

  gauges(): Record<string, CounterSet> {
    const out: Record<string, CounterSet> = {};
    for (const [k, r] of this.gaugeSources) out[k] = { ...r() };
    return out;
  }

  names(): string[] {
    return [...this.sources.keys()];
  }

  read(name: string): CounterSet {
    const r = this.sources.get(name);
    if (!r) throw new Error(`no trace source '${name}'; known: ${this.names().join(', ')}`);
    return { ...r() };
  }

  snapshot(): Record<string, CounterSet> {
    const out: Record<string, CounterSet> = {};
    for (const [k, r] of this.sources) out[k] = { ...r() };
    return out;
  }
}
