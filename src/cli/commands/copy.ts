import { Option, type Command } from 'commander';
import { DconnectError } from '../../core/errors.js';
import { isNetEnd } from '../../runtime/nic-moves.js';
import { parseFileEnd } from '../args.js';
import { CliCommand } from '../command.js';
import { fileCopyAction, liveFileCopyRequest } from '../file-copy.js';
import type { Io } from '../io.js';
import { nicCopyAction } from '../nic-copy.js';
import { faultOption, fidelityOption, granularityOption, imageOption, jsonOption, repeatable, seedOption, setOption, stateOption, topologyOf, topologyOption, type JsonOptions, type RunModeOptions, type SeedOptions, type StateOptions, type TopologyOptions } from '../options.js';
import { liveRangeRequest, rangeCopyAction } from '../range-copy.js';
import { viewOutputsOf } from '../trace-output.js';

export interface CopyOptions extends TopologyOptions, SeedOptions, StateOptions, JsonOptions, RunModeOptions {
  length?: string;
  depth?: string;
  chunk?: string;
  via: string;
  hostLanes?: string;
  burstBytes?: string;
  fault?: string[];
  capture?: string;
  pcap?: string;
  traceEvents?: string;
  traceWindow?: string;
  timeline?: string;
  host?: string;
  live?: boolean;
  verify: boolean;
  resume?: string;
  image?: string[];
  save?: string[];
  recursive?: boolean;
  force?: boolean;
}

/**
 * What `copy` does, chosen by its ends and --live/--resume: finish a live job; copy files
 * (`DEV:/PATH` ends, file-copy.ts) live or simulated; copy a range live; move through a NIC
 * (`net:CLIENT` ends, nic-copy.ts); or move ranges between drives (range-copy.ts).
 */
export type CopyPlan =
  | { mode: 'resume'; job: string }
  | { mode: 'live-files' | 'files'; src: string; dst: string; more: string[] }
  | { mode: 'live-range' | 'nic' | 'ranges'; src: string; dst: string; more: string[]; length: string };

/**
 * The refusals of `copy` that depend on the values given (its ends, --via ...), in the order they are
 * made; those that depend only on which flags were given are declared on the command (copyCommand).
 */
export function checkCopy(src: string | undefined, dst: string | undefined, more: string[], o: CopyOptions): CopyPlan {
  if (o.resume !== undefined) {
    if (src !== undefined) throw new DconnectError('BAD_OPTION', '--resume takes no devices: the job has them', `dconnect copy --resume ${o.resume} --live`);
    return { mode: 'resume', job: o.resume };
  }
  if (src === undefined || dst === undefined) throw new DconnectError('BAD_OPTION', 'copy needs a source and a destination', 'e.g. dconnect copy sda sdb --length 256MiB');
  // A path after the device (sda:/data/big.bin) means a file on its file system (src/cli/file-copy.ts).
  if (parseFileEnd(src) || parseFileEnd(dst)) return { mode: o.live ? 'live-files' : 'files', src, dst, more };
  for (const [flag, v] of [['-r', o.recursive], ['--force', o.force]] as const) {
    if (v !== undefined) throw new DconnectError('BAD_OPTION', `${flag} applies to file copies (sda:/path sdb:/path)`, 'name files: dconnect copy sda:/data/big.bin sdb:/backup/big.bin --image sda=src.ext4 --image sdb=dst.ext4');
  }
  if (o.length === undefined) throw new DconnectError('BAD_OPTION', 'copy needs --length', 'e.g. --length 256MiB');
  const nic = isNetEnd(src) || isNetEnd(dst);
  if (o.live) {
    if (nic) throw new DconnectError('BAD_OPTION', 'moves through a NIC run in simulation only: a live fabric moves between drives', `drop --live: dconnect copy ${src} ${dst} --length ${o.length} --topology paper-2012-nic`);
    if (more.length > 0) throw new DconnectError('BAD_OPTION', '--live copies one pair per job', 'submit one copy per pair (they queue)');
    return { mode: 'live-range', src, dst, more, length: o.length };
  }
  // Measured (2026-12-06, 8 MiB, paper-2012-nic): the NIC's frames make short bursts, and the moves
  // came out up to 9.6% off per-TLP's simulated time, beyond the stated bound. So they run per TLP.
  if (nic && o.granularity === 'burst') throw new DconnectError('BAD_OPTION', 'moves through a NIC run per TLP only: at burst granularity they are not yet within the stated bound of per-TLP', `drop --granularity burst: dconnect copy ${src} ${dst} --length ${o.length} --topology ${o.topology ?? 'paper-2012-nic'}`);
  if (nic && (o.traceEvents !== undefined || o.timeline !== undefined)) throw new DconnectError('BAD_OPTION', '--trace-events and --timeline record moves between drives; a move through a NIC is not traced yet', 'trace a drive move: dconnect copy sda sdb --length 64MiB --trace-events trace.json');
  return { mode: nic ? 'nic' : 'ranges', src, dst, more, length: o.length };
}

/** `--host-lanes N`: an alias of `--set host.lanes=N`, applied after the --sets. */
const hostLanesSetting = (o: CopyOptions) => (o.hostLanes === undefined ? [] : [{ spec: `host.lanes=${o.hostLanes}`, shown: `--host-lanes ${o.hostLanes}` }]);

async function copyAction(io: Io, plan: CopyPlan, o: CopyOptions, cmd: Command): Promise<void> {
  const fidelityGiven = cmd.getOptionValueSource('fidelity') === 'cli';
  switch (plan.mode) {
    case 'resume': {
      const views = viewOutputsOf(o);
      const { liveCopyAction } = await import('../live.js');
      // --no-verify given on the resume changes the job's choice; otherwise the job keeps its own.
      return liveCopyAction({ resume: plan.job, ...(cmd.getOptionValueSource('verify') === 'cli' ? { verify: o.verify } : {}) }, { ...o, ...(views ? { views } : {}) });
    }
    case 'live-files': {
      const req = liveFileCopyRequest(plan.src, plan.dst, plan.more, o);
      const { liveCopyAction } = await import('../live.js');
      return liveCopyAction(req, o);
    }
    case 'files':
      return fileCopyAction(topologyOf(o, hostLanesSetting(o)).topology, plan.src, plan.dst, plan.more, o);
    case 'live-range': {
      const { req, views } = liveRangeRequest(plan.src, plan.dst, { ...o, length: plan.length });
      const { liveCopyAction } = await import('../live.js');
      return liveCopyAction(req, { ...o, ...(views ? { views } : {}) });
    }
    case 'nic':
      return nicCopyAction(topologyOf(o, hostLanesSetting(o)).topology, plan.src, plan.dst, plan.more, { ...o, fidelityGiven });
    case 'ranges':
      return rangeCopyAction(io, topologyOf(o, hostLanesSetting(o)).topology, [plan.src, plan.dst, ...plan.more], { ...o, length: plan.length }, fidelityGiven);
  }
}

/** A live fabric's settings are fixed at `dconnect up`: what a live copy refuses, and what to do instead. */
const NOT_LIVE = {
  fault: "a live fabric's faults are fixed at dconnect up: give --fault to dconnect up",
  set: "a live fabric's settings are fixed at dconnect up: give --set to dconnect up",
  hostLanes: "a live fabric's settings are fixed at dconnect up: give it --set host.lanes=N",
  image: 'seed the drives when the fabric first starts: dconnect up --image sda=src.ext4',
  save: 'the live drives are files already: after dconnect down, e2fsck -fn <state>/drives/<slot>.img',
  timeline: 'the timeline is drawn from a simulated copy: drop --timeline here (--trace-events records a live job), or run the copy without --live',
};

export function copyCommand(io: Io): CliCommand {
  return new CliCommand('copy')
    .description('copy a range from one SSD to another, directly through the DC buffer (default) or through host memory; more pairs (sda sdb sdc sdd) move concurrently; net:CLIENT at either end moves through a NIC (sda net:client0, net:client0 sdb, net:client0 net:client1)')
    .argument('[src]', "source drive, by name or serial, and optional offset: sda, sda:1GiB, or the serial 'dconnect devices' shows")
    .argument('[dst]', 'destination drive (name or serial) and optional offset: sdb or sdb:4KiB')
    .argument('[more...]', 'further source/destination pairs, moved at the same time: sdc sdd ...')
    .option('--length <size>', 'bytes to move, with units: 512, 4KiB, 256MiB, 1GiB (required)')
    .option('--depth <n>', 'I/O commands in flight over source and destination together (the paper: 3)')
    .option('--chunk <size>', 'bytes per I/O command (default: the topology\'s copy.chunkBytes)')
    .addOption(new Option('--via <path>', "dc-buffer: direct (Direct Connect), through the nearest DC buffer; cmb: direct, through the nearest SSD's Controller Memory Buffer (the destination's; --set ssd.cmbSizeBytes=32MiB gives the SSDs one); nearest: direct, through the nearest relay of either; host: conventional, through host memory; both: the direct move, then the conventional one (simulated copies between drives)").default('dc-buffer'))
    .option('--host-lanes <n>', 'lanes of the server-side bridge\'s PCIe link (the paper: 8 or 1); an alias of --set host.lanes=N, applied after the --sets')
    .addOption(fidelityOption())
    .addOption(granularityOption())
    .option('--burst-bytes <size>', 'largest burst at --granularity burst (4KiB..1MiB; default 64KiB)')
    .addOption(seedOption())
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(faultOption(false))
    .option('--capture <links>', "record the frames on these links (comma-separated; 'dconnect links' lists them, the host's cable is 'host') into --pcap")
    .option('--pcap <file>', 'the capture file: pcap, nanosecond timestamps in simulated time, real frame bytes (Wireshark, tshark)')
    .option('--trace-events <file>', 'write a Chrome/Perfetto trace-event JSON of the move (link utilisation, DC buffer, windows, credits, NVMe commands, chunk flows, retransmissions; open at ui.perfetto.dev); simulation: at --fidelity full')
    .option('--trace-window <time>', 'the first sampling window of --trace-events/--timeline, e.g. 10us (default: sized to the run; doubled past 4096 windows)')
    .option('--timeline <file>', 'draw per-link utilisation against simulated time into FILE.png or FILE.svg (with --via both: direct and conventional side by side); simulation only')
    .option('--host <name>', "the host that runs the move, in a topology of several (extraHosts); its devices are its ExpEther group's (default: the first, 'host')")
    .option('--live', "copy on the running live fabric (dconnect up) as a job: real processes, sockets and files; verified by reading both ranges (or, for files, both files) back; the fabric's settings (--fault, --set, --host-lanes) and drives (--image, --save) are dconnect up's")
    .option('--no-verify', 'live: skip reading both ranges back at the end (for speed runs; the copy is then reported unverified)')
    .addOption(new Option('--resume <job>', 'finish a live job that failed or was cancelled, from its last flushed byte (implies --live)').implies({ live: true }))
    .addOption(stateOption())
    .addOption(imageOption('load a raw image (mkfs.ext4 -d TREE img 64M) into a drive before anything runs (a source range keeps its bytes instead of seeded data); repeatable'))
    .option('--save <dev=file>', 'write a drive out to a sparse file (0600) afterwards, e.g. for e2fsck -fn; repeatable', repeatable)
    .option('-r, --recursive', 'file copies: copy a directory tree (sda:/data sdb:/backup)')
    .option('--force', 'file copies: replace an existing destination file')
    .addOption(jsonOption())
    .refuses('live', NOT_LIVE)
    .requires('capture', 'pcap', 'e.g. --capture host --pcap move.pcap (dconnect links lists the link names)')
    .requires('pcap', 'capture', 'e.g. --capture host --pcap move.pcap (dconnect links lists the link names)')
    .action((src: string | undefined, dst: string | undefined, more: string[], o: CopyOptions, cmd: Command) => copyAction(io, checkCopy(src, dst, more, o), o, cmd));
}
