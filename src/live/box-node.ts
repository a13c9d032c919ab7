/**
 * A box node: one I/O box of the topology in its own process. Its drives are sparse files in the
 * state directory (kept across restarts); its cable to the host side is a UDP channel. It waits for the
 * host: every session the host starts has a new epoch, and the first datagram of a newer epoch makes
 * the box rebuild its part of the model from scratch (fresh bridges, controllers and DC buffer, the
 * same files), as a box that was power-cycled with its drives in it. So a host that restarts, or a box
 * that restarts, meets a peer in a known state.
 *
 * Liveness: the box sends the host a keepalive (udp-transport.ts) every KEEPALIVE_MS and at each new
 * epoch, carrying this process's incarnation, so the host tells a box that is busy or idle (alive), one
 * that stopped (silent) and one that restarted (a new incarnation) apart without watching data progress.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DconnectError } from '../core/errors.js';
import { captureConnect } from '../runtime/capture.js';
import { startControlServer, type ControlServer } from './control-http.js';
import { boxApi, route } from './control-api.js';
import { LiveCapture } from './live-capture.js';
import { linkOwners } from './placement.js';
import { NvmeSsd } from '../devices/nvme-ssd.js';
import { blockName } from '../runtime/boot.js';
import { FileStore } from './file-store.js';
import { TrackedStore } from './extent-map.js';
import { FaultyStore } from './store-faults.js';
import { buildNodeFabric, type NodeFabric } from './node-fabric.js';
import { RealtimeScheduler, type Pace } from './realtime-scheduler.js';
import { assertSocketPathFits, type StateDir } from './state-dir.js';
import { faultConnect, type FaultSpec, type StoreFault } from '../runtime/faults.js';
import type { Topology } from '../topology/schema.js';
import { UdpTransport } from './udp-transport.js';

export interface BoxNodeOptions {
  topology: Topology;
  name: string;
  state: StateDir;
  seed: number;
  pace: Pace;
  /** Burst granularity's largest burst, bytes (0: per TLP): the fabric's setting. */
  burstBytes: number;
  dilation: number;
  listen: { host: string; port: number };
  /** The fabric key (udp-transport.ts UdpTransportOptions.key). */
  key: Uint8Array | null;
  faults: FaultSpec[];
  /** `--fault media-error=sdb:LBA`: blocks whose reads fail, by the host's device names (SSDs named in slot order, as boot names them). */
  mediaErrors?: { device: string; lba: number; op?: 'read' | 'write' }[];
  /** `--fault store-error=...`, `disk-full=...`: the drive files fail as a failing file system would (store-faults.ts). */
  storeFaults?: StoreFault[];
  /** `up --preallocate`: a drive file made here is reserved whole on disk (FileStore.reserve). */
  preallocate?: boolean;
  log: (line: string) => void;
}

export interface RunningBox {
  transport: UdpTransport;
  /** The box's control socket (captures the host asks for). */
  control: ControlServer;
  /** What the box reports in its node record: its scheduler's lag (pace model), the faults on its own cables, its transport's counters (authFailures, replays). */
  report(): { lag: { events: number; maxMs: number; p99Ms: number } | null; faults: Record<string, number> | null; transport: Record<string, number> };
  epoch(): number;
  /** The current part of the model (replaced at each new epoch). */
  part(): NodeFabric;
  stop(): Promise<void>;
}

/** How often a box tells the host it is alive, wall ms: well under the smallest --peer-timeout (100 ms is the floor; 5000 the default). */
export const KEEPALIVE_MS = 50;

export async function runBoxNode(o: BoxNodeOptions): Promise<RunningBox> {
  /** This process's incarnation: a restarted box has another (the host then knows it forgot the session). */
  const incarnation = randomBytes(4).readUInt32BE(0);
  // Each drive's file, with the record of which ranges hold data (NBD's base:allocation asks: extent-map.ts).
  const stores = new Map<string, TrackedStore>();
  const faulty = new Map<string, FaultyStore<TrackedStore>>();
  // The host names SSDs in enumeration order, which is slot order across the boxes.
  const ssdSlots = o.topology.boxes.flatMap((b) => b.slots.map((sl, i) => ({ name: `${b.name}.slot${i}`, kind: sl.kind }))).filter((x) => x.kind === 'ssd');
  const deviceOfSlot = (slot: string): string | null => {
    const at = ssdSlots.findIndex((x) => x.name === slot);
    return at < 0 ? null : blockName(at);
  };
  const storeFor = (slot: string, capacityBytes: number) => {
    let s = stores.get(slot);
    if (!s) {
      const file = new FileStore(o.state.drivePath(slot), capacityBytes);
      if (o.preallocate) file.reserve();
      stores.set(slot, (s = new TrackedStore(file)));
      const mine = (o.storeFaults ?? []).filter((f) => f.device === deviceOfSlot(slot));
      if (mine.length > 0) faulty.set(slot, new FaultyStore(s, mine, o.topology.ssd.blockBytes));
    }
    // Called while build() lays out a session: unpaced, a flush completes into that session's scheduler (paced, it blocks: file-store.ts).
    const sched = scheduler!;
    s.enter = o.pace === 'none' ? (fn) => sched.inject(fn) : null;
    return faulty.get(slot) ?? s;
  };
  let scheduler: RealtimeScheduler | null = null;
  let part: NodeFabric | null = null;
  let failed: Error | null = null;
  let localFaults: ReturnType<typeof faultConnect> | null = null;
  /** The capture the host asked for (POST /capture on this box's control socket), if one runs. */
  let capture: LiveCapture | null = null;
  const transport = await UdpTransport.open({
    node: o.name,
    bind: o.listen,
    epoch: 0,
    role: 'box',
    key: o.key,
    faults: o.faults,
    seed: o.seed,
    onNewEpoch: (epoch) => {
      o.log(`session ${epoch}: the host started a new session; rebuilding ${o.name}'s model (drives kept)`);
      build();
      keepalive(); // at once: the host learns this incarnation before any frame of the new session
    },
  });
  const keepalive = (): void => transport.sendKeepalive(incarnation, failed ? 1 : 0);
  const keepaliveTimer = setInterval(keepalive, KEEPALIVE_MS);
  const ownLinks = [...linkOwners(o.topology)].filter(([, n]) => n === o.name).map(([l]) => l);
  const build = (): void => {
    scheduler?.stop();
    transport.detachAll();
    failed = null;
    const s = new RealtimeScheduler({ dilation: o.dilation, pace: o.pace });
    scheduler = s;
    // Faults on the box's own cables (slot cables, its switches) are the simulator's: seeded per cable,
    // down windows counted from this session's start.
    // Unpaced, an outage is timed on the wall clock from this session's start (simulated time stands
    // still while the box waits); paced, on the simulated clock, as in simulation.
    const wallStartMs = performance.now();
    const local = o.faults.length > 0 ? faultConnect(o.topology, o.faults, o.seed, o.pace === 'none' ? () => Math.round((performance.now() - wallStartMs) * 1e9) : undefined) : null;
    // Every own cable is tapped at its sender for live captures (one test per frame while none runs).
    const tapped = captureConnect(o.topology, ownLinks, (link, _ps, frame) => capture?.tap(link, frame), local?.connect, () => capture !== null);
    part = buildNodeFabric(o.topology, { node: o.name, seed: o.seed, scheduler: s, transport, storeFor, local: tapped, burstBytes: o.burstBytes });
    localFaults = local;
    for (const m of o.mediaErrors ?? []) {
      const at = ssdSlots.findIndex((_, i) => blockName(i) === m.device);
      const slot = at < 0 ? undefined : part.fabric.slots.find((x) => `${x.box}.slot${x.slot}` === ssdSlots[at].name);
      if (slot && slot.box === o.name && slot.device instanceof NvmeSsd) (m.op === 'write' ? slot.device.badWriteBlocks : slot.device.badBlocks).add(m.lba);
    }
    s.start((e) => {
      failed = e;
      o.log(`error: the model stopped: ${e.message}`);
    });
  };
  build();
  const control = await startControlServer({
    socketPath: assertSocketPathFits(join(o.state.root, `${o.name}.sock`)),
    routes: [
      // This box's part of the counters (fabric-counters.ts merges every node's for GET /counters on the host).
      route(boxApi.counters, () => ({ trace: part?.fabric.trace.snapshot() ?? {}, gauges: part?.fabric.trace.gauges() ?? {}, simulatedSeconds: (scheduler?.now() ?? 0) / 1e12 })),
      route(boxApi.capture, ({ body }) => {
        for (const l of body.links) if (!ownLinks.includes(l)) throw new DconnectError('BAD_REQUEST', `${o.name} does not carry link ${l}; its own: ${ownLinks.join(', ')}`);
        if (capture) throw new DconnectError('CONFLICT', `${o.name} is already capturing into ${capture.path}`);
        capture = new LiveCapture(o.state.capturePath(body.name), body.links);
        return { capturing: body.links, path: capture.path };
      }),
      // What the host's NBD BLOCK_STATUS reports of a drive's range.
      route(boxApi.extents, ({ body }) => {
        const store = stores.get(body.drive);
        if (!store) throw new DconnectError('BAD_REQUEST', `extents needs { drive, offset, length } naming a drive of ${o.name}: ${[...stores.keys()].join(', ')}`);
        if (body.length <= 0 || body.offset + body.length > store.sizeBytes) {
          throw new DconnectError('BAD_REQUEST', `extents of ${body.length} bytes at ${body.offset}: not a range of the drive's ${store.sizeBytes} bytes`);
        }
        return { extents: store.extents(body.offset, body.length) };
      }),
      route(boxApi.captureStop, () => {
        const c = capture;
        capture = null;
        return c ? c.close() : { frames: 0, path: null };
      }),
    ],
  });
  // Every drive of the box is opened now (the builder asked for each), so a bad file fails at start.
  o.log(`${o.name}: ${stores.size} drive file(s) in ${o.state.root}/drives; listening on udp ${transport.address().host}:${transport.address().port}`);
  return {
    transport,
    control,
    report: () => ({ lag: scheduler?.lagSummary() ?? null, faults: localFaults ? { ...localFaults.report() } : null, transport: { ...transport.counters } }),
    epoch: () => transport.epoch,
    part: () => {
      if (failed) throw failed;
      return part!;
    },
    stop: async () => {
      clearInterval(keepaliveTimer);
      capture?.close();
      await control.close();
      scheduler?.stop();
      transport.detachAll();
      await transport.close();
      for (const s of stores.values()) s.close(); // durable first (FileStore.close)
    },
  };
}
