import { wireBytes } from '../ethernet/frame.js';
import { EXPETHER_HEADER_BYTES } from '../expether/pdu.js';
import { linkBytesPerSec, TLP_FRAMING_BYTES, type PcieGeneration, type PcieLanes } from '../pcie/link-params.js';
import type { Topology } from '../topology/schema.js';

/**
 * Fig. 7's saturation points, predicted by hand from a topology's own parameters before anything
 * runs (docs/calibration.md, "Fig. 7: predicted saturation", derives each line): the aggregate
 * bandwidth each shared resource allows, and the pairs' own limit. The prediction is the smallest.
 * Bandwidth ceilings only: where the model lands below one, a window binds (the limit column says which).
 */

/** A TLP header for memory requests and completions at the 32-bit addresses enumeration assigns (3 DW). */
const HEADER_BYTES = 12;

export interface Ceiling {
  resource: string;
  /** Aggregate payload the resource carries at 100% busy, MB/s (10^6 B/s). */
  mbPerSec: number;
}

export interface Fig7Prediction {
  /** The smallest ceiling: the predicted aggregate. */
  mbPerSec: number;
  resource: string;
  ceilings: Ceiling[];
}

/** Ethernet wire bytes of one ExpEther frame carrying a TLP of `tlpBytes`. */
const frameWire = (tlpBytes: number) => wireBytes(EXPETHER_HEADER_BYTES + tlpBytes);

export function predictFig7(t: Topology, mode: 'direct' | 'conventional', hostLanes: number, pairs: number): Fig7Prediction {
  const mps = t.pcie.mpsBytes;
  const mrrs = t.pcie.mrrsBytes;
  const ethBytesPerSec = (t.ethernet.rateGbps * 1e9) / 8;
  // Per MPS of data: its write or completion, the read requests that asked for it (one per MRRS),
  // and one ExpEther acknowledgement per ackEveryFrames frames coming the other way.
  const ack = frameWire(0) / t.expether.ackEveryFrames;
  const mrdPerMps = (frameWire(HEADER_BYTES) * mps) / mrrs;
  const ceilings: Ceiling[] = [{ resource: `${pairs} source/destination pair${pairs === 1 ? '' : 's'} (flash ${Math.min(t.ssd.readMBps, t.ssd.writeMBps)} MB/s each)`, mbPerSec: pairs * Math.min(t.ssd.readMBps, t.ssd.writeMBps) }];
  if (mode === 'direct') {
    // Every byte enters the DC buffer once (source writes) and leaves once (destination reads).
    ceilings.push({ resource: "DC buffer's Ethernet port (writes in, read requests in)", mbPerSec: (ethBytesPerSec * mps) / (frameWire(HEADER_BYTES + mps) + mrdPerMps + ack) / 1e6 });
    const bl = t.dcBuffer.link;
    const tlp = (payload: number) => HEADER_BYTES + TLP_FRAMING_BYTES + payload;
    ceilings.push({ resource: `DC buffer's PCIe link (Gen${bl.generation} x${bl.lanes}, writes and read requests in)`, mbPerSec: (linkBytesPerSec(bl.generation as PcieGeneration, bl.lanes as PcieLanes) * mps) / (tlp(mps) + (tlp(0) * mps) / mrrs) / 1e6 });
    ceilings.push({ resource: `DC buffer's DDR (${t.dcBuffer.ddrMBps} MB/s, every byte written and read)`, mbPerSec: t.dcBuffer.ddrMBps / 2 });
  } else {
    // Every byte crosses the host link and the host-side bridge's Ethernet port twice: into host
    // memory as writes, out as completions of RCB bytes each (the root complex's completion size).
    const rcb = t.host.readCompletionBytes;
    const g = t.host.link.generation as PcieGeneration;
    const link = linkBytesPerSec(g, hostLanes as PcieLanes);
    ceilings.push({ resource: `host link Gen${g} x${hostLanes} downstream (completions of ${rcb} B)`, mbPerSec: (link * rcb) / (HEADER_BYTES + TLP_FRAMING_BYTES + rcb) / 1e6 });
    ceilings.push({ resource: `host link Gen${g} x${hostLanes} upstream (writes, read requests)`, mbPerSec: (link * mps) / (HEADER_BYTES + TLP_FRAMING_BYTES + mps + ((HEADER_BYTES + TLP_FRAMING_BYTES) * mps) / mrrs) / 1e6 });
    ceilings.push({ resource: `host-side bridge's Ethernet port out (completions of ${rcb} B, one per frame)`, mbPerSec: (ethBytesPerSec * rcb) / (frameWire(HEADER_BYTES + rcb) + (ack * rcb) / mps) / 1e6 });
  }
  const min = ceilings.reduce((a, b) => (b.mbPerSec < a.mbPerSec ? b : a));
  return { mbPerSec: min.mbPerSec, resource: min.resource, ceilings };
}
