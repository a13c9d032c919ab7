/**
 * `node dist/bench/nbd.js [--json] [--quick]`: the NBD exports of the live fabric (issue "NBD").
 * - nbdcopy sda -> sdb (the host-mediated copy NBD offers) against `dconnect copy sda sdb --live`
 *   (direct) on the same fabric: wall time and host-link payload of each, paced and unpaced.
 * - Throughput of our export through nbdcopy (a file onto sdb, and sdb back to a file) against
 *   nbdkit's file plugin serving the same kind of file, in the same run. Target: >= 0.25x unpaced.
 * Needs the Debian tools (libnbd-bin, nbdkit); says so and exits 0 without them.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlRequest } from '../src/live/control-http.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('usage: node dist/bench/nbd.js [--json] [--quick]\n  NBD exports against nbdcopy and nbdkit (issue 11); ~3 min (--quick ~1)\n');
  process.exit(0);
}
const json = args.includes('--json');
const quick = args.includes('--quick');
const MiB = 1 << 20;
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const ENV = { ...process.env, PATH: `/usr/bin:/bin:${process.env.PATH ?? ''}`, LIBNBD_DEBUG: '0' };
const log = (line: string) => process.stderr.write(`nbd: ${line}\n`);

function run(cmd: string, argv: string[], timeoutMs = 600_000): Promise<{ code: number; stdout: string; stderr: string; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve) =>
    execFile(cmd, argv, { env: ENV, timeout: timeoutMs, maxBuffer: 64 * MiB }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout: String(stdout), stderr: String(stderr), seconds: (performance.now() - t0) / 1000 })),
  );
}
const dconnect = (argv: string[], timeoutMs?: number) => run(process.execPath, [CLI, ...argv], timeoutMs);
const must = (r: { code: number; stderr: string }, what: string) => {
  if (r.code !== 0) throw new Error(`${what} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
};

const tools = ['nbdcopy', 'nbdkit'].every((t) => spawnSync(t, ['--version'], { env: ENV, stdio: 'ignore' }).status === 0);
if (!tools) {
  log('nbdcopy/nbdkit not installed (Debian: libnbd-bin nbdkit): not judged');
  if (json) process.stdout.write(JSON.stringify({ nbd: null }) + '\n');
  process.exit(0);
}

interface Side {
  seconds: number;
  mbPerSec: number;
  hostLinkBytes: number;
}

async function hostLinkBytes(state: string): Promise<number> {
  const c = await controlRequest<{ trace: Record<string, Record<string, number>> }>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters');
  return (c.trace['hostLink.upstream']?.payloadBytes ?? 0) + (c.trace['hostLink.downstream']?.payloadBytes ?? 0);
}

/** nbdcopy sda -> sdb, then dconnect copy sda sdb --live, on one fabric. */
async function copyVersus(dir: string, pace: 'none' | 'model', size: number): Promise<{ nbdcopy: Side; direct: Side; dilation: number }> {
  const state = join(dir, `s-${pace}`);
  // nbdcopy copies whole devices: the drives are the size of the copy.
  const topo = pace === 'none' ? ['--topology', 'paper-2012-live'] : ['--time-dilation', 'auto'];
  must(await dconnect(['up', '--state', state, ...topo, '--set', `ssd.capacityBytes=${size}`, '--pace', pace]), 'dconnect up');
  try {
    const st = JSON.parse((await dconnect(['status', '--state', state, '--json'])).stdout) as { dilation: number };
    const uri = (e: string) => `nbd+unix:///${e}?socket=${join(state, 'nbd.sock')}`;
    const h0 = await hostLinkBytes(state);
    const n = await run('nbdcopy', ['--flush', uri('sda'), uri('sdb')]);
    must(n, 'nbdcopy');
    const h1 = await hostLinkBytes(state);
    const dev = size;
    const d = await dconnect(['copy', 'sda', 'sdb', '--length', String(dev), '--live', '--no-verify', '--state', state, '--json']);
    must(d, 'dconnect copy --live');
    const job = JSON.parse(d.stdout) as { result: { wallSeconds: number; hostLink: { upstreamPayloadBytes: number; downstreamPayloadBytes: number } } };
    return {
      nbdcopy: { seconds: n.seconds, mbPerSec: dev / n.seconds / 1e6, hostLinkBytes: h1 - h0 },
      direct: { seconds: job.result.wallSeconds, mbPerSec: dev / job.result.wallSeconds / 1e6, hostLinkBytes: job.result.hostLink.upstreamPayloadBytes + job.result.hostLink.downstreamPayloadBytes },
      dilation: st.dilation,
    };
  } finally {
    await dconnect(['down', '--state', state]);
  }
}

/** nbdcopy a file onto the export and back, against nbdkit's file plugin doing the same with a file. */
async function exportVersusNbdkit(dir: string, size: number): Promise<{ ours: number; nbdkit: number; ratio: number }> {
  const src = join(dir, 'src.raw');
  writeFileSync(src, new Uint8Array(randomBytes(size)));
  const state = join(dir, 's-export');
  must(await dconnect(['up', '--state', state, '--topology', 'paper-2012-live', '--set', `ssd.capacityBytes=${size}`, '--pace', 'none']), 'dconnect up');
  let ours: number;
  try {
    const uri = `nbd+unix:///sdb?socket=${join(state, 'nbd.sock')}`;
    const w = await run('nbdcopy', ['--flush', src, uri]);
    must(w, 'nbdcopy onto the export');
    const r = await run('nbdcopy', [uri, join(dir, 'back.raw')]);
    must(r, 'nbdcopy from the export');
    ours = (2 * size) / (w.seconds + r.seconds) / 1e6;
  } finally {
    await dconnect(['down', '--state', state]);
  }
  const target = join(dir, 'nbdkit.raw');
  writeFileSync(target, new Uint8Array(size));
  const w = await run('nbdkit', ['-U', '-', 'file', target, '--run', `nbdcopy --flush '${src}' "$uri" && nbdcopy "$uri" '${join(dir, 'back2.raw')}'`]);
  must(w, 'nbdkit file + nbdcopy');
  const nbdkit = (2 * size) / w.seconds / 1e6;
  return { ours, nbdkit, ratio: ours / nbdkit };
}

const dir = mkdtempSync(join(tmpdir(), 'dconnect-bench-nbd-'));
try {
  const size = quick ? 16 * MiB : 64 * MiB;
  log(`nbdcopy sda->sdb against dconnect copy --live (direct), ${size / MiB} MiB drives, unpaced (paper-2012-live) ...`);
  const unpaced = await copyVersus(dir, 'none', size);
  const line = (label: string, s: Side) => `${label} ${s.seconds.toFixed(2)} s wall (${s.mbPerSec.toFixed(1)} MB/s), ${(s.hostLinkBytes / MiB).toFixed(1)} MiB over the host link`;
  log(`unpaced: ${line('nbdcopy', unpaced.nbdcopy)}; ${line('dconnect copy --live', unpaced.direct)}`);
  const pacedSize = quick ? 4 * MiB : 16 * MiB;
  log(`the same, paced (paper-2012, --time-dilation auto), ${pacedSize / MiB} MiB ...`);
  const paced = await copyVersus(dir, 'model', pacedSize);
  log(`paced (dilation ${paced.dilation}): ${line('nbdcopy', paced.nbdcopy)}; ${line('dconnect copy --live', paced.direct)}`);
  log(`export throughput through nbdcopy (a file onto sdb and back, ${size / MiB} MiB each way) against nbdkit's file plugin ...`);
  const exp = await exportVersusNbdkit(dir, size);
  const met = exp.ratio >= 0.25;
  log(`export: ours ${exp.ours.toFixed(1)} MB/s, nbdkit file ${exp.nbdkit.toFixed(1)} MB/s: ${exp.ratio.toFixed(3)}x; target >= 0.25x: ${met ? 'met' : 'NOT met'}`);
  if (json) process.stdout.write(JSON.stringify({ nbd: { unpaced, paced, export: { ...exp, target: 0.25, met } } }) + '\n');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
