/**
 * PCIe link arithmetic (PCIe Base Spec; constants as used by pcie-bench's pcie-model, Neugebauer et al.,
 * SIGCOMM 2018). Pure functions: the link model and the calibration document both use them.
 */
export type PcieGeneration = 1 | 2 | 3 | 4 | 5;
export type PcieLanes = 1 | 2 | 4 | 8 | 16;

export const PCIE_GENERATIONS: readonly PcieGeneration[] = [1, 2, 3, 4, 5];
export const PCIE_LANES: readonly PcieLanes[] = [1, 2, 4, 8, 16];

/** Raw signalling rate per lane in GT/s for each generation. */
const GT_PER_S: Record<PcieGeneration, number> = { 1: 2.5, 2: 5, 3: 8, 4: 16, 5: 32 };

/** Line-code efficiency: 8b/10b for Gen1-2, 128b/130b for Gen3-5. */
export function encodingEfficiency(gen: PcieGeneration): number {
  return gen <= 2 ? 8 / 10 : 128 / 130;
}

export function lineEncodingName(gen: PcieGeneration): '8b/10b' | '128b/130b' {
  return gen <= 2 ? '8b/10b' : '128b/130b';
}

/** Data bytes per second the link carries in one direction after line encoding. */
export function linkBytesPerSec(gen: PcieGeneration, lanes: PcieLanes): number {
  return (GT_PER_S[gen] * 1e9 * encodingEfficiency(gen) * lanes) / 8;
}

/** Per-TLP data-link and physical-layer bytes: STP/END framing 2 + sequence number 2 + LCRC 4. */
export const TLP_FRAMING_BYTES = 8;
/** An ACK, NAK or UpdateFC DLLP on the wire: 6 bytes plus 2 framing bytes. */
export const DLLP_BYTES = 8;
/** SKP ordered sets: about 4 bytes per 1538 bytes of link time (pcie-model's figure). */
export const SKP_OVERHEAD_FRACTION = 4 / 1538;

/**
 * ACK transmission latency limit in symbol times for 2.5 GT/s links (PCIe Base Spec 1.1 table 3-6;
 * rows MPS 128..4096, columns x1 x2 x4 x8 x16). The receiver acknowledges at this interval while
 * traffic flows, so one ACK DLLP covers this many symbol times of TLP traffic. Later generations use
 * tables with similar values; the Gen1 table is used for all, a deviation of a fraction of a percent
 * of link bandwidth.
 */
const ACK_LATENCY_SYMBOLS: Record<number, Record<PcieLanes, number>> = {
  128: { 1: 237, 2: 128, 4: 73, 8: 67, 16: 48 },
  256: { 1: 416, 2: 217, 4: 118, 8: 107, 16: 72 },
  512: { 1: 559, 2: 289, 4: 154, 8: 86, 16: 86 },
  1024: { 1: 1071, 2: 545, 4: 282, 8: 150, 16: 150 },
  2048: { 1: 2095, 2: 1057, 4: 538, 8: 278, 16: 278 },
  4096: { 1: 4143, 2: 2081, 4: 1050, 8: 534, 16: 534 },
};

/** Bytes of TLP traffic per ACK DLLP: the ACK latency (symbol times) times the lanes (bytes per symbol time). */
export function ackIntervalBytes(mpsBytes: number, lanes: PcieLanes): number {
  const row = ACK_LATENCY_SYMBOLS[mpsBytes];
  if (!row) throw new RangeError(`max payload size ${mpsBytes} B is not one of 128..4096`);
  return row[lanes] * lanes;
}

/** Valid max payload / max read request sizes. */
export const PCIE_SIZES = [128, 256, 512, 1024, 2048, 4096] as const;

/**
 * Effective DMA write bandwidth of a transfer (FACTS: pcie-model), bytes/s: the payload share of
 * TLP bytes, less ACK DLLP and SKP overhead. Used by docs and tests as the reference formula.
 */
export function effectiveWriteBytesPerSec(gen: PcieGeneration, lanes: PcieLanes, mpsBytes: number, sizeBytes: number, headerBytes = 12): number {
  const tlps = Math.ceil(sizeBytes / mpsBytes);
  const wire = sizeBytes + tlps * (headerBytes + TLP_FRAMING_BYTES);
  const raw = linkBytesPerSec(gen, lanes) * (1 - SKP_OVERHEAD_FRACTION);
  return (raw * sizeBytes) / wire;
}
