/**
 * The host node: the host of the topology (root complex, host link, server-side bridge; the DC
 * command, operator and manager) in its own process, with the control API on a Unix socket (and
 * loopback TCP when asked) and the NBD server. It is the composition of:
 * - the sessions (host-session.ts): the model's connection to the boxes, one incarnation at a time,
 *   each with its watchdog (watchdog.ts) judging the boxes by what they send;
 * - the job queue (job-queue.ts) and what runs a job (job-runner.ts), records durable in the state
 *   directory (job-store.ts);
 * - the control routes (host-routes.ts, shapes in control-api.ts) and the NBD backend (host-nbd.ts).
 */
import { DconnectError } from '../core/errors.js';
import type { FaultSpec } from '../runtime/faults.js';
import type { Topology } from '../topology/schema.js';
import { startControlServer, type ControlServer } from './control-http.js';
import { hostNbdBackend } from './host-nbd.js';
import { hostRoutes } from './host-routes.js';
import { HostSession, SessionManager } from './host-session.js';
import { JobQueue } from './job-queue.js';
import { failOrphanedJobs, runJobOnSession } from './job-runner.js';
import { JobStore } from './job-store.js';
import type { CaptureRoute } from './live-capture.js';
import { startNbdServer, type NbdServer } from './nbd-server.js';
import { ensurePskFile } from './nbd-tls.js';
import { HOST_NODE, linkOwners } from './placement.js';
import type { Pace } from './realtime-scheduler.js';
import type { StateDir } from './state-dir.js';
import { UdpTransport } from './udp-transport.js';
import { wallClock } from './watchdog.js';

export interface HostNodeOptions {
  topology: Topology;
  state: StateDir;
  seed: number;
  pace: Pace;
  /** Burst granularity's largest burst, bytes (0: per TLP): the fabric's setting. */
  burstBytes: number;
  dilation: number;
  hardLimitMs?: number;
  listen: { host: string; port: number };
  /** The fabric key (udp-transport.ts UdpTransportOptions.key). */
  key: Uint8Array | null;
  /** Box addresses given on the command line; others are read from the state directory's node records at each session. */
  peers: Record<string, { host: string; port: number }>;
  tcp?: { host: string; port: number };
  /** Serve NBD on loopback TCP too (`--nbd HOST:PORT`); the Unix socket nbd.sock is always there. */
  nbdTcp?: { host: string; port: number };
  /** Plain NBD on `nbdTcp` (`--nbd-insecure`); otherwise TLS-PSK with the keys in `state.nbdPskPath`. */
  nbdInsecure?: boolean;
  faults: FaultSpec[];
  /** A box that sends nothing (not even a keepalive) this long while the host waits on it is lost, ms. */
  peerTimeoutMs: number;
  log: (line: string) => void;
}

export interface RunningHost {
  transport: UdpTransport;
  control: ControlServer;
  nbd: NbdServer;
  stop(): Promise<void>;
}

export async function runHostNode(o: HostNodeOptions): Promise<RunningHost> {
  const t = o.topology;
  const jobs = new JobStore(o.state.jobsDir);
  const transport = await UdpTransport.open({ node: HOST_NODE, bind: o.listen, epoch: 0, role: 'host', key: o.key, faults: o.faults, seed: o.seed, onKeepalive: (b, inc, st) => sessions.keepalive(b, inc, st) });
  const boxSocket = (b: string) => o.state.readNodeRecord(b)?.control?.socket ?? `${o.state.root}/${b}.sock`;
  /** A box with its address and pid from its node record, for messages. */
  const boxLabel = (b: string): string => {
    const rec = o.state.readNodeRecord(b);
    return `${b}${rec ? ` (udp ${rec.udp.host}:${rec.udp.port}, pid ${rec.pid})` : ''}`;
  };
  const resolvePeers = (): void => {
    for (const { name: b } of t.boxes) {
      const given = o.peers[b];
      const addr = given ?? o.state.readNodeRecord(b)?.udp;
      if (!addr) throw new DconnectError('NOT_RUNNING', `no address for box ${b}: it has no node record in ${o.state.root} and no --peer ${b}=HOST:PORT was given`, `start it (dconnect up, or dconnect node --name ${b}) or pass --peer`);
      transport.setPeer(b, addr);
    }
  };
  const sessions = new SessionManager(() => {
    resolvePeers();
    return new HostSession({ topology: t, seed: o.seed, burstBytes: o.burstBytes, pace: o.pace, dilation: o.dilation, hardLimitMs: o.hardLimitMs, transport, epoch: o.state.nextEpoch(), clock: wallClock, peerTimeoutMs: o.peerTimeoutMs, label: boxLabel, logOf: (b) => `${o.state.root}/logs/${b}.log`, log: o.log });
  });

  /** Which node records each captured link: the host its crossing cables, a box its own; refuses others (and, when checking, a box without a control socket). */
  const owners = linkOwners(t);
  const captureRoute = (links: string[], check = false): CaptureRoute => {
    const crossing = (sessions.current()?.crossing ?? []).map((c) => c.name);
    const route: CaptureRoute = { host: [], boxes: new Map() };
    for (const l of links) {
      if (crossing.includes(l)) route.host.push(l);
      else if (owners.has(l) && owners.get(l) !== HOST_NODE) {
        const box = owners.get(l)!;
        if (check && !o.state.readNodeRecord(box)?.control) throw new DconnectError('BAD_OPTION', `--capture ${l}: box ${box} has no control socket here (a box on another machine)`, `capture the links the host crosses (${crossing.join(', ')}), or ${l} in simulation`);
        route.boxes.set(box, [...(route.boxes.get(box) ?? []), l]);
      } else throw new DconnectError('BAD_OPTION', `--capture ${l}: no such link in topology ${t.name}`, `links: ${[...crossing, ...owners.keys()].join(', ')} (dconnect links lists them)`);
    }
    return route;
  };

  const queue: JobQueue = new JobQueue({
    start: (job, done) => runJobOnSession({ jobs, sessions, queue: () => queue, pace: o.pace, dilation: o.dilation, burstBytes: o.burstBytes, captureRoute, setTap: (tap) => (transport.tap = tap), boxSocket, log: o.log }, job, done),
  });
  failOrphanedJobs(jobs);
  const routes = hostRoutes({ topology: t, state: o.state, pace: o.pace, dilation: o.dilation, sessions, jobs, queue, transport, checkCapture: (links) => void captureRoute(links, true), boxSocket, log: o.log });
  const control = await startControlServer({ socketPath: o.state.controlSocketPath, tcp: o.tcp, ...(o.tcp ? { token: o.state.controlToken() } : {}), routes });
  // Boot now, so the exports are known when the first NBD client lists them.
  await sessions.booted().catch((e: Error) => o.log(`boot failed: ${e.message} (the next request retries)`));
  const tls = o.nbdTcp && !o.nbdInsecure ? ensurePskFile(o.state.nbdPskPath) : null;
  if (tls?.created) o.log(`NBD TLS keys made in ${o.state.nbdPskPath}`);
  if (o.nbdTcp && o.nbdInsecure) o.log(`warning: NBD on TCP ${o.nbdTcp.host}:${o.nbdTcp.port} without TLS (--nbd-insecure): anyone who can reach the port reads and writes every drive`);
  const nbd = await startNbdServer({ backend: hostNbdBackend(sessions, boxSocket), socketPath: o.state.nbdSocketPath, tcp: o.nbdTcp, ...(tls ? { tls: { keys: tls.keys } } : { tcpInsecure: true }), log: o.log });
  o.log(`NBD exports ${sessions.exports.map((e) => e.name).join(', ')} on ${nbd.socketPath}${nbd.tcp ? ` and ${tls ? 'nbds' : 'nbd'}://${nbd.tcp.host}:${nbd.tcp.port}` : ''}`);
  return {
    transport,
    control,
    nbd,
    stop: async () => {
      sessions.halt();
      await nbd.close();
      await control.close();
      await transport.close();
    },
  };
}
