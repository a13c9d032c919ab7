import type { CopyResult } from '../runtime/copy.js';
import { deviceTraceKey } from '../topology/device-registry.js';
import { nicKind } from '../topology/kinds/nic.js';
import { ssdKind } from '../topology/kinds/ssd.js';

/**
 * What limits a move, from its trace counters alone. Names come from the trace keys and the result's
 * table of devices (`box1.slot5` -> `sdk`), so any topology is named the same way. A resource busy
 * SATURATED of the time is the limit; otherwise the window that binds is found from the time each
 * window was full with work waiting on it (counters the components keep for this: read tags
 * exhausted, ExpEther window and credit waits, time without a command in work) and said with the
 * measured numbers that make the bandwidth (Little's law: tags in flight x bytes / round trip).
 */

/** What the analysis reads from a result: one move's or several moves' (their devices and counters together). */
export type LimitInput = Pick<CopyResult, 'trace' | 'devices' | 'simulatedSeconds' | 'depth' | 'hostLanes'> & {
  /** What relayed the data (a DC buffer's name, or `host memory`): whose bridge sends the destination's read completions. */
  relay?: string;
};

/** A resource's share of the move's elapsed time during which it was busy. */
export interface Utilization {
  resource: string;
  utilization: number;
}

/** What binds a move: a saturated resource, or the window that keeps it below every resource's capacity. */
export type Binding = 'saturated' | 'read-tags' | 'expether-window' | 'credits' | 'commands' | 'latency';

export interface Limit {
  /** The busiest resource. */
  resource: string;
  utilization: number;
  /** True when the busiest resource is busy at least SATURATED of the time. */
  saturated: boolean;
  /** The class of limit the explanation gives. */
  binds: Binding;
  /** One sentence with the measured numbers, checkable against the trace counters. */
  explanation: string;
  /**
   * What binds in a few words, for a chart label or a table cell: the saturated resource, the window
   * that binds (`the host bridge's ExpEther window`), `3 commands in flight`, or for a latency-bound
   * move `latency (` its fullest window and busiest resource `)`. Given by `namedLimitOf` only (Fig. 8).
   */
  name?: string;
}

/** A resource busy at least this share of the time is the bottleneck. */
export const SATURATED = 0.95;
/**
 * A window full, with work waiting on it, at least this share of the time binds when nothing saturates
 * (Little's law then gives the rate from its size); one full for less shares the limit with the
 * commands in flight, and more commands still help.
 */
export const WINDOW_BINDS = 0.9;
/** A drive without a command in work at least this share of the time is waiting for commands, not working. */
export const STARVED = 0.1;
/** A window full at least this share of the time, short of WINDOW_BINDS, is said to share the limit. */
export const PARTLY = 0.5;
/** Drives within this share of working time of the longest-working one are the same stage. */
export const STAGE_TIE = 0.05;
/** When no window binds: commands in work at the drives this share of the time or more (of depth per move) bind. */
export const COMMANDS_BIND = 0.75;

type Counters = Record<string, number>;

/** The device in a slot, by the slot's trace prefix (`box0.slot2` -> `dcbuf0`); the prefix itself if the table lacks it. */
function deviceOf(prefix: string, devices: Record<string, string>): string {
  return devices[prefix] ?? prefix;
}

/**
 * The name of the thing a trace key counts, for people: `box0.slot1.link.upstream` -> `sdb link
 * upstream`, `eth.box0.slot2` -> `dcbuf0's bridge Ethernet port`, `eth.sw1.p3` -> `Ethernet port
 * sw1.p3`, and a device's key by its kind's label (topology/device-registry.ts): `ssd.box1.slot5` ->
 * `sdk`, `dcbuffer.box0.slot2` -> `dcbuf0 DDR`. A NIC's network (topology/kinds/nic.ts): its own port
 * `eth.box0.slot3.mac` -> `nic0's Ethernet port`, its switch's `eth.net.box0.slot3.p1` -> `nic0's
 * network switch port p1`, and given the trace, a client's `eth.client0` -> `client0's Ethernet port`
 * (a client is a name with a `client.<name>` key) and `client.client0` -> `client0 CPU`.
 */
export function resourceName(key: string, devices: Record<string, string>, hostLanes?: number, trace?: Record<string, unknown>): string {
  if (key.startsWith('hostLink.')) return `host link${hostLanes ? ` x${hostLanes}` : ''} ${key.slice('hostLink.'.length)}`;
  const link = /^(.+)\.link\.(upstream|downstream)$/.exec(key);
  if (link) return `${deviceOf(link[1], devices)} link ${link[2]}`;
  const device = deviceTraceKey(key);
  if (device) return device.kind.label(deviceOf(device.slot, devices));
  const [kind, ...rest] = key.split('.');
  const sub = rest.join('.');
  switch (kind) {
    case 'eth': {
      if (sub === 'hostBridge') return "host bridge's Ethernet port";
      if (sub in devices) return `${devices[sub]}'s bridge Ethernet port`;
      const mac = /^(.+)\.mac$/.exec(sub);
      if (mac && mac[1] in devices) return `${devices[mac[1]]}'s Ethernet port`;
      const net = /^net\.(.+)\.(p\d+)$/.exec(sub);
      if (net && net[1] in devices) return `${devices[net[1]]}'s network switch port ${net[2]}`;
      if (trace && `client.${sub}` in trace) return `${sub}'s Ethernet port`;
      return `Ethernet port ${sub}`;
    }
    case 'client':
      return `${sub} CPU`;
    case 'hostcpu':
      return `${sub === 'host' ? 'the host' : sub}'s CPU (transfer stack)`;
    case 'bridge':
      return sub === 'host' ? 'host bridge' : `${deviceOf(sub, devices)}'s bridge`;
    case 'switch':
      return `switch ${sub}`;
    default:
      return key;
  }
}

/**
 * Utilization of every timed resource during the move, from the trace counters: PCIe link directions,
 * Ethernet ports, and the devices' own (each kind's `resources`: the SSDs' flash read/write servers,
 * the DC buffers' DDR), and a NIC's clients' CPUs. Sorted busiest first; a NIC's network switch ports
 * come after the ports at either end of their cables when equally busy (a store-and-forward port
 * sends what its cable brought), so a tie is named by the NIC or the client.
 */
export function utilizations(r: LimitInput): Utilization[] {
  const elapsedPs = r.simulatedSeconds * 1e12;
  const out: Utilization[] = [];
  const netSwitchPorts: Utilization[] = [];
  for (const [key, c] of Object.entries(r.trace)) {
    const name = resourceName(key, r.devices, r.hostLanes, r.trace);
    if (isNetSwitchPort(key, r.devices)) netSwitchPorts.push({ resource: name, utilization: c.busyPs / elapsedPs });
    else if (key.startsWith('hostLink.') || /\.link\.(upstream|downstream)$/.test(key) || key.startsWith('eth.')) out.push({ resource: name, utilization: c.busyPs / elapsedPs });
    else if ((key.startsWith('client.') || key.startsWith('hostcpu.')) && 'cpuBusyPs' in c) out.push({ resource: name, utilization: c.cpuBusyPs / elapsedPs });
    else {
      const device = deviceTraceKey(key);
      if (device) for (const x of device.kind.resources(name, c)) out.push({ resource: x.resource, utilization: x.busyPs / elapsedPs });
    }
  }
  return [...out, ...netSwitchPorts].sort((a, b) => b.utilization - a.utilization);
}

/** A port of the switch a NIC kind adds for its network (`eth.net.box0.slot3.p1`). */
const isNetSwitchPort = (key: string, devices: Record<string, string>) => {
  const m = /^eth\.net\.(.+)\.p\d+$/.exec(key);
  return m !== null && m[1] in devices;
};

/** One drive's windows over the move, from its counters and its slot's bridge and link. */
export interface DriveWindows {
  device: string;
  /** Share of the time without a command in work. */
  idle: number;
  /** Mean commands in work. */
  commands: number;
  /** DMA reads issued (data, and command and PRP list fetches). */
  reads: number;
  /** Share of the time a read waited for a tag with every tag in use. */
  tagsExhausted: number;
  /** Mean read tags in use. */
  tagsInUse: number;
  /** Mean read round trip, tag taken to last completion in, ps. */
  readRoundTripPs: number;
  /** Mean bytes per read request. */
  bytesPerRead: number;
  /** Bytes read by DMA per second of the move, 10^6 B/s. */
  readMBps: number;
  /** Bytes written by DMA per second of the move, 10^6 B/s. */
  writeMBps: number;
  /** Share of the time its bridge held a TLP for the peer's ExpEther window. */
  windowWait: number;
  /** Share of the time its link's upstream direction held TLPs waiting for credits. */
  creditWait: number;
}

/** The windows of every drive that took part (received a command) in the move. */
export function driveWindows(r: LimitInput): DriveWindows[] {
  const out: DriveWindows[] = [];
  for (const [key, c] of Object.entries(r.trace)) {
    const device = deviceTraceKey(key);
    if (device?.kind !== ssdKind || !(c.commands > 0)) continue;
    out.push(windowsOf(r, device.slot, c));
  }
  return out;
}

/**
 * The windows of every NIC that sent or received frames in the move (a move through a NIC,
 * runtime/nic-moves.ts), as a drive's: its DMA reads fetch what it sends (payloads, headers,
 * descriptors), its writes place what it receives. A NIC has no commands and no idle counter: it
 * counts as working the whole move.
 */
export function nicWindows(r: LimitInput): DriveWindows[] {
  const out: DriveWindows[] = [];
  for (const [key, c] of Object.entries(r.trace)) {
    const device = deviceTraceKey(key);
    if (device?.kind !== nicKind || !((c.txFrames ?? 0) + (c.rxFrames ?? 0) > 0)) continue;
    out.push(windowsOf(r, device.slot, c));
  }
  return out;
}

function windowsOf(r: LimitInput, prefix: string, c: Counters): DriveWindows {
  const elapsedPs = r.simulatedSeconds * 1e12;
  const reads = c['dma.mrd'] ?? 0;
  const tagPs = c['dma.readTagPs'] ?? 0;
  const bridge: Counters = r.trace[`bridge.${prefix}`] ?? {};
  const up: Counters = r.trace[`${prefix}.link.upstream`] ?? {};
  return {
    device: deviceOf(prefix, r.devices),
    idle: (c.idlePs ?? 0) / elapsedPs,
    commands: (c.commandPs ?? 0) / elapsedPs,
    reads,
    tagsExhausted: (c['dma.tagsExhaustedPs'] ?? 0) / elapsedPs,
    tagsInUse: tagPs / elapsedPs,
    readRoundTripPs: reads > 0 ? tagPs / reads : 0,
    bytesPerRead: reads > 0 ? (c['dma.bytesRead'] ?? 0) / reads : 0,
    readMBps: (c['dma.bytesRead'] ?? 0) / r.simulatedSeconds / 1e6,
    writeMBps: (c['dma.bytesWritten'] ?? 0) / r.simulatedSeconds / 1e6,
    windowWait: (bridge.windowWaitPs ?? 0) / elapsedPs,
    creditWait: (up.creditWaitPs ?? 0) / elapsedPs,
  };
}

/**
 * Where read requests waited: each component's summed read queueing over all reads issued (every
 * device's DMA reads), ps per read. A device is named itself (`dcbuf0`: its request FIFO), not its
 * resource. Largest first.
 */
export function readWaits(r: LimitInput): { where: string; psPerRead: number }[] {
  let reads = 0;
  for (const [key, c] of Object.entries(r.trace)) if (deviceTraceKey(key)) reads += c['dma.mrd'] ?? 0;
  if (reads === 0) return [];
  return Object.entries(r.trace)
    .filter(([, c]) => (c.readQueuedPs ?? 0) > 0)
    .map(([key, c]) => {
      const device = deviceTraceKey(key);
      return { where: device ? deviceOf(device.slot, r.devices) : resourceName(key, r.devices, r.hostLanes), psPerRead: c.readQueuedPs / reads };
    })
    .sort((a, b) => b.psPerRead - a.psPerRead);
}

const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const us = (ps: number) => `${(ps / 1e6).toFixed(1)} us`;
const mbps = (x: number) => `${x.toFixed(0)} MB/s`;

/** Candidates for the binding window, each with the share of the time it was full with work waiting. */
interface Candidate {
  binds: Exclude<Binding, 'saturated' | 'commands' | 'latency'>;
  drive: DriveWindows;
  full: number;
  /** What is full, for people: "sdb's read tags", "the host bridge's ExpEther window". */
  name: string;
  /** The explanation when it binds. */
  say: (r: LimitInput, also: string[]) => string;
}

/** The bridge that sends the completions of a drive's data reads: the relay's (its DC buffer's, or the host's). */
function completerBridge(r: LimitInput): string | undefined {
  if (!r.relay) return undefined;
  if (r.relay === 'host memory') return 'bridge.host';
  const prefix = Object.keys(r.devices).find((p) => r.devices[p] === r.relay);
  return prefix === undefined ? undefined : `bridge.${prefix}`;
}

function candidates(r: LimitInput, d: DriveWindows): Candidate[] {
  // A drive moves data one way: a destination reads it by DMA (its writes are completion entries and
  // MSIs), a source writes it (its reads fetch commands and PRP lists). Its windows are that way's.
  return d.readMBps > d.writeMBps ? [readerCandidate(r, d)] : [writerCandidate(d)];
}

/**
 * A NIC's windows: those of each way it moves data. A NIC that sends reads its frames by DMA, one
 * that receives writes them, and a NIC that forwards (a pipeline) does both; the other way's DMA
 * (descriptor write-backs while sending, descriptor fetches while receiving) is small beside it.
 */
function nicCandidates(r: LimitInput, d: DriveWindows): Candidate[] {
  const most = Math.max(d.readMBps, d.writeMBps);
  return [...(d.readMBps >= NIC_WAY * most ? [readerCandidate(r, d)] : []), ...(d.writeMBps >= NIC_WAY * most ? [writerCandidate(d)] : [])];
}

/** A NIC moves data a way whose DMA bytes are at least this share of the other way's. */
const NIC_WAY = 0.25;

function readerCandidate(r: LimitInput, d: DriveWindows): Candidate {
  const elapsedPs = r.simulatedSeconds * 1e12;
  // A reader's tags stay in use while its completions wait: if the bridge sending them held them
  // for its ExpEther window (nearly) as long as the tags were exhausted, that window is the one full.
  const key = completerBridge(r);
  const completer = key ? (r.trace[key]?.windowWaitPs ?? 0) / elapsedPs : 0;
  if (key && completer > 0 && completer >= 0.9 * d.tagsExhausted) {
    const who = key === 'bridge.host' ? 'the host bridge' : resourceName(key, r.devices, r.hostLanes);
    return {
      binds: 'expether-window',
      drive: d,
      full: completer,
      name: `${who}'s ExpEther window`,
      say: () =>
        `ExpEther window bound: ${who} held ${d.device}'s read completions for its window of unacknowledged frames ${pct(completer)} of the time, and ${d.device}'s read tags were all in use ${pct(d.tagsExhausted)}: ${d.tagsInUse.toFixed(1)} tags x ${d.bytesPerRead.toFixed(0)} B over a ${us(d.readRoundTripPs)} round trip = ${mbps(d.readMBps)}`,
    };
  }
  return { binds: 'read-tags', drive: d, full: d.tagsExhausted, name: `${d.device}'s read tags`, say: (rr, also) => readTagSentence(rr, d, also) };
}

function writerCandidate(d: DriveWindows): Candidate {
  // A writer's stall travels back from the first full window on its path: a bridge waiting for the
  // ExpEther window holds its TLPs, so the link behind it waits for credits too. The window is named
  // when it accounts for (nearly) all of the link's wait; credits when they wait on their own.
  if (d.windowWait > 0 && d.windowWait >= 0.9 * d.creditWait) {
    return {
      binds: 'expether-window',
      drive: d,
      full: d.windowWait,
      name: `${d.device}'s ExpEther window`,
      say: () =>
        `ExpEther window bound: ${d.device}'s bridge held its TLPs for the peer's window of unacknowledged frames ${pct(d.windowWait)} of the time (its link waited for credits ${pct(d.creditWait)}); ${d.device} wrote ${mbps(d.writeMBps)}`,
    };
  }
  return {
    binds: 'credits',
    drive: d,
    full: d.creditWait,
    name: `${d.device}'s link credits`,
    say: () =>
      `credit bound: ${d.device} link upstream waited for flow-control credits ${pct(d.creditWait)} of the time (its bridge waited for the ExpEther window ${pct(d.windowWait)}); ${d.device} wrote ${mbps(d.writeMBps)}`,
  };
}

/** A window's full time as a share of its drive's time with a command in work. */
function relative(c: Candidate): number {
  const working = 1 - c.drive.idle;
  return working > 0 ? c.full / working : 0;
}

function readTagSentence(r: LimitInput, d: DriveWindows, also: string[]): string {
  let s = `read-tag bound: ${d.device}'s read tags all in use ${pct(d.tagsExhausted)} of the time${also.length ? ` (also ${also.join(', ')})` : ''}: ${d.tagsInUse.toFixed(1)} tags x ${d.bytesPerRead.toFixed(0)} B in flight over a ${us(d.readRoundTripPs)} mean read round trip = ${mbps(d.readMBps)}`;
  const waits = readWaits(r);
  const waited = waits.reduce((n, w) => n + w.psPerRead, 0);
  if (waited >= 0.1 * d.readRoundTripPs) {
    const where = waits
      .filter((w) => w.psPerRead >= 0.1 * waited)
      .slice(0, 3)
      .map((w) => `${w.where} ${us(w.psPerRead)}`);
    s += ` (requests queued ${us(waited)} of it: ${where.join(', ')})`;
  }
  if (d.commands >= 1.5) s += `; ${d.commands.toFixed(1)} commands in work, more add no tags`;
  return s;
}

/**
 * Names the resource or window that limits a move and says why, with the measured numbers.
 *
 * Nothing saturated: the drives that worked longest (had a command in work the largest share of the
 * time) are the stage the others wait on. Their fullest window, as a share of their working time,
 * binds if it was full WINDOW_BINDS of it. Otherwise the commands in flight bind when they were at
 * the drives COMMANDS_BIND of the time (or every drive waited for commands), with any window full
 * PARTLY of the time named as sharing the limit; else nothing explains it and the numbers are given.
 * In a move through a NIC the NIC is always one of the stages (`nicWindows`: it has no idle counter),
 * with the windows of each way it moves data, and the drives are never said to wait for commands.
 */
export function limitOf(r: LimitInput): Limit {
  const { name: _, ...limit } = namedLimitOf(r);
  return limit;
}

/** `limitOf`, with `name`: what binds in a few words. */
export function namedLimitOf(r: LimitInput): Limit & { name: string } {
  const u = utilizations(r);
  const top = u[0] ?? { resource: 'nothing', utilization: 0 };
  const base = { resource: top.resource, utilization: top.utilization, saturated: false };
  if (top.utilization >= SATURATED) {
    return { ...base, saturated: true, binds: 'saturated', explanation: `${top.resource} is saturated (${pct(top.utilization)} busy)`, name: top.resource };
  }
  const busiest = `busiest: ${top.resource} ${pct(top.utilization)}`;
  const drives = driveWindows(r);
  const nics = nicWindows(r);
  const mostWorking = Math.max(0, ...drives.map((d) => 1 - d.idle));
  // A NIC has no idle counter: it is always one of the stages (a drive it feeds or drains may wait
  // for it, or it for the drive), and its windows count as shares of the whole move.
  const stage = [...drives.filter((d) => 1 - d.idle >= mostWorking - STAGE_TIE), ...nics];
  const relativeOf = (c: Candidate) => (nics.includes(c.drive) ? c.full : relative(c));
  const all = stage.flatMap((d) => (nics.includes(d) ? nicCandidates(r, d) : candidates(r, d))).sort((a, b) => relativeOf(b) - relativeOf(a));
  const best = all[0];
  if (best && relativeOf(best) >= WINDOW_BINDS) {
    const also = all.filter((c) => c !== best && c.binds === best.binds && c.name !== best.name && relativeOf(c) >= WINDOW_BINDS).map((c) => c.drive.device);
    return { ...base, binds: best.binds, explanation: `${best.say(r, also)}; ${busiest}`, name: best.name };
  }
  // No window full most of the time: if the commands were at the drives nearly all the time (or no
  // drive had work all the time), their fixed latencies (flash access, completion, interrupt) are
  // what more commands in flight would cover.
  const moves = Math.max(1, Math.ceil(drives.length / 2));
  const share = drives.reduce((n, d) => n + d.commands, 0) / (r.depth * moves);
  const perDrive = [...drives].sort((a, b) => b.commands - a.commands).map((d) => `${d.device} ${d.commands.toFixed(1)}`);
  const idle = [...drives].sort((a, b) => a.idle - b.idle).map((d) => `${d.device} ${pct(d.idle)}`);
  // Drives in a move through a NIC wait for the NIC (for frames to write, or for relay slots it has
  // not sent yet), not for commands.
  const starved = drives.length > 0 && nics.length === 0 && mostWorking <= 1 - STARVED;
  const partly = best && relativeOf(best) >= PARTLY ? `${best.name} full ${pct(best.full)} of the time, so more commands help only in part` : '';
  if (share >= COMMANDS_BIND || starved) {
    const one = r.depth === 1 ? ' (one command at a time: each chunk is read, then written, with no overlap)' : '';
    const where = starved
      ? `left every drive without a command part of the time (${idle.join(', ')})`
      : `were at the drives ${pct(share)} of the time (${perDrive.join(', ')} on average)`;
    const windows = partly ? `; ${partly}` : ': more would cover their fixed latencies (flash access, completion, interrupt)';
    return { ...base, binds: 'commands', explanation: `commands-in-flight bound: ${r.depth * moves} in flight${one} ${where}${windows}; ${busiest}`, name: `${r.depth * moves} commands in flight` };
  }
  // A NIC's read tags, the fullest window, come with the numbers that make its rate (Little's law).
  const little = (d: DriveWindows) => ` (${d.tagsInUse.toFixed(1)} tags x ${d.bytesPerRead.toFixed(0)} B over a ${us(d.readRoundTripPs)} mean read round trip = ${mbps(d.readMBps)})`;
  const fullest = best && best.full > 0 ? `; fullest window: ${best.name}, ${pct(best.full)} of the time${nics.includes(best.drive) && best.binds === 'read-tags' ? little(best.drive) : ''}` : '';
  const atDrives = drives.length > 0 ? `, and the commands in flight were at the drives ${pct(share)} of it (${perDrive.join(', ')} on average)` : '';
  return {
    ...base,
    binds: 'latency',
    explanation: `latency-bound: no resource or window was full most of the time${atDrives}${fullest}; ${busiest}`,
    name: `latency (${best && best.full > 0 ? `${best.name} full ${pct(best.full)}, ` : ''}${top.resource} ${pct(top.utilization)} busy)`,
  };
}
