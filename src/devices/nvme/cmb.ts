/**
 * The Controller Memory Buffer registers (NVM Express 1.4 §3.1.11 CMBLOC, §3.1.12 CMBSZ, §3.1.20
 * CMBMSC; the CMB itself §4.7): a region of controller memory in one of the controller's BARs, which
 * the host may point PRPs at. Data a peer writes there by MWr and the controller then reads for a
 * write command never leaves the controller: what Linux's P2PDMA (`pci_p2pdma_add_resource` on the
 * nvme driver's CMB) and SPDK's `cmb_copy` use as a relay between two devices.
 */

/** CMBSZ capability bits (§3.1.12): submission queues, completion queues, PRP/SGL lists, read data, write data in the CMB. */
export const CMBSZ_SQS = 1 << 0;
export const CMBSZ_CQS = 1 << 1;
export const CMBSZ_LISTS = 1 << 2;
export const CMBSZ_RDS = 1 << 3;
export const CMBSZ_WDS = 1 << 4;

/** CMBMSC.CRE (bit 0): Capabilities Registers Enabled; CMBLOC and CMBSZ read 0 until the host sets it (§3.1.20). */
export const CMBMSC_CRE = 1 << 0;

/** CAP.CMBS (bit 57, bit 25 of CAP's upper dword): the controller supports the CMB and CMBMSC (§3.1.1). */
export const CAP_HI_CMBS = 1 << 25;

/** CMBSZ.SZU units (§3.1.12): 4 KiB, 64 KiB, 1 MiB, 16 MiB, 256 MiB, 4 GiB, 64 GiB. */
const SZU_BYTES = [4096, 65536, 1 << 20, 1 << 24, 2 ** 28, 2 ** 32, 2 ** 36];
/** CMBSZ.SZ is 20 bits (31:12). */
const SZ_MAX = 0xfffff;

export interface CmbFields {
  /** Size, bytes (a multiple of the unit SZU picks). */
  sizeBytes: number;
  /** Which BAR holds it (CMBLOC.BIR, 2:0) and where in it it starts, bytes (CMBLOC.OFST, 31:12, in SZU units). */
  bar: number;
  offsetBytes: number;
  /** CMBSZ's capability bits (CMBSZ_RDS | CMBSZ_WDS: data of reads and writes may be in it). */
  flags: number;
}

/** The smallest SZU whose unit divides the size and offset and whose SZ field holds the size. */
function unitOf(f: CmbFields): number {
  const u = SZU_BYTES.findIndex((b) => f.sizeBytes % b === 0 && f.offsetBytes % b === 0 && f.sizeBytes / b <= SZ_MAX);
  if (u < 0) throw new Error(`a CMB of ${f.sizeBytes} B at ${f.offsetBytes} cannot be described by CMBSZ`);
  return u;
}

/** CMBLOC and CMBSZ for a CMB (§3.1.11, §3.1.12). */
export function encodeCmb(f: CmbFields): { cmbloc: number; cmbsz: number } {
  const u = unitOf(f);
  const unit = SZU_BYTES[u];
  return {
    cmbloc: ((f.offsetBytes / unit) * 4096 + (f.bar & 7)) >>> 0,
    cmbsz: ((f.sizeBytes / unit) * 4096 + (u << 8) + (f.flags & 0x1f)) >>> 0,
  };
}

/** The CMB a controller's CMBLOC and CMBSZ describe; null when CMBSZ is 0 (no CMB). */
export function decodeCmb(cmbloc: number, cmbsz: number): CmbFields | null {
  if (cmbsz === 0) return null;
  const unit = SZU_BYTES[(cmbsz >>> 8) & 0xf] ?? 0;
  return { sizeBytes: (cmbsz >>> 12) * unit, bar: cmbloc & 7, offsetBytes: (cmbloc >>> 12) * unit, flags: cmbsz & 0x1f };
}
