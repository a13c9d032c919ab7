/**
 * A box node: one I/O box of the topology in its own process. Its drives are sparse files in the
 * state directory (kept across restarts); its cable to the host side is a UDP channel. It waits for the
 * host: every session the host starts has a new epoch, and the first datagram of a newer epoch makes
 * the box rebuild its part of the model from scratch (fresh bridges, controllers and DC buffer, the
 * same files), as a box that was power-cycled with its drives in it. So a host that restarts, or a box
 * that restarts, meets a peer in a known state.
 */
import { NvmeSsd } from '../devices/nvme-ssd.js';
import { blockName } from '../runtime/boot.js';
import { FileStore } from './file-store.js';
import { buildNodeFabric, type NodeFabric } from './node-fabric.js';
import { RealtimeScheduler, type Pace } from './realtime-scheduler.js';
import type { StateDir } from './state-dir.js';
import type { FaultSpec } from '../runtime/faults.js';
import type { Topology } from '../topology/schema.js';
import { UdpTransport } from './udp-transport.js';

export interface BoxNodeOptions {
  topology: Topology;
  name: string;
  state: StateDir;
  seed: number;
  pace: Pace;
  dilation: number;
  listen: { host: string; port: number };
  faults: FaultSpec[];
  /** `--fault media-error=sdb:LBA`: blocks whose reads fail, by the host's device names (SSDs named in slot order, as boot names them). */
  mediaErrors?: { device: string; lba: number; op?: 'read' | 'write' }[];
  log: (line: string) => void;
}

export interface RunningBox {
  transport: UdpTransport;
  epoch(): number;
  /** The current part of the model (replaced at each new epoch). */
  part(): NodeFabric;
  stop(): Promise<void>;
}

export async function runBoxNode(o: BoxNodeOptions): Promise<RunningBox> {
  const stores = new Map<string, FileStore>();
  const storeFor = (slot: string, capacityBytes: number) => {
    let s = stores.get(slot);
    if (!s) stores.set(slot, (s = new FileStore(o.state.drivePath(slot), capacityBytes)));
    return s;
  };
  let scheduler: RealtimeScheduler | null = null;
  let part: NodeFabric | null = null;
  let failed: Error | null = null;
  const transport = await UdpTransport.open({
    node: o.name,
    bind: o.listen,
    epoch: 0,
    role: 'box',
    faults: o.faults,
    seed: o.seed,
    onNewEpoch: (epoch) => {
      o.log(`session ${epoch}: the host started a new session; rebuilding ${o.name}'s model (drives kept)`);
      build();
    },
  });
  const build = (): void => {
    scheduler?.stop();
    transport.detachAll();
    failed = null;
    const s = new RealtimeScheduler({ dilation: o.dilation, pace: o.pace });
    scheduler = s;
    part = buildNodeFabric(o.topology, { node: o.name, seed: o.seed, scheduler: s, transport, storeFor });
    // The host names SSDs in enumeration order, which is slot order across the boxes.
    const ssdSlots = o.topology.boxes.flatMap((b) => b.slots.map((sl, i) => ({ name: `${b.name}.slot${i}`, kind: sl.kind }))).filter((x) => x.kind === 'ssd');
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
  // Every drive of the box is opened now (the builder asked for each), so a bad file fails at start.
  o.log(`${o.name}: ${stores.size} drive file(s) in ${o.state.root}/drives; listening on udp ${transport.address().host}:${transport.address().port}`);
  return {
    transport,
    epoch: () => transport.epoch,
    part: () => {
      if (failed) throw failed;
      return part!;
    },
    stop: async () => {
      scheduler?.stop();
      transport.detachAll();
      await transport.close();
      for (const s of stores.values()) {
        s.flush();
        s.close();
      }
    },
  };
}
