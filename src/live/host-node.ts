/**
 * The host node: the host of the topology (root complex, host link, server-side bridge; the DC
 * command, operator and manager) in its own process, with the control API on a Unix socket (and
 * loopback TCP when asked).
 *
 * A session is one incarnation of the host's model: a fresh real-time scheduler and fabric part, a new
 * epoch (so the boxes rebuild theirs), then boot (PCI enumeration and NVMe bring-up over the network).
 * It starts when first needed and lasts until something breaks it: a box that stops answering while
 * the host waits on it, or a model error. Then the running job fails with the range done so far, and
 * the next request starts a new session.
 *
 * Jobs run one at a time in submission order (a queue; each job already keeps `depth` commands in
 * flight). Their records are durable in the state directory (job-store.ts).
 */
import { existsSync } from 'node:fs';
import { deviceKinds } from '../topology/device-registry.js';
import { DconnectError } from '../core/errors.js';
import { granularityInfo } from '../runtime/moves.js';
import { startBoot, type BootedHost } from '../runtime/boot.js';
import type { FaultSpec } from '../runtime/faults.js';
import type { Fabric } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';
import { startControlServer, type ControlServer, type Route } from './control-http.js';
import { JobStore, type FileJobSpec, type JobRecord } from './job-store.js';
import { checkJob, runJob, SlotPool, type JobRequest } from './live-job.js';
import { checkFileJob, runFileJob, type FileJobResult } from './file-job.js';
import { boxExtents, NbdIo, type NbdExportInfo } from './nbd-backend.js';
import { startNbdServer, type NbdBackend, type NbdServer } from './nbd-server.js';
import { ensurePskFile } from './nbd-tls.js';
import { JobCapture, type CaptureRoute } from './live-capture.js';
import { captureFormat } from '../runtime/capture.js';
import { viewTopology, type ViewTopology } from '../runtime/view-topology.js';
import { fabricCounters, ownerOfSource } from './fabric-counters.js';
import { viewRoutes } from './view-routes.js';
import { buildNodeFabric, type CrossingCable } from './node-fabric.js';
import { HOST_NODE, linkOwners } from './placement.js';
import { RealtimeScheduler, type Pace } from './realtime-scheduler.js';
import { liveError, type StateDir } from './state-dir.js';
import { UdpTransport } from './udp-transport.js';

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

interface Session {
  epoch: number;
  scheduler: RealtimeScheduler;
  host: BootedHost<RealtimeScheduler> | null;
  booted: Promise<BootedHost<RealtimeScheduler>>;
  pool: SlotPool | null;
  nbd: NbdIo | null;
  /** NBD requests in flight per box (the watchdog waits on those boxes too), and their rejecters for when the session ends. */
  nbdWaits: Map<string, number>;
  nbdPending: Set<(e: Error) => void>;
  /** Boxes the host waits on now (booting: all; a job: those it uses); empty when idle. */
  waitingOn: Set<string>;
  /** Wall ms since which the host has been waiting on some box (null: idle at the watchdog's last look). */
  waitSinceMs: number | null;
  /** Each box's incarnation as first heard in this session (a keepalive with another means it restarted). */
  incarnations: Map<string, number>;
  fabric: Fabric<RealtimeScheduler>;
  /** The cables between this node and the boxes (what a live capture can record). */
  crossing: CrossingCable[];
  fail(e: Error): void;
  failed: Error | null;
}

export interface RunningHost {
  transport: UdpTransport;
  control: ControlServer;
  nbd: NbdServer;
  stop(): Promise<void>;
}

const WATCHDOG_MS = 200;

export async function runHostNode(o: HostNodeOptions): Promise<RunningHost> {
  const t = o.topology;
  const boxes = t.boxes.map((b) => b.name);
  const jobs = new JobStore(o.state.jobsDir);
  const transport = await UdpTransport.open({ node: HOST_NODE, bind: o.listen, epoch: 0, role: 'host', key: o.key, faults: o.faults, seed: o.seed, onKeepalive: (b, inc, st) => onKeepalive(b, inc, st) });
  let session: Session | null = null;
  /** The exports of the last booted session (NBD lists them even while a new session boots). */
  let lastExports: NbdExportInfo[] = [];
  /** The counters of the last session that ended (GET /counters shows them until a new one boots). */
  let lastTrace: Record<string, Record<string, number>> = {};
  const queue: string[] = [];
  let running: { id: string; bytes: number; verifiedBytes: number; onSessionLost: (e: Error) => void } | null = null;
  const cancels = new Set<string>();

  const resolvePeers = (): void => {
    for (const b of boxes) {
      const given = o.peers[b];
      const rec = given ? null : o.state.readNodeRecord(b);
      const addr = given ?? rec?.udp;
      if (!addr) throw new DconnectError('NOT_RUNNING', `no address for box ${b}: it has no node record in ${o.state.root} and no --peer ${b}=HOST:PORT was given`, `start it (dconnect up, or dconnect node --name ${b}) or pass --peer`);
      transport.setPeer(b, addr);
    }
  };

  const newSession = (): Session => {
    resolvePeers();
    const epoch = o.state.nextEpoch();
    transport.detachAll();
    transport.setEpoch(epoch);
    const scheduler = new RealtimeScheduler({ dilation: o.dilation, pace: o.pace, hardLimitMs: o.hardLimitMs });
    let resolve!: (h: BootedHost<RealtimeScheduler>) => void;
    let reject!: (e: Error) => void;
    const booted = new Promise<BootedHost<RealtimeScheduler>>((res, rej) => ((resolve = res), (reject = rej)));
    booted.catch(() => {}); // observed by whoever awaits it
    const s: Session = {
      epoch,
      scheduler,
      host: null,
      booted,
      pool: null,
      nbd: null,
      nbdWaits: new Map(),
      nbdPending: new Set(),
      fabric: null as unknown as Fabric<RealtimeScheduler>, // set right below, once built
      crossing: [],
      waitingOn: new Set(boxes),
      waitSinceMs: performance.now(),
      incarnations: new Map(),
      failed: null,
      fail: (e) => {
        if (s.failed) return;
        s.failed = e;
        lastTrace = s.fabric ? s.fabric.trace.snapshot() : lastTrace;
        scheduler.stop();
        if (session === s) session = null;
        o.log(`session ${epoch} ended: ${e.message}`);
        reject(e);
        running?.onSessionLost(e);
        for (const r of s.nbdPending) r(e);
        s.nbdPending.clear();
      },
    };
    const { fabric, crossing } = buildNodeFabric(t, { node: HOST_NODE, seed: o.seed, scheduler, transport, burstBytes: o.burstBytes });
    s.fabric = fabric;
    s.crossing = crossing;
    scheduler.start((e) => s.fail(e));
    o.log(`session ${epoch}: booting (PCI enumeration and NVMe bring-up over the network)`);
    startBoot(
      fabric,
      { maxTransferBytes: 32 << 20 },
      (host) => {
        s.host = host;
        s.pool = new SlotPool(host);
        s.nbd = new NbdIo(host);
        lastExports = s.nbd.exports();
        s.waitingOn.clear();
        o.log(`session ${epoch}: booted: ${host.manager.blockDevices().map((d) => d.name).join(', ')}; relays ${host.manager.relays().map((r) => r.name).join(', ') || 'none'}`);
        resolve(host);
      },
      (e) => s.fail(e instanceof Error ? e : new Error(String(e))),
    );
    return s;
  };

  const booted = (): Promise<BootedHost<RealtimeScheduler>> => {
    if (!session) session = newSession();
    return session.booted;
  };

  // While the host waits on boxes (boot, a job using them, NBD requests to their drives), a box is
  // judged by what it sends, never by data progress (a paced or loaded copy may be slow, and is not
  // lost): silent for peerTimeoutMs means stopped; a keepalive with another incarnation than the one
  // this session met means restarted (it knows nothing of the session); one saying its model stopped
  // means just that. The session ends; the next request starts a new one.
  const watchdog = setInterval(() => {
    const s = session;
    if (!s || s.failed || (s.waitingOn.size === 0 && s.nbdWaits.size === 0)) {
      if (s) s.waitSinceMs = null;
      return;
    }
    const now = performance.now();
    s.waitSinceMs ??= now;
    const waiting = new Set([...s.waitingOn, ...s.nbdWaits.keys()]);
    // Silence counts from when the host began to wait, at the earliest: a box need not be heard while nothing is asked of it.
    const silenceMs = (b: string) => now - Math.max(transport.lastHeardMs(b) ?? 0, s.waitSinceMs!);
    const silent = [...waiting].filter((b) => silenceMs(b) > o.peerTimeoutMs);
    if (silent.length === 0) return;
    const what = `box ${silent.map(boxLabel).join(', ')} stopped answering: nothing from it for ${(silenceMs(silent[0]!) / 1000).toFixed(1)} s (--peer-timeout ${o.peerTimeoutMs} ms)`;
    s.fail(new DconnectError('BOX_LOST', what, 'is it running? dconnect status shows the nodes; dconnect up restarts stopped ones'));
  }, WATCHDOG_MS);

  /** A box with its address and pid from its node record, for messages. */
  function boxLabel(b: string): string {
    const rec = o.state.readNodeRecord(b);
    return `${b}${rec ? ` (udp ${rec.udp.host}:${rec.udp.port}, pid ${rec.pid})` : ''}`;
  }

  /** A keepalive (udp-transport.ts): the first of a session records the box's incarnation; another one, or a stopped model, ends the session. */
  function onKeepalive(box: string, incarnation: number, state: number): void {
    const s = session;
    if (!s || s.failed) return;
    const met = s.incarnations.get(box);
    if (met === undefined) s.incarnations.set(box, incarnation);
    else if (met !== incarnation) s.fail(new DconnectError('BOX_LOST', `box ${boxLabel(box)} restarted during session ${s.epoch}: it knows nothing of this session`, 'the next request starts a new session; dconnect copy --resume continues a failed job'));
    if (state === 1 && !s.failed) s.fail(new DconnectError('BOX_LOST', `box ${boxLabel(box)}: its model stopped with an error (its log says which)`, `see ${o.state.root}/logs/${box}.log`));
  }

  const pump = (): void => {
    if (running || queue.length === 0) return;
    const id = queue.shift()!;
    const rec = jobs.require(id);
    const r = (running = { id, bytes: rec.doneBytes, verifiedBytes: 0, onSessionLost: (_e: Error) => {} });
    // A capture lasts as long as this run of the job (a resumed job captures again, into the same file).
    let capture: JobCapture | null = null;
    const captureReady: Promise<void> = rec.capture
      ? JobCapture.start({ path: rec.capture.path, route: captureRoute(rec.capture.links), setTap: (tap) => (transport.tap = tap), boxSocket: (b) => o.state.readNodeRecord(b)?.control?.socket ?? `${o.state.root}/${b}.sock` }).then(
          (c) => void (capture = c),
          (e: Error) => o.log(`job ${id}: no capture: ${e.message}`),
        )
      : Promise.resolve();
    const finish = (patch: Partial<JobRecord>) => {
      if (running !== r) return;
      session?.waitingOn.clear();
      cancels.delete(id);
      const record = (p: Partial<JobRecord>) => {
        running = null;
        const after = jobs.update(id, p);
        o.log(`job ${id}: ${after.state}${after.error ? `: ${after.error.message}` : ''}`);
        pump();
      };
      const c = capture as JobCapture | null;
      if (!c) return record(patch);
      // The parts are stopped and merged before the job says it is done, so the file is whole then.
      const res = (patch.result ?? {}) as Record<string, unknown>;
      c.stop().then(
        (captured) => record({ ...patch, result: { ...res, captured } }),
        (e: Error) => record({ ...patch, result: { ...res, captureError: e.message } }),
      );
    };
    const failWith = (e: Error) => {
      const cur = jobs.require(id);
      const err = e as DconnectError;
      const marker = cur.files ? fileJobMarker(cur) : `bytes [0, ${cur.doneBytes}) of the range are copied and flushed`;
      // A file job refused by its file systems (no such path, a name taken, no space) fails the same way again: no resume.
      const final = cur.files !== undefined && (err.code?.startsWith('FS_') || err.code === 'BAD_OPTION');
      finish({ state: 'failed', error: { code: err.code ?? 'INTERNAL', message: e.message.includes('copied and flushed') || e.message.includes(marker) ? e.message : `${e.message}; ${marker}`, hint: final || err.hint?.includes('--resume') ? err.hint : `${err.hint ? `${err.hint}; then ` : ''}dconnect copy --resume ${id} --live finishes it` } });
    };
    r.onSessionLost = failWith;
    jobs.update(id, { state: 'running', error: undefined });
    o.log(`job ${id}: running from byte ${rec.doneBytes} of ${rec.lengthBytes}`);
    captureReady.then(() => booted()).then(
      (host) => {
        const s = session!;
        host.fabric.scheduler.inject(() => {
          if (running !== r) return;
          try {
            if (rec.files) {
              const { boxes } = runFileJob(
                host,
                s.pool!,
                rec,
                {
                  planned: (plan) => {
                    rec.files = { ...rec.files!, plan };
                    rec.lengthBytes = plan.dataBytes;
                    jobs.update(id, { files: rec.files, lengthBytes: plan.dataBytes });
                    o.log(`job ${id}: reserved ${plan.files.length} files (${plan.dataBytes} bytes of data in ${plan.runs.length} runs) on ${rec.dst}`);
                  },
                  progress: (n) => void (r.bytes = n),
                  segmentDone: (n) => {
                    r.bytes = n;
                    jobs.update(id, { doneBytes: n });
                  },
                  verified: (n) => void (r.verifiedBytes = n),
                  verifying: () => void jobs.update(id, { state: 'verifying' }),
                  cancelled: () => cancels.has(id),
                },
                (res: FileJobResult | 'cancelled') =>
                  res === 'cancelled'
                    ? finish({ state: 'cancelled' })
                    : finish({ state: res.verified !== false ? 'done' : 'failed', doneBytes: rec.lengthBytes, result: { ...res, pace: o.pace, dilation: o.dilation, granularity: granularityInfo(o.burstBytes), lag: s.scheduler.lagSummary() }, ...(res.verified !== false ? {} : { error: { code: 'VERIFY_FAILED', message: `copied files differ from their sources: ${res.checks.map((c) => `${c.dstPath}: ${c.problem}`).join('; ')}` } }) }),
                failWith,
              );
              if (running === r) for (const b of boxes) s.waitingOn.add(b);
              return;
            }
            const { boxes } = runJob(
              host,
              s.pool!,
              rec,
              {
                progress: (n) => void (r.bytes = n),
                segmentDone: (n) => {
                  r.bytes = n;
                  jobs.update(id, { doneBytes: n });
                },
                verified: (n) => void (r.verifiedBytes = n),
                verifying: () => {
                  jobs.update(id, { state: 'verifying', doneBytes: rec.lengthBytes });
                  // A capture holds the move, not the verification's reads: it ends here (finish merges it).
                  void (capture as JobCapture | null)?.stop().catch(() => {});
                },
                cancelled: () => cancels.has(id),
              },
              (res) => (res === 'cancelled' ? finish({ state: 'cancelled' }) : finish({ state: res.verified !== false ? 'done' : 'failed', doneBytes: rec.lengthBytes, result: { ...res, pace: o.pace, dilation: o.dilation, granularity: granularityInfo(o.burstBytes), lag: s.scheduler.lagSummary() }, ...(res.verified !== false ? {} : { error: { code: 'VERIFY_FAILED', message: `the destination range differs from the source (sha256 ${res.dstSha256} != ${res.srcSha256})` } }) })),
              failWith,
            );
            if (running === r) for (const b of boxes) s.waitingOn.add(b); // not if it already ended (cancelled before its first segment)
          } catch (e) {
            failWith(e as Error);
          }
        });
      },
      failWith,
    );
  };

  /** Which node records each captured link: the host its crossing cables, a box its own; refuses others (and, when checking, a box without a control socket). */
  const owners = linkOwners(t);
  const captureRoute = (links: string[], check = false): CaptureRoute => {
    const crossing = (session?.crossing ?? []).map((c) => c.name);
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

  const publicRecord = (rec: JobRecord) => ({ ...rec, bytesDone: running?.id === rec.id ? running.bytes : rec.state === 'done' ? rec.lengthBytes : rec.doneBytes, ...(rec.state === 'verifying' && running?.id === rec.id ? { verifiedBytes: running.verifiedBytes } : {}) });

  /** Every node's counters, each source from the node that runs it (fabric-counters.ts): GET /counters' `fabric`, the web view. */
  const boxSocket = (b: string) => o.state.readNodeRecord(b)?.control?.socket ?? `${o.state.root}/${b}.sock`;
  const wholeFabric = () => fabricCounters(t, { trace: session ? session.fabric.trace.snapshot() : lastTrace, gauges: session ? session.fabric.trace.gauges() : {}, simulatedSeconds: session ? session.scheduler.now() / 1e12 : 0 }, boxSocket);
  let view: ViewTopology | null = null;
  const viewOf = async (): Promise<ViewTopology> => {
    if (view) return view;
    const m = (await booted()).manager;
    const devices = Object.fromEntries(deviceKinds.flatMap((k) => k.driver.devices(m)).map((d) => [`${d.box}.slot${d.slot}`, d.name]));
    return (view = viewTopology(t, devices));
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: '/status',
      handler: () => ({
        node: HOST_NODE,
        pid: process.pid,
        pace: o.pace,
        dilation: o.dilation,
        session: session ? { epoch: session.epoch, booted: session.host !== null, events: session.scheduler.eventsExecuted, simulatedSeconds: session.scheduler.now() / 1e12, lag: session.scheduler.lagSummary() } : null,
        transport: transport.counters,
        jobs: jobs.list().map(publicRecord),
      }),
    },
    {
      method: 'GET',
      pattern: '/counters',
      handler: async () => ({ epoch: session?.epoch ?? null, trace: session ? session.fabric.trace.snapshot() : lastTrace, ...(session ? {} : { ended: true }), transport: transport.counters, fabric: await wholeFabric() }),
    },
    ...viewRoutes({ topology: viewOf, counters: wholeFabric, jobs: () => jobs.list().map(publicRecord), ownerOf: (source) => ownerOfSource(t, source) }),
    {
      method: 'GET',
      pattern: '/devices',
      handler: async () => {
        const host = await booted();
        // Every kind's devices, as its driver recorded them (the rows of `dconnect devices`; a new kind appears without a change here).
        return { devices: deviceKinds.flatMap((k) => k.driver.devices(host.manager).map((d) => ({ kind: k.kind, ...d }))) };
      },
    },
    {
      method: 'POST',
      pattern: '/jobs',
      handler: async ({ body }) => {
        const req = jobRequestOf(body, t, o.state);
        const host = await booted();
        if (req.files) checkFileJob(host, req);
        else checkJob(host, req); // before anything is recorded or written
        if (req.capture) captureRoute(req.capture.links, true);
        const rec = jobs.create(req);
        queue.push(rec.id);
        o.log(`job ${rec.id}: ${req.src} -> ${req.dst}, ${req.lengthBytes} bytes via ${req.via}`);
        pump();
        return publicRecord(jobs.require(rec.id));
      },
    },
    { method: 'GET', pattern: '/jobs', handler: () => jobs.list().map(publicRecord) },
    { method: 'GET', pattern: '/jobs/:id', handler: ({ params }) => publicRecord(jobs.require(params.id)) },
    {
      method: 'POST',
      pattern: '/jobs/:id/cancel',
      handler: ({ params }) => {
        const rec = jobs.require(params.id);
        if (rec.state === 'queued') {
          queue.splice(queue.indexOf(rec.id), 1);
          return publicRecord(jobs.update(rec.id, { state: 'cancelled' }));
        }
        if (rec.state === 'running' || rec.state === 'verifying') cancels.add(rec.id); // takes effect at the next segment boundary or verification chunk
        return publicRecord(jobs.require(rec.id));
      },
    },
    {
      method: 'POST',
      pattern: '/jobs/:id/resume',
      handler: ({ params, body }) => {
        const rec = jobs.require(params.id);
        if (rec.state !== 'failed' && rec.state !== 'cancelled') throw new DconnectError('CONFLICT', `job ${rec.id} is ${rec.state}: only a failed or cancelled job resumes`);
        // { verify: false } (copy --resume J --no-verify) changes the job's choice; no body keeps it.
        const verify = (body as { verify?: unknown } | undefined)?.verify;
        if (verify !== undefined && typeof verify !== 'boolean') throw new DconnectError('BAD_REQUEST', `field verify must be true or false, not ${JSON.stringify(verify)}`);
        const r = jobs.update(rec.id, { state: 'queued', resumes: rec.resumes + 1, error: undefined, ...(verify === undefined ? {} : { verify }) });
        queue.push(rec.id);
        o.log(`job ${rec.id}: resumed from byte ${rec.doneBytes}`);
        pump();
        return publicRecord(r);
      },
    },
  ];

  /** Runs `fn` on the booted session's NBD path inside a model event; the promise settles from the model (or when the session ends). */
  const viaModel = <T>(box: string | null, fn: (io: NbdIo, done: (e: Error | null, v?: T) => void) => void): Promise<T> =>
    booted().then(
      (host) =>
        new Promise<T>((resolve, reject) => {
          const s = session!;
          const count = (k: string, d: number) => {
            const n = (s.nbdWaits.get(k) ?? 0) + d;
            if (n > 0) s.nbdWaits.set(k, n);
            else s.nbdWaits.delete(k);
          };
          if (box) count(box, 1);
          s.nbdPending.add(reject);
          host.fabric.scheduler.inject(() => {
            try {
              fn(s.nbd!, (e, v) => {
                s.nbdPending.delete(reject);
                if (box) count(box, -1);
                if (e) reject(e);
                else resolve(v as T);
              });
            } catch (e) {
              s.nbdPending.delete(reject);
              if (box) count(box, -1);
              reject(e);
            }
          });
        }),
    );
  /** The box an export's drive is in (the watchdog waits on it while a request is out); null before boot. */
  const boxOf = (exp: string): string | null => session?.host?.manager.blockDevices().find((d) => d.name === exp)?.box ?? null;
  const backend: NbdBackend = {
    exports: () => lastExports.map((e) => ({ name: e.name, sizeBytes: e.sizeBytes, blockBytes: e.blockBytes, description: e.description })),
    read: (exp, offset, length) => viaModel<Uint8Array>(boxOf(exp), (io, done) => io.read(io.device(exp), offset, length, done)),
    write: (exp, offset, data, fua) => viaModel<void>(boxOf(exp), (io, done) => io.write(io.device(exp), offset, data, fua, done)),
    flush: (exp) => viaModel<void>(boxOf(exp), (io, done) => io.flush(io.device(exp), done)),
    // Advisory in NBD; the drive model has no deallocate (nbd-backend.ts).
    trim: (exp) => viaModel<void>(null, (io, done) => (io.device(exp), done(null))),
    writeZeroes: (exp, offset, length, fua) => viaModel<void>(boxOf(exp), (io, done) => io.zero(io.device(exp), offset, length, fua, done)),
    // Holes are the backing file's, so the box that has it answers (nbd-backend.ts); data without a booted session.
    blockStatus: async (exp, offset, length) => {
      const d = session?.host?.manager.blockDevices().find((x) => x.name === exp);
      if (!d) return [{ lengthBytes: length, state: 0 }];
      return boxExtents(o.state.readNodeRecord(d.box)?.control?.socket ?? `${o.state.root}/${d.box}.sock`, `${d.box}.slot${d.slot}`, offset, length);
    },
  };

  // Jobs left running or queued by a host that died are failed (their marker stands): resume continues them.
  for (const rec of jobs.list()) {
    if (rec.state === 'running' || rec.state === 'verifying' || rec.state === 'queued') {
      jobs.update(rec.id, { state: 'failed', error: { code: 'HOST_RESTARTED', message: `the host node stopped during job ${rec.id}; ${rec.files ? fileJobMarker(rec) : `bytes [0, ${rec.doneBytes}) of the range are copied and flushed`}`, hint: `dconnect copy --resume ${rec.id} --live finishes it` } });
    }
  }
  const control = await startControlServer({ socketPath: o.state.controlSocketPath, tcp: o.tcp, ...(o.tcp ? { token: o.state.controlToken() } : {}), routes });
  // Boot now, so the exports are known when the first NBD client lists them.
  await booted().catch((e: Error) => o.log(`boot failed: ${e.message} (the next request retries)`));
  const tls = o.nbdTcp && !o.nbdInsecure ? ensurePskFile(o.state.nbdPskPath) : null;
  if (tls?.created) o.log(`NBD TLS keys made in ${o.state.nbdPskPath}`);
  if (o.nbdTcp && o.nbdInsecure) o.log(`warning: NBD on TCP ${o.nbdTcp.host}:${o.nbdTcp.port} without TLS (--nbd-insecure): anyone who can reach the port reads and writes every drive`);
  const nbd = await startNbdServer({ backend, socketPath: o.state.nbdSocketPath, tcp: o.nbdTcp, ...(tls ? { tls: { keys: tls.keys } } : { tcpInsecure: true }), log: o.log });
  o.log(`NBD exports ${lastExports.map((e) => e.name).join(', ')} on ${nbd.socketPath}${nbd.tcp ? ` and ${tls ? 'nbds' : 'nbd'}://${nbd.tcp.host}:${nbd.tcp.port}` : ''}`);
  return {
    transport,
    control,
    nbd,
    stop: async () => {
      clearInterval(watchdog);
      session?.scheduler.stop();
      await nbd.close();
      await control.close();
      await transport.close();
    },
  };
}

/** Where a failed file job stands, for its error message. */
function fileJobMarker(rec: JobRecord): string {
  if (!rec.files?.plan) return 'nothing is reserved on the destination by this job';
  return `the destination files are reserved and empty${rec.doneBytes >= rec.lengthBytes ? '; their data is moved and flushed, not yet committed' : ''}`;
}

/** A job request from the API's JSON, checked field by field (sizes are bytes). */
function jobRequestOf(body: unknown, t: Topology, state: StateDir): JobRequest {
  if (!body || typeof body !== 'object') throw new DconnectError('BAD_REQUEST', 'the request body must be a JSON object', 'e.g. {"src":"sda","dst":"sdb","lengthBytes":1048576}');
  const b = body as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof b[k] !== 'string' || !b[k]) throw new DconnectError('BAD_REQUEST', `field ${k} must be a device name`);
    return b[k] as string;
  };
  const int = (k: string, dflt?: number) => {
    const v = b[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new DconnectError('BAD_REQUEST', `field ${k} must be a non-negative integer number of bytes, not ${JSON.stringify(b[k])}`);
    return v;
  };
  const via = b.via ?? 'dc-buffer';
  if (via !== 'dc-buffer' && via !== 'host') throw new DconnectError('BAD_REQUEST', `field via must be dc-buffer or host, not ${JSON.stringify(via)}`);
  const files = b.files === undefined ? undefined : fileSpecOf(b.files);
  return {
    src: str('src'),
    dst: str('dst'),
    srcOffset: files ? 0 : int('srcOffset', 0),
    dstOffset: files ? 0 : int('dstOffset', 0),
    lengthBytes: files ? 0 : int('lengthBytes'),
    ...(files ? { files } : {}),
    via,
    chunkBytes: int('chunkBytes', t.copy.chunkBytes),
    depth: int('depth', t.copy.depth),
    ...(b.capture === undefined ? {} : { capture: captureOf(b.capture, state) }),
    verify: b.verify === undefined ? true : b.verify === true ? true : b.verify === false ? false : (() => { throw new DconnectError('BAD_REQUEST', `field verify must be true or false, not ${JSON.stringify(b.verify)}`); })(),
  };
}

/** A file copy's request: `{ srcPath, dstPath, recursive?, force?, nowSec? }` (absolute paths on each drive's ext4). */
function fileSpecOf(v: unknown): FileJobSpec {
  const f = v as Record<string, unknown> | null;
  const path = (k: string) => {
    const p = f?.[k];
    if (typeof p !== 'string' || !p.startsWith('/') || p.length > 4096) throw new DconnectError('BAD_REQUEST', `field files.${k} must be an absolute path on the drive's file system, e.g. "/data/big.bin"`);
    return p;
  };
  const flag = (k: string) => {
    const x = f?.[k] ?? false;
    if (typeof x !== 'boolean') throw new DconnectError('BAD_REQUEST', `field files.${k} must be true or false`);
    return x;
  };
  if (!f || typeof f !== 'object' || Array.isArray(f)) throw new DconnectError('BAD_REQUEST', 'field files must be { srcPath, dstPath, recursive?, force? }');
  const nowSec = f.nowSec ?? Math.floor(Date.now() / 1000);
  if (typeof nowSec !== 'number' || !Number.isSafeInteger(nowSec) || nowSec < 0) throw new DconnectError('BAD_REQUEST', 'field files.nowSec must be seconds since 1970');
  return { srcPath: path('srcPath'), dstPath: path('dstPath'), recursive: flag('recursive'), force: flag('force'), nowSec };
}

/**
 * A job's capture request: links (names) and the capture file's name. A client never names a path on
 * this machine: the file goes into the state directory's captures/ folder (StateDir.capturePath), is
 * created new (never replacing a file), and one that exists is refused before the job is recorded.
 */
function captureOf(v: unknown, state: StateDir): { links: string[]; path: string } {
  const c = v as { links?: unknown; name?: unknown } | null;
  if (!c || !Array.isArray(c.links) || c.links.length === 0 || !c.links.every((l) => typeof l === 'string' && /^[\w.-]{1,64}$/.test(l)) || typeof c.name !== 'string') {
    throw new DconnectError('BAD_REQUEST', 'field capture must be { links: [names...], name: "file.pcap" } (the file is written into the state directory\'s captures/)');
  }
  const path = state.capturePath(c.name);
  captureFormat(c.name, c.links as string[], 'capture'); // several cables need pcapng
  if (existsSync(path)) throw liveError('CONFLICT', `${path} exists: a capture never replaces a file`, `choose another --pcap name, or remove ${path}`);
  return { links: c.links as string[], path };
}

