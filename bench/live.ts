/**
 * `node dist/bench/live.js [--json] [--quick] [--only paced,unpaced,mac,loss,kill] [--kill-seeds 3,7]`: the
 * live fabric (issue "Live fabric", its "Targets") measured on this machine, each figure beside its
 * target. Also run by bench/main.ts (unless --skip-live). Timings are reported (met / NOT met), never
 * asserted. Every fabric runs in a fresh temporary state directory with the CLI as child processes
 * (`dconnect up ... --state DIR`), is stopped with `dconnect down` and removed whatever happens, and
 * every wait is bounded.
 *
 * - paced: `paper-2012 --set host.lanes=1 --pace model --time-dilation auto`, a direct and a
 *   conventional copy of 16 MiB (--quick 4 MiB), verified: MB/s in simulated time of each and their
 *   ratio against the simulator's (`dconnect copy ... --host-lanes 1 --fidelity full`). Target: the
 *   live ratio within 10% of the simulator's. The dilation chosen and the host's lag are reported.
 * - unpaced: `paper-2012-live --pace none`, a direct copy of 1 GiB (--quick 256 MiB) of random bytes
 *   sda -> sdb with --no-verify (then checked by the bench from the files), against `dd bs=4M
 *   conv=notrunc` copying the same bytes from sda's drive file into a fresh file beside it, in the same
 *   run (twice; judged against the faster). Target: >= 0.5x dd. CPU-ms per MiB moved of each node
 *   process (user + system, all threads, from /proc/<pid>/stat) is reported beside it, and so is the
 *   byte work alone with no model (the source read 1 MiB at a time, its 16 KiB units copied through a
 *   buffer array, written 4 MiB at a time by this process, as the drives' files are: the floor under
 *   any model, not judged). A verified copy
 *   of 64 MiB (--quick 16 MiB) is reported apart, and so is the same direct copy from a range never
 *   written (a new user's first copy reads holes), not judged.
 * - mac: the cost of authenticating every datagram (issue 20): an unpaced direct copy of 512 MiB
 *   (--quick 128 MiB) and a conventional one of half that, --no-verify, with the MAC on and off
 *   (DCONNECT_BENCH_NO_MAC=1, a measurement setting only), alternated twice. Target: at most 15% each.
 * - loss (issue 19, selective repeat): first simulated, at full fidelity: a conventional copy of
 *   16 MiB on paper-2012-live with `--fault loss=1%,reorder=1%` on every cable beside the lossless one
 *   (target: >= 0.5x), and paper-2012 with a x1 host link, lossless and with `loss=1%@host` (reported).
 *   Then live: `paper-2012-live --pace none --fault loss=1%,reorder=1%` and a lossless fabric beside
 *   it, both up at once: once a 1 MiB copy has booted each session (the boot is not bandwidth) and one
 *   warm-up copy each (reported, not judged: V8 still compiles), conventional copies of 32 MiB
 *   (--quick 4 MiB) alternate between them, three on each (--quick one; the ratio is of the medians),
 *   verified, and the host's counters (GET /counters): transport lost and reordered,
 *   bridge.host retransmittedFrames and NAKs, and each node's CPU-ms per MiB (the verification's reads
 *   included, on both fabrics). Targets:
 *   verified, the counters show the loss, and wall MB/s >= 0.5x the lossless copy's. When the copy
 *   fails at the preset's chunk, a copy of 1 MiB with --chunk 256KiB is run to tell a
 *   failure of loss recovery from one of the host's progress watchdog (not judged).
 * - kill: `paper-2012-live --pace none --set ssd.capacityBytes=1GiB`, 20 seeded kill points (--quick
 *   5): seeded source range (filled with seeded bytes), destination range, length (16..48 MiB) and
 *   kill fraction (0.1..0.9); the box is SIGKILLed once the job's bytesDone passes the fraction; the
 *   copy must fail naming the range copied and flushed (and that range must really be there), then
 *   `up` restarts the box and `copy --resume` must finish verified. Both drive files are then compared
 *   whole against the bench's own image of what they must hold: the destination range equals the
 *   source, the source is untouched, nothing outside the destination range changed. Target: all seeds.
 *
 * With --json, one JSON object goes to stdout and the human lines to stderr (progress always on stderr).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeSync, ftruncateSync } from 'node:fs';
import { allThreadEntries, cpuLine, cpuMsPerMiB, nodeCpuMs } from './node-cpu.js';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { controlRequest } from '../src/live/control-http.js';
import type { JobResult } from '../src/live/live-job.js';
import { runCopy } from '../src/runtime/copy.js';
import { faultConnect, parseFault } from '../src/runtime/faults.js';
import { loadTopology } from '../src/topology/load.js';
import { granularityText } from '../src/cli/live-format.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

export const LIVE_SECTIONS = ['paced', 'unpaced', 'mac', 'loss', 'kill'] as const;
export type LiveSection = (typeof LIVE_SECTIONS)[number];

export interface LiveBenchOptions {
  quick: boolean;
  /** Result lines (the `target ...: met` ones). */
  log: (line: string) => void;
  /** Progress lines (stderr). */
  progress: (line: string) => void;
  only?: LiveSection[];
  /** Replay only these kill seeds. */
  killSeeds?: number[];
  /** `--set PATH=VALUE`s passed to `dconnect up` of the unpaced section (a variant of paper-2012-live). */
  set?: string[];
}

interface Verdict {
  target: string;
  met: boolean;
}
const said = (v: Verdict) => `target ${v.target}: ${v.met ? 'met' : 'NOT met'}`;

const wallNow = () => Number(process.hrtime.bigint()) / 1e9;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `p`, or 'timeout' after `ms` (the timer does not keep the process alive). */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
const mib = (b: number) => `${+(b / MiB).toFixed(2)} MiB`;
const f1 = (x: number) => x.toFixed(1);

// ---------------------------------------------------------------------------------------------------
// The CLI as child processes, every call bounded

interface CliResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  wallSeconds: number;
}

function cli(args: string[], timeoutMs: number): Promise<CliResult> {
  const t0 = wallNow();
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * MiB, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: string; killed?: boolean }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr: e?.killed ? `${stderr}\n(killed after ${timeoutMs / 1000} s)` : stderr, wallSeconds: wallNow() - t0 });
    });
  });
}

/** The last JSON line of a command's stdout, or a descriptive error. */
function lastJson<T>(r: CliResult, what: string): T {
  const line = r.stdout.trim().split('\n').filter(Boolean).pop();
  if (!line) throw new Error(`${what}: no JSON on stdout (exit ${r.code ?? r.signal}); stderr: ${r.stderr.trim().split('\n').slice(-4).join(' | ')}`);
  return JSON.parse(line) as T;
}

function execDd(args: string[], timeoutMs: number): Promise<{ wallSeconds: number; ddSeconds: number | null; line: string; ok: boolean }> {
  const t0 = wallNow();
  return new Promise((resolve) => {
    execFile('dd', args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (err, _stdout, stderr) => {
      const wall = wallNow() - t0;
      const line = stderr.trim().split('\n').pop() ?? '';
      const m = /copied, ([0-9.e+-]+) s/.exec(line);
      resolve({ wallSeconds: wall, ddSeconds: m ? Number(m[1]) : null, line, ok: !err });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Fabrics in temporary state directories

/** State directories with a fabric that may be running: stopped on SIGINT/SIGTERM too. */
const active = new Set<string>();
let signalsHooked = false;
function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`live: ${sig}: stopping ${active.size} fabric(s)\n`);
    // Synchronously: the process is about to go.
    for (const dir of active) {
      try {
        stopNodesNow(dir);
      } catch {
        /* best effort */
      }
      rmSync(dir, { recursive: true, force: true });
    }
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
}

/** SIGKILLs the nodes recorded in DIR/nodes (used only when the bench itself is interrupted). */
function stopNodesNow(dir: string): void {
  for (const name of ['host', 'box0', 'box1', 'box2', 'box3']) {
    try {
      const rec = JSON.parse(readFileSync(join(dir, 'nodes', `${name}.json`), 'utf8')) as { pid: number };
      process.kill(rec.pid, 'SIGKILL');
    } catch {
      /* no record, or gone */
    }
  }
}

interface Fabric {
  dir: string;
  socketPath: string;
  drive(slot: number): string;
}

async function withFabric<T>(label: string, upArgs: string[], o: LiveBenchOptions, fn: (f: Fabric) => Promise<T>): Promise<T> {
  hookSignals();
  // Short (a Unix socket path holds at most 107 bytes) and fresh.
  const dir = mkdtempSync(join(tmpdir(), 'dcl-'));
  active.add(dir);
  const f: Fabric = { dir, socketPath: join(dir, 'host.sock'), drive: (slot) => join(dir, 'drives', `box0.slot${slot}.img`) };
  try {
    o.progress(`live: ${label}: dconnect up ${upArgs.join(' ')} --state ${dir}`);
    const r = await cli(['up', ...upArgs, '--state', dir, '--json'], 180_000);
    if (r.code !== 0) throw new Error(`dconnect up failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().split('\n').slice(-6).join(' | ')}`);
    return await fn(f);
  } finally {
    const d = await cli(['down', '--state', dir], 60_000);
    if (d.code !== 0) o.progress(`live: ${label}: dconnect down exited ${d.code ?? d.signal}: ${d.stderr.trim()}`);
    stopNodesNow(dir); // anything down left behind (it SIGKILLs after 10 s itself)
    active.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

interface StatusJson {
  pace: string;
  dilation: number;
  session: { epoch: number; events: number; simulatedSeconds: number; lag: { events: number; maxMs: number; p99Ms: number } | null } | null;
  transport: Record<string, number> | null;
  jobs: { id: string; state: string; bytesDone: number }[];
}
async function status(f: Fabric): Promise<StatusJson> {
  return lastJson<StatusJson>(await cli(['status', '--json', '--state', f.dir], 30_000), 'dconnect status --json');
}

interface JobJson {
  id: string;
  state: string;
  doneBytes: number;
  bytesDone: number;
  lengthBytes: number;
  error?: { code: string; message: string; hint?: string };
  result?: JobResult;
}

async function liveCopy(f: Fabric, args: string[], timeoutMs: number): Promise<{ job: JobJson | null; cli: CliResult; problem: string | null }> {
  const r = await cli(['copy', ...args, '--live', '--json', '--state', f.dir], timeoutMs);
  let job: JobJson | null = null;
  let problem: string | null = null;
  try {
    job = lastJson<JobJson>(r, `dconnect copy ${args.join(' ')} --live`);
  } catch (e) {
    problem = (e as Error).message;
  }
  if (job && job.state !== 'done') problem = `job ${job.id} ${job.state}: ${job.error ? `[${job.error.code}] ${job.error.message}` : '(no error)'} (exit ${r.code ?? r.signal})`;
  return { job, cli: r, problem };
}

interface Counters {
  epoch: number | null;
  trace: Record<string, Record<string, number>>;
  transport: Record<string, number>;
}
const counters = (f: Fabric) => controlRequest<Counters>({ socketPath: f.socketPath }, 'GET', '/counters', undefined, { timeoutMs: 30_000 });

// ---------------------------------------------------------------------------------------------------
// Files: seeded bytes, range hashes and comparisons, read and written directly (no copy runs then)

/** `length` seeded pseudo-random bytes (AES-256-CTR of zeros, keyed by the label): fast and replayable. */
function seededBytes(label: string, length: number): Uint8Array {
  const key = new Uint8Array(createHash('sha256').update(`dconnect bench live ${label}`).digest());
  const c = createCipheriv('aes-256-ctr', key, new Uint8Array(16));
  const out = new Uint8Array(length);
  const step = 16 * MiB;
  const zeros = new Uint8Array(step);
  for (let off = 0; off < length; off += step) {
    const n = Math.min(step, length - off);
    out.set(c.update(zeros.subarray(0, n)), off);
  }
  return out;
}

const sha256Of = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Writes seeded bytes into [offset, offset + length) of `path` in pieces, then fsyncs. */
function writeSeeded(path: string, offset: number, length: number, label: string): void {
  const fd = openSync(path, 'r+');
  try {
    const step = 64 * MiB;
    for (let off = 0; off < length; off += step) {
      const n = Math.min(step, length - off);
      const b = seededBytes(`${label}@${off}`, n);
      let done = 0;
      while (done < n) done += writeSync(fd, b, done, n - done, offset + off + done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function writeAt(path: string, offset: number, data: Uint8Array): void {
  const fd = openSync(path, 'r+');
  try {
    let done = 0;
    while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readRange(fd: number, offset: number, into: Uint8Array): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, offset + done);
    if (n === 0) throw new Error(`short read at ${offset + done}`);
    done += n;
  }
}

function sha256Range(path: string, offset: number, length: number): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = new Uint8Array(Math.min(16 * MiB, Math.max(1, length)));
    for (let off = 0; off < length; off += buf.length) {
      const n = Math.min(buf.length, length - off);
      const b = buf.subarray(0, n);
      readRange(fd, offset + off, b);
      h.update(b);
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function sparseFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
}

/** Where the file differs from `image` (which must be the file's size): null when equal. */
function diffWhole(path: string, image: Uint8Array): { first: number; last: number; bytes: number } | null {
  const fd = openSync(path, 'r');
  let first = -1;
  let last = -1;
  let bytes = 0;
  try {
    const buf = new Uint8Array(16 * MiB);
    for (let off = 0; off < image.length; off += buf.length) {
      const n = Math.min(buf.length, image.length - off);
      const b = buf.subarray(0, n);
      readRange(fd, off, b);
      const want = image.subarray(off, off + n);
      if (Buffer.compare(b, want) === 0) continue;
      for (let i = 0; i < n; i++) {
        if (b[i] !== want[i]) {
          if (first < 0) first = off + i;
          last = off + i;
          bytes++;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return first < 0 ? null : { first, last, bytes };
}

function readWhole(path: string, into: Uint8Array): void {
  const fd = openSync(path, 'r');
  try {
    for (let off = 0; off < into.length; off += 16 * MiB) readRange(fd, off, into.subarray(off, Math.min(into.length, off + 16 * MiB)));
  } finally {
    closeSync(fd);
  }
}

/**
 * The bytes of a direct copy with no model (issue 19's floor), the cheapest way they can move as the
 * live drives move them: `size` bytes of `src` read 1 MiB at a time (the drive file's read-ahead),
 * each 16 KiB stream unit copied out of it into a DC-buffer-like array and from there into the
 * destination's 4 MiB command buffer (the preset's chunk), written with one pwrite per command, into
 * a fresh sparse file `dst` (removed after); every buffer reused. CPU of this process, wall time, and
 * whether the copy equals the source.
 */
function byteWork(src: string, dst: string, size: number, srcSha: string): { mbPerSec: number; cpuMsPerMiB: number; filesEqual: boolean } {
  const unitBytes = 16 * KiB;
  const commandBytes = 4 * MiB;
  sparseFile(dst, size);
  const s = openSync(src, 'r');
  const d = openSync(dst, 'r+');
  const ahead = new Uint8Array(MiB);
  const ddr = new Uint8Array(MiB);
  const command = new Uint8Array(commandBytes);
  const cpu0 = process.cpuUsage();
  const t0 = wallNow();
  try {
    for (let cmd = 0; cmd < size; cmd += commandBytes) {
      const end = Math.min(size, cmd + commandBytes);
      for (let off = cmd; off < end; off += MiB) {
        const n = Math.min(MiB, end - off);
        readSync(s, ahead, 0, n, off);
        for (let u = 0; u < n; u += unitBytes) {
          const m = Math.min(unitBytes, n - u);
          ddr.set(ahead.subarray(u, u + m), u);
          command.set(ddr.subarray(u, u + m), off - cmd + u);
        }
      }
      writeSync(d, command, 0, end - cmd, cmd);
    }
  } finally {
    closeSync(s);
    closeSync(d);
  }
  const seconds = wallNow() - t0;
  const cpu = process.cpuUsage(cpu0);
  const filesEqual = sha256Range(dst, 0, size) === srcSha;
  rmSync(dst, { force: true });
  return { mbPerSec: size / seconds / 1e6, cpuMsPerMiB: (cpu.user + cpu.system) / 1000 / (size / MiB), filesEqual };
}

/** mulberry32: the kill test's seeded choices. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------------
// 1. Paced: the direct/conventional ratio against the simulator's

async function paced(o: LiveBenchOptions) {
  const size = o.quick ? 4 * MiB : 16 * MiB;
  const upArgs = ['--topology', 'paper-2012', '--set', 'host.lanes=1', '--pace', 'model', '--time-dilation', 'auto'];
  o.progress(`live paced: simulator reference, ${mib(size)} sda -> sdb at x1, full fidelity ...`);
  const sim: Record<'direct' | 'conventional', { mbPerSec: number; simulatedSeconds: number; verified: boolean }> = {} as never;
  for (const [mode, via] of [['direct', 'dc-buffer'], ['conventional', 'host']] as const) {
    const r = await cli(['copy', 'sda', 'sdb', '--length', String(size), '--host-lanes', '1', '--via', via, '--fidelity', 'full', '--json'], 300_000);
    const j = lastJson<{ mbPerSec: number; simulatedSeconds: number; verified: boolean }>(r, `dconnect copy --via ${via}`);
    sim[mode] = { mbPerSec: j.mbPerSec, simulatedSeconds: j.simulatedSeconds, verified: j.verified };
  }
  const simRatio = sim.direct.mbPerSec / sim.conventional.mbPerSec;
  return withFabric('paced', upArgs, o, async (f) => {
    const st0 = await status(f);
    o.progress(`live paced: time dilation ${st0.dilation} (auto); seeding sda [0, ${size}) ...`);
    writeSeeded(f.drive(0), 0, size, 'paced');
    const want = sha256Range(f.drive(0), 0, size);
    const live: Record<string, { mbPerSecSimulated: number; simulatedSeconds: number; wallSeconds: number; verified: boolean | null; verifySeconds: number; filesEqual: boolean; problem: string | null }> = {};
    for (const [mode, via] of [['direct', 'dc-buffer'], ['conventional', 'host']] as const) {
      o.progress(`live paced: ${mode} copy of ${mib(size)}, verified ...`);
      const c = await liveCopy(f, ['sda', 'sdb', '--length', String(size), '--via', via], 600_000);
      const r = c.job?.result;
      live[mode] = {
        mbPerSecSimulated: r?.mbPerSecSimulated ?? NaN,
        simulatedSeconds: r?.simulatedSeconds ?? NaN,
        wallSeconds: r?.wallSeconds ?? NaN,
        verified: r?.verified ?? false,
        verifySeconds: r?.verifySeconds ?? NaN,
        filesEqual: sha256Range(f.drive(1), 0, size) === want,
        problem: c.problem,
      };
      o.progress(`live paced:   ${c.problem ?? `${f1(live[mode].mbPerSecSimulated)} MB/s simulated, ${live[mode].wallSeconds.toFixed(2)} s wall, verify ${live[mode].verifySeconds.toFixed(2)} s`}`);
    }
    const st = await status(f);
    const lag = st.session?.lag ?? null;
    const ratio = live.direct.mbPerSecSimulated / live.conventional.mbPerSecSimulated;
    const deviation = ratio / simRatio - 1;
    const ok = live.direct.verified === true && live.conventional.verified === true && live.direct.filesEqual && live.conventional.filesEqual;
    const v: Verdict = { target: 'live direct/conventional ratio within 10% of the simulator\'s (both verified)', met: ok && Math.abs(deviation) <= 0.1 };
    o.log(
      `live paced: paper-2012 x1, pace model, time dilation ${st.dilation} (auto), ${mib(size)} each: ` +
        `direct ${f1(live.direct.mbPerSecSimulated)} MB/s, conventional ${f1(live.conventional.mbPerSecSimulated)} MB/s (simulated time)${ok ? ', both verified' : ', NOT both verified'}; ` +
        `ratio ${ratio.toFixed(3)} vs the simulator's ${simRatio.toFixed(3)} (${f1(sim.direct.mbPerSec)} / ${f1(sim.conventional.mbPerSec)}): ${deviation >= 0 ? '+' : ''}${(100 * deviation).toFixed(1)}%; ` +
        `host lag ${lag ? `max ${lag.maxMs.toFixed(1)} ms, p99 <= ${lag.p99Ms} ms over ${lag.events} events` : 'not reported'}; ${said(v)}`,
    );
    return { sizeBytes: size, topology: 'paper-2012', hostLanes: 1, dilation: st.dilation, live, ratio, simulator: { ...sim, ratio: simRatio, fidelity: 'full' }, deviation, lag, ...v };
  });
}

// ---------------------------------------------------------------------------------------------------
// 2. Unpaced: a direct copy against dd

/** The granularity a live job's result names, as `dconnect status` says it. */
function granularityOf(r: object | undefined): string {
  const g = (r as { granularity?: { burstBytes?: number } } | undefined)?.granularity;
  return granularityText(g?.burstBytes ?? 0);
}

async function unpaced(o: LiveBenchOptions) {
  const size = o.quick ? 256 * MiB : GiB;
  const small = o.quick ? 16 * MiB : 64 * MiB;
  const smallAt = 2 * GiB;
  const sets = (o.set ?? []).flatMap((v) => ['--set', v]);
  const label = `paper-2012-live${o.set?.length ? ` (--set ${o.set.join(' --set ')})` : ''}`;
  return withFabric('unpaced', ['--topology', 'paper-2012-live', '--pace', 'none', ...sets], o, async (f) => {
    o.progress(`live unpaced: seeding sda [0, ${size}) with random bytes ...`);
    writeSeeded(f.drive(0), 0, size, 'unpaced');
    o.progress(`live unpaced: direct copy of ${mib(size)} sda -> sdb, --no-verify ...`);
    const cpu0 = nodeCpuMs(f.dir);
    const c = await liveCopy(f, ['sda', 'sdb', '--length', String(size), '--no-verify'], 900_000);
    const cpu = cpuMsPerMiB(cpu0, nodeCpuMs(f.dir), size);
    const r = c.job?.result;
    o.progress(`live unpaced: checking the copy from the files (sha256 of both ranges) ...`);
    const srcSha = sha256Range(f.drive(0), 0, size);
    const dstSha = sha256Range(f.drive(1), 0, size);
    const dc = { wallSeconds: r?.wallSeconds ?? NaN, mbPerSecWall: r?.mbPerSecWall ?? NaN, cliWallSeconds: c.cli.wallSeconds, mbPerSecSimulated: r?.mbPerSecSimulated ?? NaN, filesEqual: srcSha === dstSha, problem: c.problem, cpuMsPerMiB: cpu };
    o.progress(`live unpaced:   ${c.problem ?? `${dc.wallSeconds.toFixed(2)} s (${f1(dc.mbPerSecWall)} MB/s); files ${dc.filesEqual ? 'equal' : 'DIFFER'}; CPU-ms/MiB ${cpuLine(cpu)}`}`);

    // dd right after, the same bytes (sda's drive file) into a fresh sparse file beside it; twice (the
    // first write into fresh files varies a lot here), judged against the faster.
    const count = Math.ceil(size / (4 * MiB));
    const ddOnce = async (i: number, conv: string) => {
      const dst = join(f.dir, `dd-dst${i}.img`);
      sparseFile(dst, 8 * GiB);
      o.progress(`live unpaced: dd if=${f.drive(0)} of=${dst} bs=4M count=${count} conv=${conv} ...`);
      const r = await execDd([`if=${f.drive(0)}`, `of=${dst}`, 'bs=4M', `count=${count}`, `conv=${conv}`], 600_000);
      const seconds = r.ddSeconds ?? r.wallSeconds;
      const equal = r.ok && sha256Range(dst, 0, size) === srcSha;
      rmSync(dst, { force: true });
      o.progress(`live unpaced:   ${r.line}`);
      return { conv, seconds, mbPerSec: size / seconds / 1e6, line: r.line, ok: r.ok, filesEqual: equal };
    };
    const ddRuns = [await ddOnce(1, 'notrunc'), await ddOnce(2, 'notrunc')];
    const dd = ddRuns.reduce((a, b) => (b.mbPerSec > a.mbPerSec ? b : a));
    // For context (not judged): dd that also fsyncs at the end, as dconnect flushes every 8 MiB segment.
    const ddSync = await ddOnce(3, 'notrunc,fsync');
    const ddSeconds = dd.seconds;
    const ddMBps = dd.mbPerSec;
    const ddEqual = ddRuns.every((r) => r.filesEqual);
    const ddSyncMBps = ddSync.mbPerSec;
    // Not judged: the byte work a direct copy cannot skip, with no model at all (docs/performance.md).
    o.progress(`live unpaced: the byte work alone: ${mib(size)} read 1 MiB at a time, its 16 KiB units copied through a buffer array into a 4 MiB command buffer, written 4 MiB at a time, in this process ...`);
    const bytes = byteWork(f.drive(0), join(f.dir, 'bytes-dst.img'), size, srcSha);
    o.progress(`live unpaced:   ${f1(bytes.mbPerSec)} MB/s, ${bytes.cpuMsPerMiB.toFixed(2)} CPU-ms/MiB${bytes.filesEqual ? '' : ' (the copy DIFFERS)'}`);

    o.progress(`live unpaced: verified direct copy of ${mib(small)} sda -> sdb:${smallAt} ...`);
    const v2 = await liveCopy(f, ['sda', `sdb:${smallAt}`, '--length', String(small)], 600_000);
    const smallEqual = sha256Range(f.drive(1), smallAt, small) === sha256Range(f.drive(0), 0, small);
    const verifiedCopy = { sizeBytes: small, verified: v2.job?.result?.verified ?? false, wallSeconds: v2.job?.result?.wallSeconds ?? NaN, mbPerSecWall: v2.job?.result?.mbPerSecWall ?? NaN, verifySeconds: v2.job?.result?.verifySeconds ?? NaN, filesEqual: smallEqual, problem: v2.problem };

    // A new user's first copy reads a drive never written: holes, which the box answers without the file.
    const holeAt = 4 * GiB;
    o.progress(`live unpaced: direct copy of ${mib(size)} from a never-written range, sda:${holeAt} -> sdb:${holeAt}, --no-verify ...`);
    const cpuH0 = nodeCpuMs(f.dir);
    const h = await liveCopy(f, [`sda:${holeAt}`, `sdb:${holeAt}`, '--length', String(size), '--no-verify'], 900_000);
    const holes = { wallSeconds: h.job?.result?.wallSeconds ?? NaN, mbPerSecWall: h.job?.result?.mbPerSecWall ?? NaN, cpuMsPerMiB: cpuMsPerMiB(cpuH0, nodeCpuMs(f.dir), size), problem: h.problem };

    const ratio = dc.mbPerSecWall / ddMBps;
    const v: Verdict = { target: '>= 0.5x dd bs=4M', met: c.problem === null && dc.filesEqual && ddRuns.every((r) => r.ok) && ratio >= 0.5 };
    o.log(
      `live unpaced: ${label}, pace none, ${granularityOf(r)}, direct ${mib(size)} --no-verify: ${dc.wallSeconds.toFixed(2)} s, ${f1(dc.mbPerSecWall)} MB/s (files ${dc.filesEqual ? 'equal' : 'DIFFER'}), CPU-ms/MiB ${cpuLine(cpu)}; ` +
        `dd bs=4M conv=notrunc ${ddSeconds.toFixed(2)} s, ${f1(ddMBps)} MB/s (the faster of ${ddRuns.map((r) => f1(r.mbPerSec)).join(' and ')})${ddEqual ? '' : ' (a dd copy DIFFERS)'}, conv=notrunc,fsync ${f1(ddSyncMBps)} MB/s (not judged): ${ratio.toFixed(3)}x dd; ${said(v)}; ` +
        `the byte work alone, no model (read 1 MiB at a time, its 16 KiB units copied through a buffer array into a 4 MiB command buffer, written 4 MiB at a time, buffers reused, in Node): ${f1(bytes.mbPerSec)} MB/s, ${bytes.cpuMsPerMiB.toFixed(2)} CPU-ms/MiB, ${(bytes.mbPerSec / ddMBps).toFixed(3)}x dd${bytes.filesEqual ? '' : ' (its copy DIFFERS)'} (not judged)`,
    );
    o.log(
      `live unpaced: verified copy of ${mib(small)}: ${verifiedCopy.verified === true && smallEqual ? 'verified' : `NOT verified${v2.problem ? ` (${v2.problem})` : ''}`}, move ${verifiedCopy.wallSeconds.toFixed(2)} s (${f1(verifiedCopy.mbPerSecWall)} MB/s), verification ${verifiedCopy.verifySeconds.toFixed(2)} s`,
    );
    o.log(`live unpaced: the same direct copy from a never-written range (holes): ${holes.problem ?? `${holes.wallSeconds.toFixed(2)} s, ${f1(holes.mbPerSecWall)} MB/s, CPU-ms/MiB ${cpuLine(holes.cpuMsPerMiB)}`}; not judged`);
    return { sizeBytes: size, topology: 'paper-2012-live', set: o.set ?? [], granularity: r?.granularity ?? null, dconnect: dc, dd: { seconds: ddSeconds, mbPerSec: ddMBps, filesEqual: ddEqual, runs: ddRuns }, ddFsync: ddSync, byteWork: bytes, ratio, verifiedCopy, holes, ...v };
  });
}

// ---------------------------------------------------------------------------------------------------
// 3. Loss: a conventional copy over lossy, reordering UDP

/** A simulated conventional copy at full fidelity, with the given faults: MB/s (simulated time) and the host bridge's repair counters. */
function simulatedCopy(preset: string, lengthBytes: number, faults: string[], hostLanes?: 1 | 8, granularity: 'tlp' | 'burst' = 'tlp') {
  const t = loadTopology(preset);
  if (hostLanes) t.host.link.lanes = hostLanes;
  const { connect, start } = faultConnect(t, faults.map(parseFault), 1);
  const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes, via: 'host', seed: 1, fidelity: 'full', granularity, connect, onStart: start, sha256: false });
  const h = r.trace['bridge.host'] ?? {};
  return { preset, hostLanes: t.host.link.lanes, faults, granularity, verified: r.verified, mbPerSec: r.mbPerSec, eventsPerMiB: Math.round(r.events / (lengthBytes / MiB)), retransmittedFrames: h.retransmittedFrames ?? 0, naksReceived: h.naksReceived ?? 0, naksSent: h.naksSent ?? 0 };
}

/** Simulated: the same conventional copy with and without loss (selective repeat keeps most of the bandwidth). */
function simulatedLoss(o: LiveBenchOptions) {
  const len = 16 * MiB;
  const fault = 'loss=1%,reorder=1%';
  o.progress(`loss (simulated): conventional ${mib(len)} on paper-2012-live, lossless and --fault ${fault}; paper-2012 x1, lossless and loss=1%@host ...`);
  const clean = simulatedCopy('paper-2012-live', len, []);
  const lossy = simulatedCopy('paper-2012-live', len, [fault]);
  const x1 = simulatedCopy('paper-2012', len, [], 1);
  const x1Host = simulatedCopy('paper-2012', len, ['loss=1%@host'], 1);
  const ratio = lossy.mbPerSec / clean.mbPerSec;
  const v: Verdict = { target: '>= 0.5x lossless', met: clean.verified && lossy.verified && ratio >= 0.5 };
  o.log(
    `loss (simulated): paper-2012-live, conventional ${mib(len)}, full fidelity: lossless ${f1(clean.mbPerSec)} MB/s, --fault ${fault} on every cable ${f1(lossy.mbPerSec)} MB/s ` +
      `(${lossy.verified ? 'verified' : 'NOT verified'}; bridge.host resent ${lossy.retransmittedFrames} frames for ${lossy.naksReceived} NAKs): ${ratio.toFixed(3)}x; ${said(v)}`,
  );
  o.log(`loss (simulated): paper-2012, host link x1, conventional ${mib(len)}: lossless ${f1(x1.mbPerSec)} MB/s, loss=1%@host ${f1(x1Host.mbPerSec)} MB/s (${x1Host.verified ? 'verified' : 'NOT verified'}): ${(x1Host.mbPerSec / x1.mbPerSec).toFixed(3)}x (reported)`);
  // At burst granularity, what the live fabric runs unpaced: a faulty cable carries the runs of frames no fault hit as bursts.
  const cleanBurst = simulatedCopy('paper-2012-live', len, [], undefined, 'burst');
  const lossyBurst = simulatedCopy('paper-2012-live', len, [fault], undefined, 'burst');
  o.log(
    `loss (simulated): paper-2012-live at burst granularity: lossless ${f1(cleanBurst.mbPerSec)} MB/s (${cleanBurst.eventsPerMiB} events/MiB), --fault ${fault} ${f1(lossyBurst.mbPerSec)} MB/s ` +
      `(${lossyBurst.verified ? 'verified' : 'NOT verified'}; ${lossyBurst.eventsPerMiB} events/MiB; per-TLP lossy ${lossy.eventsPerMiB}): ${(lossyBurst.mbPerSec / cleanBurst.mbPerSec).toFixed(3)}x (reported)`,
  );
  return { clean, lossy, ratio, x1, x1Host, cleanBurst, lossyBurst, ...v };
}

async function loss(o: LiveBenchOptions) {
  const simulated = simulatedLoss(o);
  // Selective repeat resends only what a NAK names; the timer (a measured round trip, >= 2 ms of wall
  // time unpaced) is a backstop. The reference is the same copy on a lossless fabric.
  // Each fabric first boots its session with a small copy (`bootSession`): the boot's configuration
  // requests go one at a time, so under loss it waits out timeouts, and on 8 MiB it was half the
  // measured time (the ratio then swung between 0.41x and 0.61x on the same build).
  const size = o.quick ? 4 * MiB : 32 * MiB;
  const fault = 'loss=1%,reorder=1%';
  // Both fabrics are up at once and their copies alternate, lossless then lossy, `rounds` times; the
  // ratio is of the medians. Each fabric's first copy is a warm-up, reported and not judged: it runs
  // while V8 still compiles the model (12-22 MB/s where the next ones run at 40-80), and this
  // machine's speed drifts by tens of percent over a minute, so copies on fabrics booted one after the
  // other compared different phases (one build's ratio swung 0.45-0.63x).
  const rounds = o.quick ? 1 : 3;
  const medianOf = <T extends { mbPerSecWall: number }>(xs: T[]): T => [...xs].sort((a, b) => a.mbPerSecWall - b.mbPerSecWall)[(xs.length - 1) >> 1];
  const bootSession = async (f: Fabric, label: string) => {
    o.progress(`live loss: ${label}: booting the session (a 1 MiB copy, not timed) ...`);
    const c = await liveCopy(f, ['sda', `sdb:${4 * GiB}`, '--length', String(MiB), '--via', 'host', '--no-verify'], 120_000);
    if (c.problem) throw new Error(`live loss: ${label}: the boot copy failed: ${c.problem}`);
  };
  const timeoutMs = o.quick ? 150_000 : 400_000;
  return withFabric('loss (lossless reference)', ['--topology', 'paper-2012-live', '--pace', 'none'], o, (clean) =>
    withFabric('loss', ['--topology', 'paper-2012-live', '--pace', 'none', '--fault', fault], o, async (lossy) => {
      for (const f of [clean, lossy]) writeSeeded(f.drive(0), 0, size, 'loss');
      const srcSha = sha256Range(lossy.drive(0), 0, size);
      await bootSession(clean, 'lossless');
      await bootSession(lossy, 'lossy');
      const run = async (f: Fabric, label: string, len: number, extra: string[], dstAt: number) => {
        o.progress(`live loss: ${label}: conventional copy of ${mib(len)} sda -> sdb:${dstAt}${extra.length ? ` ${extra.join(' ')}` : ''}, verified ...`);
        const none = (e: Error) => ({ epoch: null, trace: {}, transport: {}, error: e.message }) as Counters & { error?: string };
        const was = await counters(f).catch(none);
        const t0 = wallNow();
        const cpu0 = nodeCpuMs(f.dir);
        const c = await liveCopy(f, ['sda', `sdb:${dstAt}`, '--length', String(len), '--via', 'host', ...extra], timeoutMs);
        const cpu = cpuMsPerMiB(cpu0, nodeCpuMs(f.dir), len); // with the verification's reads, on both fabrics alike
        const now = await counters(f).catch(none);
        // This copy's share (the session's counters run on across copies).
        const delta = (a: Record<string, number> | undefined, b: Record<string, number> | undefined, k: string): number | undefined => (a?.[k] === undefined ? undefined : a[k] - (b?.[k] ?? 0));
        const cnt = { epoch: now.epoch, transport: { lost: delta(now.transport, was.transport, 'lost'), reordered: delta(now.transport, was.transport, 'reordered'), datagramsSent: delta(now.transport, was.transport, 'datagramsSent') }, host: { retransmittedFrames: delta(now.trace['bridge.host'], was.trace['bridge.host'], 'retransmittedFrames'), naksReceived: delta(now.trace['bridge.host'], was.trace['bridge.host'], 'naksReceived') } };
        const r = c.job?.result;
        const out = {
          sizeBytes: len,
          options: extra,
          verified: r?.verified ?? false,
          filesEqual: sha256Range(f.drive(1), dstAt, len) === (len === size ? srcSha : sha256Range(f.drive(0), 0, len)),
          wallSeconds: r?.wallSeconds ?? NaN,
          mbPerSecWall: r?.mbPerSecWall ?? NaN,
          cliWallSeconds: wallNow() - t0,
          problem: c.problem,
          transport: { lost: cnt.transport.lost ?? 0, reordered: cnt.transport.reordered ?? 0, datagramsSent: cnt.transport.datagramsSent ?? 0 },
          retransmittedFrames: cnt.host.retransmittedFrames ?? null,
          naksReceived: cnt.host.naksReceived ?? null,
          sessionEpoch: cnt.epoch,
          cpuMsPerMiB: cpu,
        };
        o.progress(`live loss:   ${c.problem ?? `done in ${out.wallSeconds.toFixed(2)} s (${f1(out.mbPerSecWall)} MB/s)`}; host counters: transport lost ${out.transport.lost}, reordered ${out.transport.reordered}, bridge.host retransmittedFrames ${out.retransmittedFrames ?? 'n/a (no session)'}`);
        return out;
      };
      const warmLossless = await run(clean, 'lossless warm-up', size, [], 0);
      const warmLossy = await run(lossy, 'lossy warm-up', size, [], 0);
      const cleanRuns: (typeof warmLossy)[] = [];
      const runs: (typeof warmLossy)[] = [];
      for (let i = 1; i <= rounds; i++) {
        cleanRuns.push(await run(clean, `lossless ${i} of ${rounds}`, size, [], i * 64 * MiB));
        runs.push(await run(lossy, `lossy ${i} of ${rounds}`, size, [], i * 64 * MiB));
      }
      // Judged by the median runs; a failed or unverified one (warm-ups included) is reported instead.
      const failed = (r: (typeof runs)[number]) => r.verified !== true || !r.filesEqual || Boolean(r.problem);
      const main = [warmLossy, ...runs].find(failed) ?? medianOf(runs);
      const lossless = [warmLossless, ...cleanRuns].find(failed) ?? medianOf(cleanRuns);
      const showsLoss = (x: typeof main) => x.transport.lost > 0 && x.transport.reordered > 0 && (x.retransmittedFrames ?? 0) > 0;
      const ratio = main.mbPerSecWall / lossless.mbPerSecWall;
      const v: Verdict = { target: 'verified, the counters show the loss, >= 0.5x lossless', met: !failed(main) && showsLoss(main) && !failed(lossless) && ratio >= 0.5 };
      const each = (xs: number[]) => (xs.length > 1 ? ` (median of ${xs.map(f1).join(', ')})` : '');
      o.log(
        `live loss: paper-2012-live, pace none (burst granularity, the default, on both fabrics), --fault ${fault}, conventional ${mib(size)} at the preset's chunk, both fabrics up at once and their copies alternated, each after a warm-up copy: ` +
          `${!failed(main) ? `verified in ${main.wallSeconds.toFixed(2)} s (${f1(main.mbPerSecWall)} MB/s${each(runs.map((r) => r.mbPerSecWall))})` : `NOT verified: ${main.problem ?? 'files differ'}`}; ` +
          `lossless ${!failed(lossless) ? `${f1(lossless.mbPerSecWall)} MB/s${each(cleanRuns.map((r) => r.mbPerSecWall))}` : `NOT verified: ${lossless.problem ?? 'files differ'}`}: ${ratio.toFixed(3)}x; ` +
          `warm-ups (not judged) lossy ${f1(warmLossy.mbPerSecWall)}, lossless ${f1(warmLossless.mbPerSecWall)} MB/s; ` +
          `CPU-ms/MiB of the median runs, lossy ${cpuLine(main.cpuMsPerMiB)}, lossless ${cpuLine(lossless.cpuMsPerMiB)}; ` +
          `host transport lost ${main.transport.lost} and reordered ${main.transport.reordered} frames (in ${main.transport.datagramsSent} datagrams sent); bridge.host retransmittedFrames ${main.retransmittedFrames ?? 'n/a (the session ended, its counters with it)'}, naksReceived ${main.naksReceived ?? 'n/a'}; ${said(v)}`,
      );
      let smallerChunk: typeof main | null = null;
      if (!v.met && main.problem) {
        // Tell a loss-recovery failure from a too-coarse progress check: the same over chunks of 256 KiB.
        const len = 1 * MiB;
        smallerChunk = await run(lossy, 'diagnostic', len, ['--chunk', '256KiB'], 4 * GiB);
        o.log(
          `live loss: (diagnostic, not judged) the same with --chunk 256KiB, ${mib(len)}: ${smallerChunk.verified === true && smallerChunk.filesEqual ? `verified in ${smallerChunk.wallSeconds.toFixed(2)} s (${f1(smallerChunk.mbPerSecWall)} MB/s)` : `NOT verified: ${smallerChunk.problem ?? 'files differ'}`}; ` +
            `transport lost ${smallerChunk.transport.lost}, reordered ${smallerChunk.transport.reordered}; bridge.host retransmittedFrames ${smallerChunk.retransmittedFrames ?? 'n/a'}`,
        );
      }
      return { sizeBytes: size, fault, topology: 'paper-2012-live', simulated, lossless: { ...lossless, mbPerSecWallRuns: cleanRuns.map((r) => r.mbPerSecWall) }, warmUps: { lossy: warmLossy, lossless: warmLossless }, run: main, runs, ratio, smallerChunk, ...v };
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// 4. Kill test: SIGKILL the box mid-copy, restart, resume

interface KillCase {
  seed: number;
  srcOffset: number;
  dstOffset: number;
  lengthBytes: number;
  fraction: number;
}

function killCase(seed: number, capacity: number): KillCase {
  const rnd = mulberry32(0x5eed0000 + seed);
  const align = 4 * KiB;
  const lengthBytes = (Math.floor((16 * MiB + rnd() * 32 * MiB) / align) + 1) * align; // 16..48 MiB
  const srcOffset = Math.floor((rnd() * (capacity - lengthBytes)) / align) * align;
  const dstOffset = Math.floor((rnd() * (capacity - lengthBytes)) / align) * align;
  const fraction = 0.1 + 0.8 * rnd();
  return { seed, srcOffset, dstOffset, lengthBytes, fraction };
}

async function kill(o: LiveBenchOptions) {
  const capacity = GiB;
  const seeds = o.killSeeds ?? Array.from({ length: o.quick ? 5 : 20 }, (_, i) => i + 1);
  const upArgs = ['--topology', 'paper-2012-live', '--pace', 'none', '--set', `ssd.capacityBytes=${capacity}`];
  return withFabric('kill', upArgs, o, async (f) => {
    // The bench's image of both drives: what they must hold (fresh drives are zeros).
    const imgA = new Uint8Array(capacity);
    const imgB = new Uint8Array(capacity);
    const results: Record<string, unknown>[] = [];
    const children = new Set<ChildProcess>();
    try {
      for (const seed of seeds) {
        const k = killCase(seed, capacity);
        const t0 = wallNow();
        const problems: string[] = [];
        const rec: Record<string, unknown> = { ...k };
        const phases: Record<string, number> = {};
        let tp = wallNow();
        const phase = (name: string) => {
          const now = wallNow();
          phases[name] = +(now - tp).toFixed(3);
          tp = now;
        };
        rec.phaseSeconds = phases;
        const replay = [
          `dconnect up ${upArgs.join(' ')} --state DIR`,
          `fill sda [${k.srcOffset}, ${k.srcOffset + k.lengthBytes}) with seededBytes('kill-${seed}', ${k.lengthBytes}) (bench/live.ts)`,
          `dconnect copy sda:${k.srcOffset} sdb:${k.dstOffset} --length ${k.lengthBytes} --live --json --state DIR`,
          `kill -9 <box0 pid from DIR/nodes/box0.json> once the job's bytesDone >= ${Math.ceil(k.fraction * k.lengthBytes)}`,
          `dconnect up --state DIR; dconnect copy --resume JOB --live --json --state DIR`,
          `or: node dist/bench/live.js --only kill --kill-seeds ${seed}`,
        ];
        try {
          // Make sure the fabric runs (a failed earlier seed may have left the box down).
          const u = await cli(['up', '--state', f.dir], 120_000);
          if (u.code !== 0) throw new Error(`dconnect up: exit ${u.code ?? u.signal}: ${u.stderr.trim().split('\n').slice(-3).join(' | ')}`);
          const src = seededBytes(`kill-${seed}`, k.lengthBytes);
          writeAt(f.drive(0), k.srcOffset, src);
          imgA.set(src, k.srcOffset);
          phase('setup');

          // The copy, as a child process the bench watches.
          const child = spawn(process.execPath, [MAIN, 'copy', `sda:${k.srcOffset}`, `sdb:${k.dstOffset}`, '--length', String(k.lengthBytes), '--live', '--json', '--state', f.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
          children.add(child);
          let out = '';
          let err = '';
          child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
          child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
          const exited = new Promise<number | null>((res) => child.on('exit', (code, sig) => res(code ?? (sig ? -1 : null))));
          let exitCode: number | null | undefined;
          void exited.then((c) => {
            exitCode = c;
            children.delete(child);
          });
          const threshold = k.fraction * k.lengthBytes;
          let jobId: string | null = null;
          let killedAt: number | null = null;
          const deadline = Date.now() + 60_000;
          while (Date.now() < deadline && exitCode === undefined) {
            if (!jobId) {
              const m = /job (j\d+): submitted/.exec(err);
              if (m) jobId = m[1];
            }
            if (jobId) {
              const j = await controlRequest<JobJson>({ socketPath: f.socketPath }, 'GET', `/jobs/${jobId}`, undefined, { timeoutMs: 10_000 });
              if (j.state !== 'queued' && j.state !== 'running' && j.state !== 'verifying') break;
              if (j.bytesDone >= threshold) {
                const box = JSON.parse(readFileSync(join(f.dir, 'nodes', 'box0.json'), 'utf8')) as { pid: number };
                process.kill(box.pid, 'SIGKILL');
                killedAt = j.bytesDone;
                rec.boxPid = box.pid;
                rec.jobState = j.state;
                break;
              }
            }
            await sleep(5);
          }
          phase('copyUntilKill');
          rec.job = jobId;
          rec.killedAtBytesDone = killedAt;
          if (killedAt === null) {
            problems.push(jobId ? `the job ended (or 60 s passed) before bytesDone reached ${Math.ceil(threshold)}: no kill` : 'no job id on the copy\'s stderr');
            child.kill('SIGKILL');
          }
          // The copy must fail on its own: the host notices the box is gone (its watchdog, 5 s).
          const code = await within(exited, 60_000);
          if (code === 'timeout') {
            child.kill('SIGKILL');
            problems.push('the copy did not end within 60 s of the kill');
          }
          rec.copyExit = code;
          phase('failureNoticed');
          let failed: JobJson | null = null;
          try {
            failed = JSON.parse(out.trim().split('\n').pop() ?? '') as JobJson;
          } catch {
            problems.push(`no job record on the copy's stdout (stderr: ${err.trim().split('\n').slice(-2).join(' | ')})`);
          }
          if (killedAt !== null && failed) {
            rec.error = failed.error?.message ?? null;
            rec.markerBytes = failed.doneBytes;
            if (code === 0 || failed.state !== 'failed') problems.push(`the copy did not fail (exit ${code}, state ${failed.state})`);
            const msg = failed.error?.message ?? '';
            const m = /bytes \[0, (\d+)\) of the range are copied and flushed/.exec(msg);
            if (!msg.includes('copied and flushed') || !m) problems.push(`the error does not name the range done: ${JSON.stringify(msg)}`);
            else {
              const n = Number(m[1]);
              rec.markerBytes = n;
              if (n !== failed.doneBytes) problems.push(`the error names [0, ${n}) but the record's doneBytes is ${failed.doneBytes}`);
              // The marker must be true: those bytes are on sdb now.
              if (n > 0 && sha256Range(f.drive(1), k.dstOffset, n) !== sha256Of(src.subarray(0, n))) problems.push(`bytes [0, ${n}) are said to be copied and flushed, but sdb's range differs from the source there`);
            }
          }

          phase('markerCheck');
          // Restart the box on the same files and port, then resume.
          const u2 = await cli(['up', '--state', f.dir], 120_000);
          if (u2.code !== 0) problems.push(`dconnect up after the kill: exit ${u2.code ?? u2.signal}: ${u2.stderr.trim().split('\n').slice(-3).join(' | ')}`);
          phase('up');
          if (jobId && killedAt !== null) {
            const res = await liveCopy(f, ['--resume', jobId], 300_000);
            rec.resume = res.job ? { state: res.job.state, verified: res.job.result?.verified ?? null, movedBytes: res.job.result?.movedBytes ?? null, wallSeconds: res.job.result?.wallSeconds ?? null, verifySeconds: res.job.result?.verifySeconds ?? null } : null;
            if (res.problem) problems.push(`resume: ${res.problem}`);
            else if (res.job!.result?.verified !== true) problems.push(`resume: done but verified = ${res.job!.result?.verified}`);
          }
          phase('resume');
          // What the drives must hold now, checked whole from the files.
          imgB.set(src, k.dstOffset);
          const dA = diffWhole(f.drive(0), imgA);
          const dB = diffWhole(f.drive(1), imgB);
          const inDst = (x: number) => x >= k.dstOffset && x < k.dstOffset + k.lengthBytes;
          if (dA) problems.push(`sda changed: ${dA.bytes} byte(s) differ in [${dA.first}, ${dA.last}] (the source range is [${k.srcOffset}, ${k.srcOffset + k.lengthBytes}))`);
          if (dB) problems.push(`sdb differs from what it must hold: ${dB.bytes} byte(s) in [${dB.first}, ${dB.last}]${inDst(dB.first) && inDst(dB.last) ? ' (inside the destination range: not a copy of the source)' : ' (OUTSIDE the destination range)'}`);
          rec.srcSha256 = sha256Of(src);
          rec.dstSha256 = sha256Range(f.drive(1), k.dstOffset, k.lengthBytes);
          phase('fileChecks');
          if (dA || dB) {
            // Start the next seed from what the files hold, so one failure does not spill over.
            readWhole(f.drive(0), imgA);
            readWhole(f.drive(1), imgB);
          }
        } catch (e) {
          problems.push(`bench: ${(e as Error).message}`);
          try {
            readWhole(f.drive(0), imgA);
            readWhole(f.drive(1), imgB);
          } catch {
            /* drives not there */
          }
        }
        rec.ok = problems.length === 0;
        rec.problems = problems;
        rec.wallSeconds = wallNow() - t0;
        results.push(rec);
        o.progress(
          `live kill: seed ${seed}: ${mib(k.lengthBytes)} sda:${k.srcOffset} -> sdb:${k.dstOffset}, kill at ${(100 * k.fraction).toFixed(0)}% (bytesDone ${rec.killedAtBytesDone ?? '-'}), ` +
            `failed with [0, ${rec.markerBytes ?? '?'}) copied and flushed, resumed: ${rec.ok ? 'ok' : `FAILED: ${problems.join('; ')}`} (${(rec.wallSeconds as number).toFixed(1)} s: ${Object.entries(phases).map(([n, x]) => `${n} ${x.toFixed(1)}`).join(', ')})`,
        );
        if (!rec.ok) o.log(`live kill: seed ${seed} FAILED; replay:\n${replay.map((l) => `    ${l}`).join('\n')}`);
      }
    } finally {
      for (const c of children) c.kill('SIGKILL');
    }
    const passed = results.filter((r) => r.ok).length;
    const v: Verdict = { target: `${seeds.length}/${seeds.length} seeds`, met: passed === seeds.length };
    const secs = results.map((r) => r.wallSeconds as number);
    o.log(
      `live kill: paper-2012-live, pace none, 1 GiB drives, ${seeds.length} seeded SIGKILLs of box0 mid-copy (16..48 MiB), restart, resume: ${passed}/${seeds.length} verified with the source untouched and nothing outside the destination changed ` +
        `(${(secs.reduce((a, b) => a + b, 0) / Math.max(1, secs.length)).toFixed(1)} s per seed); ${said(v)}`,
    );
    return { topology: 'paper-2012-live', capacityBytes: capacity, seeds: seeds.length, passed, cases: results, ...v };
  });
}

// ---------------------------------------------------------------------------------------------------
// MAC: the cost of authenticating every datagram (issue 20)

/**
 * `paper-2012-live --pace none`, an unpaced direct copy (--quick 128 MiB, else 512 MiB) and a
 * conventional one (half that), --no-verify, with the MAC on and off (DCONNECT_BENCH_NO_MAC=1 in the
 * nodes' environment: a CRC instead, no replay check), alternated on, off, on, off in fresh fabrics; the
 * faster run of each is compared (this machine is shared). Target: the MAC costs at most 15% of each.
 * The nodes' CPU-ms per MiB (least of the two runs, host + box) is reported beside it: on a loaded
 * machine wall throughput swings more than the MAC costs, CPU per byte much less.
 */
async function macCost(o: LiveBenchOptions) {
  const direct = o.quick ? 128 * MiB : 512 * MiB;
  const conventional = direct / 2;
  const best: Record<'on' | 'off', { direct: number; conventional: number }> = { on: { direct: 0, conventional: 0 }, off: { direct: 0, conventional: 0 } };
  const cpu: Record<'on' | 'off', { direct: number; conventional: number }> = { on: { direct: Infinity, conventional: Infinity }, off: { direct: Infinity, conventional: Infinity } };
  const problems: string[] = [];
  for (const mac of ['on', 'off', 'on', 'off'] as const) {
    if (mac === 'off') process.env.DCONNECT_BENCH_NO_MAC = '1';
    try {
      await withFabric(`mac ${mac}`, ['--topology', 'paper-2012-live', '--pace', 'none'], o, async (f) => {
        writeSeeded(f.drive(0), 0, direct, 'mac');
        for (const [mode, length, extra] of [['direct', direct, []], ['conventional', conventional, ['--via', 'host']]] as const) {
          const cpu0 = nodeCpuMs(f.dir);
          const c = await liveCopy(f, ['sda', 'sdb', '--length', String(length), '--no-verify', ...extra], 600_000);
          const perMiB = allThreadEntries(cpuMsPerMiB(cpu0, nodeCpuMs(f.dir), length)).reduce((a, [, ms]) => a + ms, 0);
          const mbps = c.job?.result?.mbPerSecWall ?? NaN;
          if (c.problem) problems.push(`${mode}, MAC ${mac}: ${c.problem}`);
          else {
            best[mac][mode] = Math.max(best[mac][mode], mbps);
            cpu[mac][mode] = Math.min(cpu[mac][mode], perMiB);
          }
          o.progress(`live mac: ${mode} ${mib(length)}, MAC ${mac}: ${c.problem ?? `${f1(mbps)} MB/s, ${perMiB.toFixed(2)} CPU-ms/MiB`}`);
        }
      });
    } finally {
      delete process.env.DCONNECT_BENCH_NO_MAC;
    }
  }
  const cost = (m: 'direct' | 'conventional') => 1 - best.on[m] / best.off[m];
  const v: Verdict = { target: 'the MAC costs at most 15% of unpaced throughput, direct and conventional', met: problems.length === 0 && cost('direct') <= 0.15 && cost('conventional') <= 0.15 };
  o.log(
    `live mac: paper-2012-live, pace none, --no-verify, best of 2 each: direct ${mib(direct)} ${f1(best.on.direct)} MB/s with the MAC, ${f1(best.off.direct)} without (${(100 * cost('direct')).toFixed(1)}% cost); ` +
      `conventional ${mib(conventional)} ${f1(best.on.conventional)} vs ${f1(best.off.conventional)} MB/s (${(100 * cost('conventional')).toFixed(1)}% cost); ` +
      `CPU-ms/MiB (host + box, least of 2) direct ${cpu.on.direct.toFixed(2)} vs ${cpu.off.direct.toFixed(2)}, conventional ${cpu.on.conventional.toFixed(2)} vs ${cpu.off.conventional.toFixed(2)}${problems.length ? `; problems: ${problems.join('; ')}` : ''}; ${said(v)}`,
  );
  return { best, cpuMsPerMiB: cpu, costDirect: cost('direct'), costConventional: cost('conventional'), problems, ...v };
}

// ---------------------------------------------------------------------------------------------------

export async function runLiveBench(o: LiveBenchOptions): Promise<Record<string, unknown>> {
  const only = new Set<LiveSection>(o.only ?? LIVE_SECTIONS);
  const t0 = wallNow();
  const out: Record<string, unknown> = { quick: o.quick };
  const section = async (name: LiveSection, fn: () => Promise<Record<string, unknown>>) => {
    if (!only.has(name)) return;
    try {
      out[name] = await fn();
    } catch (e) {
      const message = (e as Error).message;
      o.log(`live ${name}: the bench could not measure it: ${message}; target: NOT met`);
      out[name] = { error: message, met: false };
    }
  };
  await section('paced', () => paced(o));
  await section('unpaced', () => unpaced(o));
  await section('mac', () => macCost(o));
  await section('loss', () => loss(o));
  await section('kill', () => kill(o));
  out.wallSeconds = wallNow() - t0;
  o.progress(`live: ${(out.wallSeconds as number).toFixed(0)} s in all`);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const flag = (n: string) => args.includes(n);
  if (flag('--help') || flag('-h')) {
    process.stdout.write(`usage: node dist/bench/live.js [--json] [--quick] [--only ${LIVE_SECTIONS.join(',')}] [--kill-seeds N,...] [--set PATH=VALUE ...]\n  the live fabric's targets (issue 10), on real processes; ~7 min (--quick ~2.5)\n  --set (repeatable): a variant of paper-2012-live for the unpaced section\n`);
    process.exit(0);
  }
  const opt = (n: string) => (args.includes(n) ? args[args.indexOf(n) + 1] : undefined);
  const json = flag('--json');
  const onlyArg = opt('--only');
  const only = onlyArg?.split(',').map((s) => s.trim()) as LiveSection[] | undefined;
  for (const s of only ?? []) if (!LIVE_SECTIONS.includes(s)) throw new Error(`--only: '${s}' is not one of ${LIVE_SECTIONS.join(', ')}`);
  const seedsArg = opt('--kill-seeds');
  const killSeeds = seedsArg?.split(',').map(Number);
  if (killSeeds?.some((s) => !Number.isInteger(s))) throw new Error(`--kill-seeds takes integers: ${seedsArg}`);
  const log = (s: string) => (json ? process.stderr : process.stdout).write(s + '\n');
  const set = args.flatMap((a, i) => (a === '--set' && i + 1 < args.length ? [args[i + 1]!] : []));
  const result = await runLiveBench({ quick: flag('--quick'), log, progress: (s) => process.stderr.write(s + '\n'), only, killSeeds, set });
  if (json) process.stdout.write(JSON.stringify({ machine: { cores: availableParallelism(), node: process.version }, ...result }) + '\n');
}
