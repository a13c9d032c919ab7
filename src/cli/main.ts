#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { DconnectError } from '../core/errors.js';
import { formatBytes, parseSize } from '../core/units.js';
import { runCopy, runMoves, type FidelityMode } from '../runtime/copy.js';
import type { Granularity } from '../runtime/moves.js';
import { METRICS, type Metric } from '../experiments/metrics.js';
import { listDevices } from '../runtime/devices.js';
import { DEFAULT_PRESET, loadTopology } from '../topology/load.js';
import { kindOf } from '../topology/device-registry.js';
import { applySettings, overridesOf } from '../topology/params.js';
import { FIDELITY_MODES, parseDeviceRange, parseFileEnd, parseMoveVia, parseSeed, parseVia } from './args.js';
import { fileCopyAction, lsAction } from './file-copy.js';
import { imageOf, saveOf } from './image-files.js';
import { capturedOn, formatCopy, formatMoves, table } from './format.js';
import { openCapture } from './capture-file.js';
import { checkOutputFile } from './output-paths.js';
import { withState } from './live-format.js';
import { completionScript, SHELLS } from './completion.js';
import { listLinks } from '../runtime/capture.js';
import { faultConnect, faultHelp, parseFault, parseMediaError, parseStoreFault } from '../runtime/faults.js';
import { progressBar } from './progress.js';
import { isNetEnd } from '../runtime/nic-moves.js';
import { nicCopyAction } from './nic-copy.js';
import { recordInto, viewOutputsOf, writeViewOutputs } from './trace-output.js';
import type { TraceRun } from '../runtime/trace-events.js';

// A closed stdout or stderr (dconnect status | head -1) ends the command quietly, not with an EPIPE stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}

const program = new Command();
program
  .name('dconnect')
  .description('Direct Connect (NEC ExpEther, 2012) as an executable model: direct SSD-to-SSD moves through a DC buffer in an Ethernet-attached I/O box')
  .version('0.1.0')
  .showHelpAfterError()
  // Usage errors (unknown option, bad choice, missing argument) exit 2 like every other bad input;
  // commander would exit 1. Subcommands inherit this.
  .exitOverride();

const topologyOption = () => new Option('--topology <preset|file>', 'topology preset name or YAML file').default(DEFAULT_PRESET);
const setOption = () =>
  new Option('--set <path=value>', 'change one topology parameter, repeatable, after --topology is loaded; paths as sweep --param: host.lanes=1  ssd.capacityBytes=64MiB  boxes.0.slots.1.serial=X  (a list or object in YAML flow syntax replaces it whole)').argParser(
    (v: string, acc: string[] | undefined) => [...(acc ?? []), v],
  );
/** --topology, then every --set (then `extra`, e.g. --host-lanes), validated together. */
function topologyOf(o: { topology: string; set?: string[] }, extra: { spec: string; shown: string }[] = []) {
  const { topology, settings } = applySettings(loadTopology(o.topology), [...(o.set ?? []), ...extra]);
  return { topology, overrides: overridesOf(settings) };
}
const stateOption = () => new Option('--state <dir>', 'the live fabric\'s state directory: node records, logs, drive files, jobs').default('.dconnect');
const shardOption = () =>
  new Option(
    '--shard <I/N>',
    'run only the I-th of N shares of the jobs (I counts from 1: 1/3, 2/3, 3/3; job k, from 0, is in share (k mod N) + 1) and write NAME.shard-I-of-N.json into --out instead of the figures; then `dconnect merge` them',
  );
const seedOption = () => new Option('--seed <n>', 'root seed of every random stream').default('1');
const granularityOption = () =>
  new Option('--granularity <g>', 'tlp: every TLP its own events, the reference; burst: the TLPs of one flow sent back to back travel as one burst (far fewer events; simulated time within a stated bound; implies --fidelity full)').choices(['tlp', 'burst']).default('tlp');
/** Burst granularity implies the full fidelity unless --fidelity was given (then runMoves refuses fast with burst). */
const burstImpliesFull = (o: { granularity: Granularity; fidelity: FidelityMode }, cmd: Command) => {
  if (o.granularity === 'burst' && cmd.getOptionValueSource('fidelity') !== 'cli') o.fidelity = 'full';
};
const fidelityOption = () =>
  new Option('--fidelity <mode>', 'fast: same answers from far fewer events (exact where the state repeats, else with a stated 99.7% interval); full: every TLP simulated, the reference')
    .choices(FIDELITY_MODES)
    .default('fast');

program
  .command('devices')
  .description('list the devices the host finds on the fabric')
  .addOption(topologyOption())
  .addOption(setOption())
  .addOption(seedOption())
  .option('--host <name>', "which host's view, in a topology of several (extraHosts): each enumerates only its ExpEther group's devices (default: the first, 'host')")
  .option('--live', 'ask the running live fabric (dconnect up) instead of simulating one')
  .addOption(stateOption())
  .option('--json', 'one JSON object on stdout')
  .action(async (o: { topology: string; set?: string[]; seed: string; json?: boolean; live?: boolean; state: string; host?: string }) => {
    if (o.live) {
      const { liveDevicesAction } = await import('./live.js');
      return liveDevicesAction(o);
    }
    const devices = listDevices(topologyOf(o).topology, parseSeed(o.seed), o.host);
    if (o.json) {
      process.stdout.write(JSON.stringify({ devices }) + '\n');
      return;
    }
    const rows = devices.map((d) => {
      const c = kindOf(d.kind).columns(d);
      return [d.name, d.kind, `${d.box}/slot${d.slot}`, d.bdf, c.capacity, `0x${d.bar0.toString(16)}`, c.id];
    });
    process.stdout.write(table(['NAME', 'KIND', 'BOX/SLOT', 'BDF', 'CAPACITY', 'BAR0', 'SERIAL'], rows) + '\n');
  });

program
  .command('copy')
  .description('copy a range from one SSD to another, directly through the DC buffer (default) or through host memory; more pairs (sda sdb sdc sdd) move concurrently; net:CLIENT at either end moves through a NIC (sda net:client0, net:client0 sdb, net:client0 net:client1)')
  .argument('[src]', "source drive, by name or serial, and optional offset: sda, sda:1GiB, or the serial 'dconnect devices' shows")
  .argument('[dst]', 'destination drive (name or serial) and optional offset: sdb or sdb:4KiB')
  .argument('[more...]', 'further source/destination pairs, moved at the same time: sdc sdd ...')
  .option('--length <size>', 'bytes to move, with units: 512, 4KiB, 256MiB, 1GiB (required)')
  .option('--depth <n>', 'I/O commands in flight over source and destination together (the paper: 3)')
  .option('--chunk <size>', 'bytes per I/O command (default: the topology\'s copy.chunkBytes)')
  .addOption(new Option('--via <path>', "dc-buffer: direct (Direct Connect), through the nearest DC buffer; cmb: direct, through the nearest SSD's Controller Memory Buffer (the destination's; --set ssd.cmbSizeBytes=32MiB gives the SSDs one); nearest: direct, through the nearest relay of either; host: conventional, through host memory; both: the direct move, then the conventional one (simulation). Moves through a NIC, file copies and --live take dc-buffer or host").default('dc-buffer'))
  .option('--host-lanes <n>', 'lanes of the server-side bridge\'s PCIe link (the paper: 8 or 1); an alias of --set host.lanes=N, applied after the --sets')
  .addOption(fidelityOption())
  .addOption(granularityOption())
  .option('--burst-bytes <size>', 'largest burst at --granularity burst (4KiB..1MiB; default 64KiB)')
  .addOption(seedOption())
  .addOption(topologyOption())
  .addOption(setOption())
  .option('--fault <spec>', faultHelp(false), (v: string, prev: string[] = []) => [...prev, v])
  .option('--capture <links>', "record the frames on these links (comma-separated; 'dconnect links' lists them, the host's cable is 'host') into --pcap")
  .option('--pcap <file>', 'the capture file: pcap, nanosecond timestamps in simulated time, real frame bytes (Wireshark, tshark)')
  .option('--trace-events <file>', 'write a Chrome/Perfetto trace-event JSON of the move (link utilisation, DC buffer, windows, credits, NVMe commands, chunk flows, retransmissions; open at ui.perfetto.dev); simulation: at --fidelity full')
  .option('--trace-window <time>', 'the first sampling window of --trace-events/--timeline, e.g. 10us (default: sized to the run; doubled past 4096 windows)')
  .option('--timeline <file>', 'draw per-link utilisation against simulated time into FILE.png or FILE.svg (with --via both: direct and conventional side by side)')
  .option('--host <name>', "the host that runs the move, in a topology of several (extraHosts); its devices are its ExpEther group's (default: the first, 'host')")
  .option('--live', 'copy on the running live fabric (dconnect up) as a job: real processes, sockets and files; verified by reading both ranges (or, for files, both files) back')
  .option('--no-verify', 'live: skip reading both ranges back at the end (for speed runs; the copy is then reported unverified)')
  .option('--resume <job>', 'finish a live job that failed or was cancelled, from its last flushed byte (implies --live)')
  .addOption(stateOption())
  .option('--image <dev=file>', 'load a raw image (mkfs.ext4 -d TREE img 64M) into a drive before anything runs (a source range keeps its bytes instead of seeded data); repeatable', (v: string, prev: string[] = []) => [...prev, v])
  .option('--save <dev=file>', 'write a drive out to a sparse file (0600) afterwards, e.g. for e2fsck -fn; repeatable', (v: string, prev: string[] = []) => [...prev, v])
  .option('-r, --recursive', 'file copies: copy a directory tree (sda:/data sdb:/backup)')
  .option('--force', 'file copies: replace an existing destination file')
  .option('--json', 'one JSON object on stdout')
  .action(async (srcArg: string | undefined, dstArg: string | undefined, more: string[], o: { image?: string[]; save?: string[]; recursive?: boolean; force?: boolean; length?: string; depth?: string; chunk?: string; via: string; hostLanes?: string; fidelity: FidelityMode; seed: string; topology: string; set?: string[]; fault?: string[]; capture?: string; pcap?: string; json?: boolean; live?: boolean; resume?: string; state: string; verify: boolean; host?: string; granularity: Granularity; burstBytes?: string; traceEvents?: string; traceWindow?: string; timeline?: string }, cmd: Command) => {
    if (o.resume !== undefined) {
      if (srcArg !== undefined) throw new DconnectError('BAD_OPTION', '--resume takes no devices: the job has them', `dconnect copy --resume ${o.resume} --live`);
      const views = viewOutputsOf(o, false);
      const { liveCopyAction } = await import('./live.js');
      // --no-verify given on the resume changes the job's choice; otherwise the job keeps its own.
      return liveCopyAction({ resume: o.resume, ...(cmd.getOptionValueSource('verify') === 'cli' ? { verify: o.verify } : {}) }, { ...o, ...(views ? { views } : {}) });
    }
    if (srcArg === undefined || dstArg === undefined) throw new DconnectError('BAD_OPTION', 'copy needs a source and a destination', 'e.g. dconnect copy sda sdb --length 256MiB');
    // A path after the device (sda:/data/big.bin) means a file on its file system (src/cli/file-copy.ts).
    if ((parseFileEnd(srcArg) || parseFileEnd(dstArg)) && o.live) {
      const { liveFileCopyRequest } = await import('./file-copy.js');
      const req = liveFileCopyRequest(srcArg, dstArg, more, o);
      const { liveCopyAction } = await import('./live.js');
      return liveCopyAction(req, o);
    }
    if (parseFileEnd(srcArg) || parseFileEnd(dstArg)) return fileCopyAction(topologyOf(o, o.hostLanes === undefined ? [] : [{ spec: `host.lanes=${o.hostLanes}`, shown: `--host-lanes ${o.hostLanes}` }]).topology, srcArg, dstArg, more, o);
    for (const [flag, v] of [['-r', o.recursive], ['--force', o.force]] as const) {
      if (v !== undefined) throw new DconnectError('BAD_OPTION', `${flag} applies to file copies (sda:/path sdb:/path)`, 'name files: dconnect copy sda:/data/big.bin sdb:/backup/big.bin --image sda=src.ext4 --image sdb=dst.ext4');
    }
    if (o.length === undefined) throw new DconnectError('BAD_OPTION', 'copy needs --length', 'e.g. --length 256MiB');
    if (o.live) {
      if (isNetEnd(srcArg) || isNetEnd(dstArg)) throw new DconnectError('BAD_OPTION', 'moves through a NIC run in simulation only: a live fabric moves between drives', `drop --live: dconnect copy ${srcArg} ${dstArg} --length ${o.length} --topology paper-2012-nic`);
      if (more.length > 0) throw new DconnectError('BAD_OPTION', '--live copies one pair per job', 'submit one copy per pair (they queue)');
      if ((o.capture === undefined) !== (o.pcap === undefined)) throw new DconnectError('BAD_OPTION', '--capture and --pcap go together', 'e.g. --capture host --pcap move.pcap');
      // A live capture is written by the host into <state>/captures/NAME: the request names a file, not a path.
      const capture = o.capture && o.pcap ? { links: o.capture.split(',').map((l) => l.trim()).filter((l) => l), name: o.pcap } : undefined;
      for (const [flag, v] of [['--fault', o.fault], ['--set', o.set], ['--host-lanes', o.hostLanes]] as const) {
        if (v !== undefined) throw new DconnectError('BAD_OPTION', `${flag} does not apply to a live copy: the fabric's settings are fixed at dconnect up`, `give it to dconnect up`);
      }
      const src = parseDeviceRange(srcArg, 'source');
      const dst = parseDeviceRange(dstArg, 'destination');
      const views = viewOutputsOf(o, false);
      const { liveCopyAction } = await import('./live.js');
      return liveCopyAction({ src: src.device, srcOffset: src.offset, dst: dst.device, dstOffset: dst.offset, lengthBytes: parseSize(o.length, '--length'), via: parseVia(o.via), ...(o.chunk ? { chunkBytes: parseSize(o.chunk, '--chunk') } : {}), ...(o.depth ? { depth: Number(o.depth) } : {}), verify: o.verify, ...(capture ? { capture } : {}) }, { ...o, ...(views ? { views } : {}) });
    }
    const { topology } = topologyOf(o, o.hostLanes === undefined ? [] : [{ spec: `host.lanes=${o.hostLanes}`, shown: `--host-lanes ${o.hostLanes}` }]);
    if ((isNetEnd(srcArg) || isNetEnd(dstArg)) && (o.traceEvents !== undefined || o.timeline !== undefined)) throw new DconnectError('BAD_OPTION', '--trace-events and --timeline record moves between drives; a move through a NIC is not traced yet', 'trace a drive move: dconnect copy sda sdb --length 64MiB --trace-events trace.json');
    if (isNetEnd(srcArg) || isNetEnd(dstArg)) return nicCopyAction(topology, srcArg, dstArg, more, { ...o, fidelityGiven: cmd.getOptionValueSource('fidelity') === 'cli' });
    if (more.length % 2 !== 0) throw new DconnectError('BAD_OPTION', `${more.length + 2} devices given; moves need them in pairs`, 'name a destination for every source: dconnect copy sda sdb sdc sdd');
    const args = [srcArg, dstArg, ...more];
    const pairs = Array.from({ length: args.length / 2 }, (_, i) => {
      const src = parseDeviceRange(args[2 * i], 'source');
      const dst = parseDeviceRange(args[2 * i + 1], 'destination');
      return { src: src.device, srcOffset: src.offset, dst: dst.device, dstOffset: dst.offset };
    });
    const lengthBytes = parseSize(o.length, '--length');
    const depth = o.depth === undefined ? undefined : Number(o.depth);
    if (depth !== undefined && !Number.isInteger(depth)) throw new DconnectError('BAD_OPTION', `--depth '${o.depth}' is not an integer`, 'use 1..64');
    const chunkBytes = o.chunk === undefined ? undefined : parseSize(o.chunk, '--chunk');
    const vias = o.via === 'both' ? (['dc-buffer', 'host'] as const) : [parseMoveVia(o.via)];
    const views = viewOutputsOf(o);
    const seed = parseSeed(o.seed);
    const storeFault = (o.fault ?? []).find((f) => parseStoreFault(f) !== null);
    if (storeFault) throw new DconnectError('BAD_OPTION', `--fault ${storeFault}: store faults break a live fabric's drive files; a simulated drive keeps its bytes in memory`, `give it to the live fabric: dconnect up --fault ${storeFault} (then dconnect copy ... --live); media-error=... fails blocks in simulation`);
    const mediaErrors = (o.fault ?? []).map(parseMediaError).filter((m) => m !== null);
    const cableFaults = (o.fault ?? []).filter((f) => parseMediaError(f) === null);
    const faults = cableFaults.length > 0 ? faultConnect(topology, cableFaults.map(parseFault), seed) : null;
    // Down windows are scheduled in time: the fast fidelity could jump over one, so they run per TLP.
    let fidelity: FidelityMode = faults?.hasDowns && o.fidelity === 'fast' ? 'full' : o.fidelity;
    // Burst granularity implies the full fidelity (the fast one's digests do not cover bursts); asked for both, runMoves refuses.
    if (o.granularity === 'burst' && cmd.getOptionValueSource('fidelity') !== 'cli') fidelity = 'full';
    const burst = o.granularity === 'burst' ? { granularity: o.granularity, ...(o.burstBytes ? { burstBytes: parseSize(o.burstBytes, '--burst-bytes') } : {}) } : {};
    if (fidelity !== o.fidelity && o.granularity !== 'burst') process.stderr.write('note: --fault down=... runs at --fidelity full (the fast fidelity could jump over the outage)\n');
    // A trace draws every chunk: the fast fidelity jumps over most of them.
    if (views && fidelity === 'fast') {
      if (cmd.getOptionValueSource('fidelity') === 'cli') throw new DconnectError('BAD_OPTION', '--trace-events and --timeline record the move at the full fidelity only (the fast one jumps over most chunks)', 'drop --fidelity fast');
      fidelity = 'full';
    }
    if (vias.length > 1 && (o.capture !== undefined || cableFaults.length > 0)) throw new DconnectError('BAD_OPTION', '--via both runs two moves; --capture and cable faults take one', 'run them one at a time: --via dc-buffer, then --via host');
    const traceRuns: TraceRun[] = [];
    const capture = openCapture(topology, o.capture, o.pcap, faults?.connect);
    // Raw images in and out (a range copy of a whole image is dd between drives); checked now, read after boot.
    const images = (o.image ?? []).map(imageOf);
    const saves = (o.save ?? []).map(saveOf);
    const both: Record<string, unknown> = {};
    for (const via of vias) {
      const label = vias.length > 1 ? (via === 'host' ? 'conventional' : 'direct') : '';
      let bar = progressBar(vias.length > 1 ? `copy (${label})` : 'copy', lengthBytes * pairs.length, 'bytes', { lines: true });
      // After the move, the verification (byte for byte) gets a bar of its own: on a long move it takes a while too.
      const onVerify = (d: number, total: number) => {
        if (d === 0) {
          bar.update(total);
          bar.stop();
          bar = progressBar('verify', total, 'bytes', { lines: true });
        }
        bar.update(d);
      };
      try {
        const traceRecording = views ? recordInto(traceRuns, label || (via === 'host' ? 'conventional' : 'direct'), topology, views, faults ? { faults: () => ({ ...faults.counts }) } : undefined) : undefined;
        const common = { topology, lengthBytes, depth, chunkBytes, via, seed, fidelity, images, saves, onProgress: (d: number) => bar.update(d), onVerify, connect: capture?.connect ?? faults?.connect, mediaErrors, onStart: faults?.start, ...(o.host ? { host: o.host } : {}), ...burst, ...(traceRecording ? { traceRecording } : {}) };
        // One pair keeps the single move's result shape; several report each move and the aggregate.
        const r = pairs.length === 1 ? runCopy({ ...common, ...pairs[0] }) : runMoves({ ...common, pairs });
        bar.update(lengthBytes * pairs.length); // done (and verified): the fast fidelity's jump reports no progress of its own
        bar.stop();
        if (o.json && vias.length > 1) both[label] = r;
        else if (o.json) process.stdout.write(JSON.stringify(r) + '\n');
        else process.stdout.write((label ? `${label}:\n` : '') + ('moves' in r ? formatMoves(r) : formatCopy(r)) + '\n');
        const verified = 'moves' in r ? r.aggregate.verified : r.verified;
        if (!verified) process.exitCode = 3;
        if (faults) {
          const f = faults.counts;
          process.stderr.write(`faults: ${f.lost} lost, ${f.down} lost while a link was down, ${f.corrupted} corrupted (dropped by the FCS), ${f.duplicated} duplicated, ${f.reordered} reordered, of ${f.frames} frames on faulty cables; ${faults.overflowDrops()} dropped by shrunk buffers\n`);
        }
        if (capture) {
          const c = capture.close();
          const f = r.fidelity;
          const jumped = f.totalChunks - f.detailedChunks;
          process.stderr.write(`captured ${c.frames} frames on ${capturedOn(c.perLink)} into ${c.path}${jumped > 0 ? ` (the ${jumped} chunks the fast fidelity jumped carry no frames: --fidelity full captures every one)` : ''}\n`);
        }
      } finally {
        bar.stop();
      }
    }
    if (o.json && vias.length > 1) process.stdout.write(JSON.stringify(both) + '\n');
    if (views) {
      const what = `${pairs.map((p) => `${p.src} -> ${p.dst}`).join(', ')}, ${o.length}, topology ${topology.name}, seed ${seed}`;
      for (const line of await writeViewOutputs(views, traceRuns, { command: 'copy', topology: topology.name, seed, lengthBytes, fidelity }, what)) process.stderr.write(line + '\n');
    }
  });

program
  .command('ls')
  .description("list a directory of a drive's ext4 file system (name, type, size, extents), read through the host's file system code over the fabric")
  .argument('<dev:/path>', 'a drive and a path: sda:/ or sda:/data')
  .option('--image <dev=file>', 'load a raw image into a drive first (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
  .addOption(topologyOption())
  .addOption(setOption())
  .addOption(seedOption())
  .option('--json', 'one JSON object on stdout')
  .action((target: string, o: { image?: string[]; topology: string; set?: string[]; seed: string; json?: boolean }) => lsAction(topologyOf(o).topology, target, o));

const liveFabricOptions = (c: Command) =>
  c
    .addOption(new Option('--pace <mode>', 'none: as fast as this machine goes; model: links and flash at their modelled rates, dilated (dilation and lag reported)').choices(['model', 'none']).default('none'))
    .option('--time-dilation <n|auto>', 'wall seconds per simulated second with --pace model (default auto: measured here)')
    .option('--hard-limit <ms>', 'stop a node with an error when an event runs this late (default: best effort, lag reported)')
    .addOption(seedOption())
    .option('--fault <spec>', faultHelp(true), (v: string, prev: string[] = []) => [...prev, v])
    .option('--control-tcp <host:port>', 'serve the control API on loopback TCP too (the Unix socket is always there)')
    .option('--peer-timeout <ms>', 'the host gives up on a box it waits on after this long without hearing from it (boxes send keepalives; slow progress is not silence); the job fails, resumable; default 5000')
    .option('--nbd <host:port>', 'serve the block devices over NBD on TCP too, e.g. 127.0.0.1:10809, with TLS-PSK required (keys: nbd.psk in the state directory); the Unix socket nbd.sock is always there')
    .option('--nbd-insecure', 'with --nbd: plain TCP, no TLS (anyone who can reach the port reads and writes every drive)')
    .option('--preallocate', "reserve each drive file's whole capacity on disk at its creation (fallocate), so a declared capacity is real and a full disk cannot fail a write later")
    .addOption(new Option('--granularity <g>', 'burst: the TLPs of one flow move as one burst (far fewer events; the default with --pace none unless --fault names a box\'s own cables); tlp: every TLP its own events (the default with --pace model)').choices(['tlp', 'burst']))
    .option('--burst-bytes <size>', 'largest burst with --granularity burst (4KiB..1MiB; default 64KiB)');

liveFabricOptions(
  program
    .command('up')
    .description('start a live fabric on this machine: the host and one process per box on loopback, SSDs in sparse files in the state directory; restarts nodes that stopped')
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(stateOption()),
)
  .option('--image <dev=file>', "seed a drive's file from a raw image at the fabric's first start (mkfs.ext4 -d TREE img 64M); refused if it does not fit or the drive already holds data; repeatable", (v: string, prev: string[] = []) => [...prev, v])
  .option('--json', 'one JSON object on stdout')
  .action(async (o: { image?: string[]; topology: string; set?: string[]; state: string; pace: string; timeDilation?: string; hardLimit?: string; seed: string; fault?: string[]; controlTcp?: string; nbd?: string; nbdInsecure?: boolean; preallocate?: boolean; peerTimeout?: string; granularity?: string; burstBytes?: string; json?: boolean }, cmd: Command) => {
    const { upAction } = await import('./live.js');
    const given = cmd.getOptionValueSource('topology') === 'cli' || (o.set?.length ?? 0) > 0;
    // A state directory keeps its fabric's topology; --topology/--set must agree with it when given.
    await upAction(topologyOf(o).topology, given, o);
  });

liveFabricOptions(
  program
    .command('node')
    .description('run one node of a live fabric in the foreground (for nodes on several machines); dconnect up runs them for you on one')
    .requiredOption('--name <node>', "which node: 'host' or a box's name (box0)")
    .addOption(topologyOption())
    .addOption(setOption())
    .addOption(stateOption())
    .option('--listen <host:port>', 'the UDP address to listen on (port 0: any free one)')
    .option('--peer <name=host:port>', "a box's address, for the host node (repeatable); default: from the state directory's node records", (v: string, prev: string[] = []) => [...prev, v])
    .option('--key-file <file>', "the fabric key (0600), for a node on another machine than the host: a copy of the host's <state>/fabric.key (scp it); default: <state>/fabric.key"),
).action(async (o: { keyFile?: string; name: string; topology: string; set?: string[]; state: string; listen?: string; peer?: string[]; peerTimeout?: string; pace: string; timeDilation?: string; hardLimit?: string; seed: string; fault?: string[]; controlTcp?: string; granularity?: string; burstBytes?: string }) => {
  const { nodeAction } = await import('./live.js');
  await nodeAction(topologyOf(o).topology, o);
});

program
  .command('status')
  .description('the live fabric: each node (role, pid, addresses), the host session and each job (state, bytes done)')
  .addOption(stateOption())
  .option('--json', 'one JSON object on stdout')
  .action(async (o: { state: string; json?: boolean }) => {
    const { statusAction } = await import('./live.js');
    await statusAction(o);
  });

program
  .command('down')
  .description('stop the live fabric\'s nodes cleanly (SIGTERM; SIGKILL after 10 s); drives and job records stay in the state directory')
  .addOption(stateOption())
  .option('--json', 'one JSON object on stdout')
  .action(async (o: { state: string; json?: boolean }) => {
    const { downAction } = await import('./live.js');
    await downAction(o);
  });

program
  .command('view')
  .description("the web view of a live fabric (served by the host's control API on its loopback TCP address: dconnect up --control-tcp 127.0.0.1:PORT): the topology, each cable coloured by its utilisation, bytes and job progress, a few times a second; prints the URL to open")
  .addOption(stateOption())
  .option('--replay <file>', 'instead, write a page that replays a trace-event file of a simulated run (copy --trace-events) with a time slider, into --out')
  .option('--out <file>', 'with --replay: the HTML page to write (it loads nothing from anywhere)')
  .option('--json', 'one JSON object on stdout')
  .action(async (o: { state: string; json?: boolean; replay?: string; out?: string }) => {
    const { viewAction } = await import('./view.js');
    await viewAction(o);
  });

program
  .command('links')
  .description("list the topology's links (cables) by the names --capture takes")
  .addOption(topologyOption())
  .addOption(setOption())
  .option('--json', 'one JSON object on stdout')
  .action((o: { topology: string; set?: string[]; json?: boolean }) => {
    const links = listLinks(topologyOf(o).topology);
    process.stdout.write(o.json ? JSON.stringify({ links }) + '\n' : links.join('\n') + '\n');
  });

program
  .command('repro')
  .description("regenerate the paper's Fig. 5 and Fig. 6 from the model, beside the paper's values; --only fig7 adds concurrent pairs, --only fig8 moves through a NIC, --only relays puts the relay in three places, --only files copies trees of files (all beyond the paper)")
  .option('--runs <n>', 'runs per Fig. 5 bar (they differ by seed)', '10')
  .option('--size <size>', 'bytes moved per run (the paper: 1 GB)', '1GiB')
  .option('--only <figures>', "the figures to run, comma-separated: fig5, fig6 (the paper's, the default), fig7 (concurrent pairs), fig8 (moves through a NIC, on paper-2012-nic), relays (Fig. 5's move with the relay in the DC buffer, the destination's CMB or host memory), files (trees of files 4 KiB and up, direct against conventional; all beyond the paper)")
  .option('--max-file-size <size>', 'the largest file of --only files: 4KiB..1GiB (default 64MiB; 1GiB takes minutes)')
  .option('--out <dir>', 'where to write each figure run (fig5 to fig8, relays, files) as .json/.svg/.png, and report.md', 'results')
  .option('--threads <n>', 'worker threads (default: one per core)')
  .addOption(fidelityOption())
  .addOption(topologyOption())
  .addOption(setOption())
  .addOption(shardOption())
  .addOption(granularityOption())
  .option('--trace-events <file>', "also write a Chrome/Perfetto trace-event JSON of the first move of each figure and mode, run again at --fidelity full (open at ui.perfetto.dev)")
  .option('--trace-window <time>', 'the first sampling window of --trace-events, e.g. 10us (default: sized to each move)')
  .option('--json', 'one JSON object on stdout (files are still written)')
  .action(async (o: { runs: string; size: string; only?: string; maxFileSize?: string; out: string; threads?: string; fidelity: FidelityMode; granularity: Granularity; topology: string; set?: string[]; shard?: string; json?: boolean; traceEvents?: string; traceWindow?: string }, cmd: Command) => {
    burstImpliesFull(o, cmd);
    const loaded = topologyOf(o);
    const { reproAction } = await import('./experiments.js');
    await reproAction(o, loaded);
  });

program
  .command('sweep')
  .description('run the preset across parameter values and chart a metric (what the paper could not measure)')
  .requiredOption('--param <path=values>', 'a parameter and its values, repeatable: host.lanes=1,2,4,8  depth=1..8  ssd.writeMBps=250,500,1000', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .addOption(new Option('--metric <name>', 'what to report').choices([...METRICS]).default('mbPerSec'))
  .addOption(new Option('--via <path>', 'dc-buffer (direct) or host (conventional)').default('dc-buffer'))
  .option('--size <size>', 'bytes moved per point', '64MiB')
  .addOption(seedOption())
  .option('--out <dir>', 'where to write sweep.json/.svg/.png', 'results')
  .option('--threads <n>', 'worker threads (default: one per core)')
  .addOption(fidelityOption())
  .addOption(topologyOption())
  .addOption(setOption())
  .addOption(shardOption())
  .addOption(granularityOption())
  .option('--json', 'one JSON object on stdout')
  .action(async (o: { param: string[]; metric: Metric; via: string; size: string; seed: string; out: string; threads?: string; fidelity: FidelityMode; granularity: Granularity; topology: string; set?: string[]; shard?: string; json?: boolean }, cmd: Command) => {
    burstImpliesFull(o, cmd);
    const loaded = topologyOf(o);
    const { sweepAction } = await import('./experiments.js');
    await sweepAction(o, loaded);
  });

program
  .command('merge')
  .description('combine the shard result files of a repro or sweep run with --shard I/N into the tables, charts and report one run writes')
  .argument('<files...>', 'every shard result file of one run: NAME.shard-I-of-N.json for I = 1..N')
  .option('--out <dir>', 'where to write what the run would have written (fig5/fig6 and report.md, or sweep)', 'results')
  .option('--json', 'one JSON object on stdout (files are still written)')
  .action(async (files: string[], o: { out: string; json?: boolean }) => {
    const { mergeAction } = await import('./experiments.js');
    await mergeAction(files, o);
  });

program
  .command('completion')
  .description('print a shell completion script for dconnect, generated from its commands: source <(dconnect completion bash), or for zsh source <(dconnect completion zsh)')
  .argument('<shell>', `the shell: ${SHELLS.join(' or ')}`)
  .action((shell: string) => {
    process.stdout.write(completionScript(program, shell));
  });

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // Commander has already printed its message (and help) for these.
  if (e instanceof CommanderError) process.exit(e.exitCode === 0 ? 0 : 2);
  if (e instanceof DconnectError) {
    process.stderr.write(`dconnect: error [${e.code}]: ${e.message}\n`);
    // A hint's commands carry the --state this command was given, so they work when pasted.
    const state = program.commands.find((c) => c.getOptionValueSource('state') === 'cli')?.opts().state as string | undefined;
    if (e.hint) process.stderr.write(`  hint: ${state === undefined ? e.hint : withState(e.hint, state)}\n`);
    process.exit(2);
  }
  throw e;
}
