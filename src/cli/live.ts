/**
 * The live commands: `up`, `node`, `status`, `down`, and `devices --live` / `copy --live` through the
 * host node's control API. Live code runs here and in src/live/, never in the model layers.
 */
import { deviceKinds } from '../topology/device-registry.js';
import { DconnectError } from '../core/errors.js';
import { formatBytes, formatSizeExact, parseSize } from '../core/units.js';
import { burstBytesOf } from '../runtime/moves.js';
import { captureFormat } from '../runtime/capture.js';
import { bufferSmallerThanBurst, isDriveFault, parseFault, parseMediaError, parseStoreFault } from '../runtime/faults.js';
import type { Topology } from '../topology/schema.js';
import { runBoxNode } from '../live/box-node.js';
import { hostClient } from '../live/control-client.js';
import type { JobRequestBody, JobView } from '../live/control-api.js';
import { autoDilation } from '../live/dilation.js';
import { runHostNode } from '../live/host-node.js';
import { checkNode, crossingLinks, nodesOf } from '../live/placement.js';
import { PACES, type Pace } from '../live/realtime-scheduler.js';
import { readKeyFile, StateDir } from '../live/state-dir.js';
import { down, nodeStatuses, readSettings, settingsPath, up, writeSettings, type FabricSettings } from '../live/supervisor.js';
import { assertTcpFree } from '../live/port-probe.js';
import { rmSync } from 'node:fs';
import { seedDriveFiles } from './image-files.js';
import { progressBar } from './progress.js';
import { LIVE_WINDOW_MS, LiveTraceRecorder } from './live-trace.js';
import { writeViewOutputs, type ViewOutputs } from './trace-output.js';
import { granularityText, liveDevicesText, stateArg, statusText, withState } from './live-format.js';

/** A kind whose devices a copy can name (an endpoint or a relay; a NIC's moves are simulated only): what `up` lists. */
const offersTheDcCommand = (kind: string): boolean => (deviceKinds.find((k) => k.kind === kind)?.capabilities.length ?? 0) > 0;

export interface LiveFabricOptions {
  state: string;
  pace?: string;
  timeDilation?: string;
  hardLimit?: string;
  seed: string;
  fault?: string[];
  listenHost?: string;
  controlTcp?: string;
  nbd?: string;
  nbdInsecure?: boolean;
  preallocate?: boolean;
  peerTimeout?: string;
  granularity?: string;
  burstBytes?: string;
}

/** HOST:PORT -> address; `what` names the option. */
export function parseAddress(text: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new DconnectError('BAD_OPTION', `${what} '${text}' is not HOST:PORT`, `e.g. ${what} 127.0.0.1:7000 (port 0: any free port)`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** Unpaced by default: a live fabric is for moving bytes at this machine's speed; `--pace model` dilates (its dilation and lag are reported). */
function paceOf(text: string | undefined): Pace {
  const p = (text ?? 'none') as Pace;
  if (!PACES.includes(p)) throw new DconnectError('BAD_OPTION', `--pace '${text}' is not one of ${PACES.join(', ')}`, 'model: links and flash at their modelled rates, dilated; none: as fast as this machine goes');
  return p;
}

const DEFAULT_PEER_TIMEOUT_MS = 5000;
/** How often a box node rewrites its node record with its lag and faults, ms. */
const REPORT_MS = 1000;
function peerTimeoutOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PEER_TIMEOUT_MS;
  const ms = Number(text);
  if (!(ms >= 100 && ms <= 3_600_000)) throw new DconnectError('BAD_OPTION', `--peer-timeout '${text}' is not a number of ms from 100 to 3600000`, 'e.g. --peer-timeout 5000');
  return ms;
}

const say = (line: string) => process.stderr.write(line + '\n');


/** The settings of a fabric from `up`'s options (measuring the dilation when it is auto). */
function settingsOf(topology: Topology, o: LiveFabricOptions): FabricSettings {
  nodesOf(topology); // first: a topology live mode cannot run (several hosts) has no placement
  const pace = paceOf(o.pace);
  const hardLimitMs = o.hardLimit === undefined ? undefined : Number(o.hardLimit);
  if (hardLimitMs !== undefined && !(hardLimitMs > 0)) throw new DconnectError('BAD_OPTION', `--hard-limit '${o.hardLimit}' is not a positive number of ms`);
  const faults = o.fault ?? [];
  const crossing = crossingLinks(topology);
  for (const f of faults) {
    if (isDriveFault(f)) continue;
    const spec = parseFault(f); // refused now, not in a node's log
    if ((spec.downs.length > 0 || spec.bufferBytes !== null) && (spec.link === null || crossing.includes(spec.link))) {
      throw new DconnectError('BAD_OPTION', `--fault '${f}': live, down and buffer faults apply to a node's own cables (name one, e.g. @box0.slot2); the cables between processes (${crossing.join(', ')}) take loss, corrupt, dup and reorder`, 'e.g. dconnect up --fault down=50ms+20ms@box0.slot1 --fault loss=1%');
    }
  }
  let burstBytes = burstBytesOfLive(o, pace);
  const what = burstBytes > 0 ? bufferSmallerThanBurst(faults.filter((f) => !isDriveFault(f)).map(parseFault), burstBytes) : null;
  if (what) {
    if (o.granularity === 'burst') throw new DconnectError('BAD_OPTION', what, 'drop --granularity burst: the fabric then runs per TLP');
    say(`note: ${what}; this fabric runs per TLP`);
    burstBytes = 0;
  }
  const seed = Number(o.seed);
  const controlTcp = o.controlTcp ? parseAddress(o.controlTcp, '--control-tcp') : undefined;
  const nbdTcp = o.nbd ? parseAddress(o.nbd, '--nbd') : undefined;
  if (o.nbdInsecure) say(`warning: --nbd-insecure: NBD on ${o.nbd} is plain TCP, without authentication or encryption: anyone who can reach that port reads and writes every drive`);
  const peerTimeoutMs = peerTimeoutOf(o.peerTimeout);
  // Last, once every option is known good: measuring the dilation takes seconds.
  let dilation: number;
  const d = o.timeDilation ?? (pace === 'model' ? 'auto' : '1');
  if (d === 'auto') {
    say(`time dilation auto: timing a short per-TLP simulation of ${topology.name}...`);
    const a = autoDilation(topology);
    dilation = a.dilation;
    say(`time dilation ${dilation}: the model ran ${a.measuredRatio.toFixed(1)}x slower than the hardware here, times a margin for sockets and files`);
  } else {
    dilation = Number(d);
    if (!(dilation > 0) || !Number.isFinite(dilation)) throw new DconnectError('BAD_OPTION', `--time-dilation '${d}' is not a positive number or auto`, 'e.g. --time-dilation 20, or auto');
  }
  return { topology, pace, dilation, hardLimitMs, seed, faults, listenHost: o.listenHost ?? '127.0.0.1', controlTcp, nbdTcp, ...(o.nbdInsecure ? { nbdInsecure: true } : {}), ...(o.preallocate ? { preallocate: true } : {}), peerTimeoutMs, burstBytes };
}

/**
 * The live fabric's burst size (0: per TLP). Unpaced, bursts are the default: a live fabric is for
 * moving bytes at this machine's speed. Paced runs stay per TLP (their timing is the point). A cable
 * with `--fault` carries a burst as its frames, each drawing its own fault (runtime/faults.ts, and
 * live/udp-transport.ts between processes), so faults run at either granularity.
 */
function burstBytesOfLive(o: LiveFabricOptions, pace: Pace): number {
  const given = o.granularity;
  if (given !== undefined && given !== 'tlp' && given !== 'burst') throw new DconnectError('BAD_OPTION', `--granularity '${given}' is not tlp or burst`);
  const granularity = given ?? (pace === 'none' ? 'burst' : 'tlp');
  if (granularity === 'tlp') {
    if (o.burstBytes !== undefined) throw new DconnectError('BAD_OPTION', `--burst-bytes applies to --granularity burst, and this fabric runs per TLP${given ? '' : ' (the default with --pace model)'}`, 'drop --burst-bytes, or give --granularity burst');
    return 0;
  }
  if (pace === 'model') throw new DconnectError('BAD_OPTION', '--granularity burst runs unpaced: a paced fabric keeps every TLP its own events, for its timing', 'use --pace none with --granularity burst, or drop --granularity');
  return burstBytesOf({ granularity: 'burst', fidelity: 'full', burstBytes: o.burstBytes === undefined ? undefined : parseSize(o.burstBytes, '--burst-bytes') });
}

/** The host node's TCP addresses (--nbd, --control-tcp) are free: checked before any node starts. */
async function probeTcp(s: FabricSettings): Promise<void> {
  if (s.nbdTcp) await assertTcpFree(s.nbdTcp, '--nbd');
  if (s.controlTcp) await assertTcpFree(s.controlTcp, '--control-tcp');
}

export async function upAction(topology: Topology, given: boolean, o: LiveFabricOptions & { json?: boolean; image?: string[] }): Promise<void> {
  const state = new StateDir(o.state);
  // A new fabric's settings are checked (and its dilation measured) before anything is written.
  const existing = readSettings(state);
  const fresh = existing === null ? settingsOf(topology, o) : null;
  // --image seeds drives before their box first opens them: checked now, written once the state directory exists.
  let seed: (() => string[]) | null = null;
  if (o.image && o.image.length > 0) {
    const t = existing?.topology ?? fresh!.topology;
    if (existing && nodeStatuses(state, t).some((n) => n.running)) throw new DconnectError('BAD_IMAGE', `--image: the fabric in ${state.root} is running, its drives open`, `stop it first (dconnect down${stateArg(o.state)}), or seed a new fabric with another --state`);
    seed = seedDriveFiles(t, o.image, (slot) => state.drivePath(slot));
  }
  if (fresh) await probeTcp(fresh);
  state.ensure();
  const release = state.acquireUpLock();
  try {
    let s = readSettings(state);
    if (s && given && JSON.stringify(s.topology) !== JSON.stringify(topology)) {
      throw new DconnectError('BAD_OPTION', `${state.root} holds a fabric of topology ${s.topology.name} with other settings`, 'use that state directory without --topology/--set, or another --state for another fabric');
    }
    const running = s ? nodeStatuses(state, s.topology).filter((n) => n.running) : [];
    if (s && running.length === nodesOf(s.topology).length) {
      say(`a fabric is already running in ${state.root}: ${running.map((n) => `${n.name} (pid ${n.pid})`).join(', ')}; dconnect status${stateArg(o.state)} shows it, dconnect down${stateArg(o.state)} stops it`);
      if (o.json) process.stdout.write(JSON.stringify({ started: [], nodes: running }) + '\n');
      return;
    }
    const wrote = !s;
    if (!s) {
      s = fresh ?? settingsOf(topology, o); // fresh is null only if another up wrote settings meanwhile
      writeSettings(state, s);
    } else if (!running.some((n) => n.role === 'host')) await probeTcp(s);
    for (const line of seed?.() ?? []) say(`seeded ${line}`);
    // up() stops the nodes it started if one fails; a fabric that never came up keeps no settings either.
    const r = await up(state, s.topology, say).catch((e: unknown) => {
      if (wrote) rmSync(settingsPath(state), { force: true });
      throw e;
    });
    // Boot now, so a fabric that cannot boot fails here, not at the first copy.
    const devices = await hostClient({ socketPath: state.controlSocketPath }).devices({ timeoutMs: 120_000 });
    say(`fabric up in ${state.root}: ${s.topology.name}, pace ${s.pace}${s.pace === 'model' ? `, time dilation ${s.dilation}` : ''}, ${granularityText(s.burstBytes ?? 0)}; devices ${devices.devices.filter((d) => offersTheDcCommand(d.kind)).map((d) => d.name).join(', ')}`);
    say(`copy with: dconnect copy sda sdb --length 64MiB --live${stateArg(o.state)}; NBD: nbdinfo --list 'nbd+unix:///?socket=${state.nbdSocketPath}'; stop with: dconnect down${stateArg(o.state)}`);
    // The paper's testbed at its own scale (128-byte payloads, a window of 32 frames) is slow over sockets; its live tuning exists for that.
    if (s.topology.name === 'paper-2012' && s.pace === 'none') say(`for live speed (1 KiB payloads, 4 MiB commands, a window for the sockets' round trip: docs/calibration.md), a fabric of paper-2012-live in its own state directory: dconnect up --topology paper-2012-live --state .dconnect-live`);
    if (s.nbdTcp && !s.nbdInsecure) say(`NBD over TCP needs TLS-PSK: nbdinfo 'nbds://${s.nbdTcp.host}:${s.nbdTcp.port}/sda?tls-psk-file=${state.nbdPskPath}' (the file's user is the TLS username: nbds://USER@HOST:PORT/ if it is not your login name)`);
    if (o.json) process.stdout.write(JSON.stringify({ started: r.started, nodes: r.nodes, devices }) + '\n');
  } finally {
    release();
  }
}

export async function nodeAction(topology: Topology | null, o: LiveFabricOptions & { name: string; listen?: string; peer?: string[]; peerTimeout?: string; keyFile?: string }): Promise<void> {
  const state = new StateDir(o.state);
  state.ensure();
  let s = readSettings(state);
  if (!s) {
    if (!topology) throw new DconnectError('BAD_OPTION', `${state.root} has no fabric settings`, 'give --topology (and the other fabric options), or start with dconnect up');
    s = settingsOf(topology, o);
    writeSettings(state, s);
  }
  const node = checkNode(s.topology, o.name);
  if (node.role === 'host') await probeTcp(s); // a clear error, not EADDRINUSE from deep in a server
  const listen = parseAddress(o.listen ?? `${s.listenHost}:0`, '--listen');
  const peers: Record<string, { host: string; port: number }> = {};
  for (const p of o.peer ?? []) {
    const m = /^([A-Za-z][\w-]*)=(.+)$/.exec(p);
    if (!m) throw new DconnectError('BAD_OPTION', `--peer '${p}' is not NAME=HOST:PORT`, 'e.g. --peer box0=10.0.0.2:7000');
    checkNode(s.topology, m[1]);
    peers[m[1]] = parseAddress(m[2], '--peer');
  }
  const faults = s.faults.filter((f) => !isDriveFault(f)).map(parseFault);
  const mediaErrors = s.faults.map(parseMediaError).filter((m) => m !== null);
  const storeFaults = s.faults.map(parseStoreFault).filter((m) => m !== null);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${node.name}: ${line}\n`);
  // The host makes the fabric key if none exists; a box reads its state dir's copy or --key-file (a box on another machine).
  let key: Uint8Array | null = o.keyFile !== undefined ? readKeyFile(o.keyFile) : state.fabricKey(node.role === 'host');
  if (process.env.DCONNECT_BENCH_NO_MAC === '1') {
    // Only to measure the MAC's cost (bench/live.ts): the port then takes anyone's datagrams.
    log('DCONNECT_BENCH_NO_MAC=1: datagrams are NOT authenticated (a measurement setting, never for use)');
    key = null;
  }
  const common = { topology: s.topology, state, seed: s.seed, pace: s.pace, dilation: s.dilation, burstBytes: s.burstBytes ?? 0, listen, faults, log, key };
  const running =
    node.role === 'host'
      ? await runHostNode({ ...common, hardLimitMs: s.hardLimitMs, peers, tcp: s.controlTcp, nbdTcp: s.nbdTcp, nbdInsecure: s.nbdInsecure === true, peerTimeoutMs: o.peerTimeout !== undefined ? peerTimeoutOf(o.peerTimeout) : (s.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS) })
      : await runBoxNode({ ...common, name: node.name, mediaErrors, storeFaults, preallocate: s.preallocate === true });
  const udp = running.transport.address();
  state.writeNodeRecord({
    name: node.name,
    role: node.role,
    pid: process.pid,
    udp,
    ...('control' in running ? { control: { socket: running.control.socketPath, ...(running.control.tcp ? { tcp: running.control.tcp } : {}) } } : {}),
    ...('nbd' in running ? { nbd: { socket: running.nbd.socketPath!, ...(running.nbd.tcp ? { tcp: running.nbd.tcp } : {}) } } : {}),
    startedAt: new Date().toISOString(),
    topology: s.topology.name,
  });
  log(`running (pid ${process.pid}, udp ${udp.host}:${udp.port}, pace ${s.pace}${s.pace === 'model' ? `, dilation ${s.dilation}` : ''}, ${granularityText(s.burstBytes ?? 0)})`);
  // A box has no control API: it reports its lag and its own cables' faults in its node record.
  const record = state.readNodeRecord(node.name)!;
  let recordFailing = false;
  const reporter =
    'report' in running
      ? setInterval(() => {
          // A record that cannot be written (a full disk) is logged, once per failure run, and the node goes on.
          try {
            const rec = state.readNodeRecord(node.name);
            if (rec?.pid === process.pid) state.writeNodeRecord({ ...record, report: running.report() });
            recordFailing = false;
          } catch (e) {
            if (!recordFailing) log(`cannot write its node record (status will show it stale): ${(e as Error).message}`);
            recordFailing = true;
          }
        }, REPORT_MS)
      : null;
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log(`${sig}: stopping`);
      if (reporter) clearInterval(reporter);
      running.stop().then(
        () => {
          const rec = state.readNodeRecord(node.name);
          if (rec?.pid === process.pid) state.removeNodeRecord(node.name);
          resolve();
        },
        (e) => {
          log(`error while stopping: ${(e as Error).message}`);
          resolve();
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export async function downAction(o: { state: string; json?: boolean }): Promise<void> {
  const state = new StateDir(o.state);
  const s = readSettings(state);
  if (!s) {
    say(`no fabric in ${state.root}: nothing to stop`);
    return;
  }
  const stopped = await down(state, s.topology, say);
  if (stopped.length === 0) say(`no node of ${state.root} was running`);
  if (o.json) process.stdout.write(JSON.stringify({ stopped }) + '\n');
}

export async function statusAction(o: { state: string; json?: boolean }): Promise<void> {
  const state = new StateDir(o.state);
  const s = readSettings(state);
  if (!s) throw new DconnectError('NOT_RUNNING', `no fabric in ${state.root}`, 'start one with dconnect up (or pass the --state DIR it was started with)');
  const nodes = nodeStatuses(state, s.topology);
  const host = nodes.find((n) => n.role === 'host');
  const hs = host?.running ? await hostClient({ socketPath: state.controlSocketPath }).status().catch(() => null) : null;
  if (o.json) {
    process.stdout.write(JSON.stringify({ state: state.root, topology: s.topology.name, pace: s.pace, dilation: s.dilation, burstBytes: s.burstBytes ?? 0, nodes, session: hs?.session ?? null, transport: hs?.transport ?? null, jobs: (hs?.jobs ?? []).map((j) => ({ id: j.id, state: j.state, src: j.src, dst: j.dst, srcOffset: j.srcOffset, dstOffset: j.dstOffset, lengthBytes: j.lengthBytes, bytesDone: j.bytesDone, ...(j.error ? { error: j.error.message } : {}) })) }) + '\n');
    return;
  }
  process.stdout.write(statusText({ root: state.root, topology: s.topology.name, pace: s.pace, dilation: s.dilation, burstBytes: s.burstBytes ?? 0 }, nodes, hs?.session ?? null, hs?.jobs ?? []) + '\n');
}

export async function liveDevicesAction(o: { state: string; json?: boolean }): Promise<void> {
  const state = new StateDir(o.state);
  const d = await hostClient({ socketPath: state.controlSocketPath }).devices({ timeoutMs: 120_000 });
  if (o.json) {
    process.stdout.write(JSON.stringify(d) + '\n');
    return;
  }
  process.stdout.write(liveDevicesText(d) + '\n');
}

/** A finished live file copy for people: what was copied, how fast, what crossed the host link. */
function liveFileCopyText(job: JobView): string {
  const r = job.result as unknown as { mode: string; relay: string; files: number; directories: number; bytes: number; dataBytes: number; runs: number; movedBytes: number; wallSeconds: number; mbPerSecWall: number; verified: boolean | null; metadata: { readBytes: number; writtenBytes: number; commands: number }; hostLink: { upstreamPayloadBytes: number; downstreamPayloadBytes: number } };
  return [
    `job ${job.id}: ${r.mode} file copy ${job.src}:${job.files!.srcPath} -> ${job.dst}:${job.files!.dstPath}: ${r.files} file${r.files === 1 ? '' : 's'}, ${r.directories} director${r.directories === 1 ? 'y' : 'ies'}, ${formatBytes(r.bytes)} (${formatBytes(r.dataBytes)} of data in ${r.runs} runs) via ${r.relay}: done, ${r.verified === null ? 'NOT verified (--no-verify)' : 'verified: every file read back through both file systems and equal'}`,
    `  this run moved ${formatBytes(r.movedBytes)}; reserve, move and commit took ${r.wallSeconds.toFixed(2)} s wall (${r.mbPerSecWall.toFixed(1)} MB/s of file bytes)`,
    `  metadata ${formatBytes(r.metadata.readBytes)} read, ${formatBytes(r.metadata.writtenBytes)} written through host memory (${r.metadata.commands} commands); host link payload ${formatBytes(r.hostLink.downstreamPayloadBytes)} down, ${formatBytes(r.hostLink.upstreamPayloadBytes)} up`,
  ].join('\n');
}

/** How often `copy --live` polls its job, ms. */
const POLL_MS = 200;

/** Submits a copy (or resumes a job) and follows it to the end: a progress bar on a terminal, plain lines in logs. */
export async function liveCopyAction(req: JobRequestBody | { resume: string; verify?: boolean }, o: { state: string; json?: boolean; views?: ViewOutputs }): Promise<void> {
  const state = new StateDir(o.state);
  // --trace-events: the fabric's counters sampled while the job moves (its topology is the state directory's).
  const settings = o.views ? readSettings(state) : null;
  if (o.views && !settings) throw new DconnectError('NOT_RUNNING', `no fabric in ${state.root}`, 'start one with dconnect up (or pass the --state DIR it was started with)');
  const tracer = o.views && settings ? new LiveTraceRecorder({ socketPath: state.controlSocketPath }, settings.topology, o.views.firstWindowPs !== undefined ? o.views.firstWindowPs / 1e9 : LIVE_WINDOW_MS) : null;
  if (tracer) await tracer.start();
  if (!('resume' in req) && req.capture) {
    // A bad name, or several cables into a classic pcap, is refused here, before anything is asked.
    state.capturePath(req.capture.name);
    captureFormat(req.capture.name, req.capture.links);
  }
  const client = hostClient({ socketPath: state.controlSocketPath });
  let job = 'resume' in req ? await client.resume(req.resume, req.verify === undefined ? undefined : { verify: req.verify }) : await client.submit(req, { timeoutMs: 120_000 });
  say(`job ${job.id}: ${'resume' in req ? `resumed from ${formatSizeExact(job.doneBytes)} into the range` : 'submitted'} (dconnect status${stateArg(o.state)} shows it; Ctrl-C cancels it)`);
  // The copy's bar, then the verification's (reading both ranges back is as long again, and cancellable too).
  let bar = progressBar(`copy ${job.id}`, job.lengthBytes, 'bytes', { lines: true });
  let verifying = false;
  let interrupted = false;
  let traced = false;
  const traceDone = async () => {
    if (!tracer || traced) return;
    traced = true;
    const run = await tracer.stop(`live job ${job.id}`);
    for (const line of await writeViewOutputs(o.views!, [run], { command: 'copy --live', job: job.id, topology: settings!.topology.name }, '')) say(line);
  };
  const onInt = () => {
    interrupted = true;
    void client.cancel(job.id).catch(() => {});
  };
  process.once('SIGINT', onInt);
  try {
    while (job.state === 'queued' || job.state === 'running' || job.state === 'verifying') {
      await new Promise((r) => setTimeout(r, POLL_MS));
      job = await client.job(job.id);
      // The trace covers the move, not the verification's reads.
      if (tracer && job.state !== 'queued' && job.state !== 'running') await traceDone();
      if (job.state === 'verifying' && !verifying) {
        verifying = true;
        bar.update(job.lengthBytes);
        bar.stop();
        bar = progressBar(`verify ${job.id}`, job.lengthBytes, 'bytes', { lines: true });
      }
      bar.update(verifying ? (job.verifiedBytes ?? 0) : job.bytesDone);
    }
    if (job.state === 'done') bar.update(job.lengthBytes);
    await traceDone();
  } finally {
    bar.stop();
    process.off('SIGINT', onInt);
    if (!traced) await tracer?.stop('');
  }
  if (o.json) process.stdout.write(JSON.stringify(job) + '\n');
  if (job.state === 'done' && job.result && job.files) {
    if (!o.json) process.stdout.write(liveFileCopyText(job) + '\n');
    return;
  }
  if (job.state === 'done' && job.result && 'verifySeconds' in job.result) {
    const r = job.result;
    if (!o.json) {
      process.stdout.write(
        [
          `job ${job.id}: ${r.mode} copy of ${formatBytes(job.lengthBytes)} via ${r.relay}: done, ${r.verified === null ? 'NOT verified (--no-verify)' : 'verified by reading both ranges back through the devices'}`,
          `  this run moved ${formatBytes(r.movedBytes)} in ${r.wallSeconds.toFixed(2)} s wall (${r.mbPerSecWall.toFixed(1)} MB/s${r.pace === 'none' ? `; unpaced, so simulated time says nothing; ${granularityText((r.granularity as { burstBytes?: number } | undefined)?.burstBytes ?? 0)}` : `; ${r.mbPerSecSimulated.toFixed(1)} MB/s in simulated time at dilation ${r.dilation}${r.lag ? `, lag max ${r.lag.maxMs.toFixed(1)} ms, p99 ${r.lag.p99Ms.toFixed(1)} ms` : ''}`}); verification ${r.verifySeconds.toFixed(2)} s`,
          `  host link payload during the move: ${formatBytes(r.hostLink.downstreamPayloadBytes)} down, ${formatBytes(r.hostLink.upstreamPayloadBytes)} up`,
          ...(r.captured ? [`  captured ${(r.captured as { frames: number }).frames} frames on ${(job.capture?.links ?? []).join(', ')} into ${(r.captured as { path: string }).path} (the move, not the verification's reads; wall-clock timestamps)`] : []),
        ].join('\n') + '\n',
      );
    }
    return;
  }
  if (job.state === 'cancelled') {
    const resume = `dconnect copy --resume ${job.id} --live${stateArg(o.state)}`;
    if (job.doneBytes >= job.lengthBytes) say(`job ${job.id}: cancelled while verifying; the whole range is copied and flushed; ${resume} verifies it (add --no-verify to finish it unverified)`);
    else say(`job ${job.id}: cancelled; bytes [0, ${job.doneBytes}) of the range are copied and flushed; ${resume} finishes it`);
    process.exitCode = interrupted ? 130 : 1;
    return;
  }
  say(`dconnect: error [${job.error?.code ?? 'FAILED'}]: job ${job.id} failed: ${job.error?.message ?? 'unknown'}`);
  if (job.error?.hint) say(`  hint: ${withState(job.error.hint, o.state)}`);
  process.exitCode = job.error?.code === 'VERIFY_FAILED' ? 3 : 1;
}
