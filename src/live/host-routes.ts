/**
 * The host node's control routes (control-api.ts `hostApi`, plus the web view's, view-routes.ts): each
 * request body parsed with its route's schema before a handler sees it; the handlers read the session,
 * the job store and the queue they are given.
 */
import { existsSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import { captureFormat } from '../runtime/capture.js';
import { viewTopology, type ViewTopology } from '../runtime/view-topology.js';
import { deviceKinds } from '../topology/device-registry.js';
import type { Topology } from '../topology/schema.js';
import { hostApi, route, type BodyOf, type JobRecord, type JobView } from './control-api.js';
import type { Route } from './control-http.js';
import { checkFileJob } from './file-job.js';
import { fabricCounters, ownerOfSource, type FabricCounters } from './fabric-counters.js';
import type { SessionManager } from './host-session.js';
import type { JobQueue } from './job-queue.js';
import type { JobStore } from './job-store.js';
import { checkJob, type JobRequest } from './live-job.js';
import { HOST_NODE } from './placement.js';
import type { Pace } from './realtime-scheduler.js';
import { liveError, type StateDir } from './state-dir.js';
import type { UdpTransport } from './udp-transport.js';
import { viewRoutes } from './view-routes.js';

export interface HostRoutesContext {
  topology: Topology;
  state: StateDir;
  pace: Pace;
  dilation: number;
  sessions: SessionManager;
  jobs: JobStore;
  queue: JobQueue;
  transport: UdpTransport;
  /** Checks a capture's links (throws BAD_OPTION naming a link no node here can record). */
  checkCapture(links: string[]): void;
  boxSocket(box: string): string;
  log(line: string): void;
}

/** A job as the API shows it: its record with live progress while it runs. */
export function jobView(rec: JobRecord, queue: JobQueue): JobView {
  const running = queue.current();
  const live = running?.id === rec.id ? running : null;
  return { ...rec, bytesDone: live ? live.bytes : rec.state === 'done' ? rec.lengthBytes : rec.doneBytes, ...(rec.state === 'verifying' && live ? { verifiedBytes: live.verifiedBytes } : {}) };
}

export function hostRoutes(c: HostRoutesContext): Route[] {
  const t = c.topology;
  const view = (rec: JobRecord) => jobView(rec, c.queue);
  /** Every node's counters, each source from the node that runs it (fabric-counters.ts): GET /counters' `fabric`, the web view. */
  const wholeFabric = (): Promise<FabricCounters> => {
    const s = c.sessions.current();
    return fabricCounters(t, { trace: s ? s.fabric.trace.snapshot() : c.sessions.lastTrace, gauges: s ? s.fabric.trace.gauges() : {}, simulatedSeconds: s ? s.scheduler.now() / 1e12 : 0 }, c.boxSocket);
  };
  let picture: ViewTopology | null = null;
  const viewOf = async (): Promise<ViewTopology> => {
    if (picture) return picture;
    const m = (await c.sessions.booted()).manager;
    const devices = Object.fromEntries(deviceKinds.flatMap((k) => k.driver.devices(m)).map((d) => [`${d.box}.slot${d.slot}`, d.name]));
    return (picture = viewTopology(t, devices));
  };

  return [
    route(hostApi.status, () => {
      const s = c.sessions.current();
      return {
        node: HOST_NODE,
        pid: process.pid,
        pace: c.pace,
        dilation: c.dilation,
        session: s ? { epoch: s.epoch, booted: s.host !== null, events: s.scheduler.eventsExecuted, simulatedSeconds: s.scheduler.now() / 1e12, lag: s.scheduler.lagSummary() } : null,
        transport: { ...c.transport.counters },
        jobs: c.jobs.list().map(view),
      };
    }),
    route(hostApi.counters, async () => {
      const s = c.sessions.current();
      return { epoch: s?.epoch ?? null, trace: s ? s.fabric.trace.snapshot() : c.sessions.lastTrace, ...(s ? {} : { ended: true as const }), transport: { ...c.transport.counters }, fabric: await wholeFabric() };
    }),
    ...viewRoutes({ topology: viewOf, counters: wholeFabric, jobs: () => c.jobs.list().map(view), ownerOf: (source) => ownerOfSource(t, source) }),
    route(hostApi.devices, async () => {
      const host = await c.sessions.booted();
      // Every kind's devices, as its driver recorded them (the rows of `dconnect devices`; a new kind appears without a change here).
      return { devices: deviceKinds.flatMap((k) => k.driver.devices(host.manager).map((d) => ({ kind: k.kind, ...d }))) };
    }),
    route(hostApi.submit, async ({ body }) => {
      const req = jobRequestOf(body, t, c.state);
      const host = await c.sessions.booted();
      if (req.files) checkFileJob(host, req);
      else checkJob(host, req); // before anything is recorded or written
      if (req.capture) c.checkCapture(req.capture.links);
      c.queue.assertRoom();
      const rec = c.jobs.create(req);
      c.log(`job ${rec.id}: ${req.src} -> ${req.dst}, ${req.lengthBytes} bytes via ${req.via}`);
      c.queue.submit(rec.id);
      return view(c.jobs.require(rec.id));
    }),
    route(hostApi.jobs, () => c.jobs.list().map(view)),
    route(hostApi.job, ({ params }) => view(c.jobs.require(params.id))),
    route(hostApi.cancel, ({ params }) => {
      const rec = c.jobs.require(params.id);
      // A running job stops at its next segment boundary or verification chunk.
      if (rec.state === 'queued' && c.queue.cancel(rec.id) === 'dequeued') return view(c.jobs.update(rec.id, { state: 'cancelled' }));
      if (rec.state === 'running' || rec.state === 'verifying') c.queue.cancel(rec.id);
      return view(c.jobs.require(rec.id));
    }),
    route(hostApi.resume, ({ params, body }) => {
      const rec = c.jobs.require(params.id);
      if (rec.state !== 'failed' && rec.state !== 'cancelled') throw new DconnectError('CONFLICT', `job ${rec.id} is ${rec.state}: only a failed or cancelled job resumes`);
      // { verify: false } (copy --resume J --no-verify) changes the job's choice; no body keeps it.
      const verify = body?.verify;
      c.queue.assertRoom();
      const r = c.jobs.update(rec.id, { state: 'queued', resumes: rec.resumes + 1, error: undefined, ...(verify === undefined ? {} : { verify }) });
      c.log(`job ${rec.id}: resumed from byte ${rec.doneBytes}`);
      c.queue.submit(rec.id);
      return view(r);
    }),
  ];
}

/** A job request as the schema parsed it, completed: the topology's chunk and depth, the host's clock for a file job's ctime, a capture's file in the state directory. */
function jobRequestOf(b: BodyOf<typeof hostApi.submit>, t: Topology, state: StateDir): JobRequest {
  const files = b.files ? { srcPath: b.files.srcPath, dstPath: b.files.dstPath, recursive: b.files.recursive ?? false, force: b.files.force ?? false, nowSec: b.files.nowSec ?? Math.floor(Date.now() / 1000) } : undefined;
  return {
    src: b.src,
    dst: b.dst,
    srcOffset: files ? 0 : (b.srcOffset ?? 0),
    dstOffset: files ? 0 : (b.dstOffset ?? 0),
    lengthBytes: files ? 0 : b.lengthBytes!,
    ...(files ? { files } : {}),
    via: b.via ?? 'dc-buffer',
    chunkBytes: b.chunkBytes ?? t.copy.chunkBytes,
    depth: b.depth ?? t.copy.depth,
    ...(b.capture ? { capture: captureOf(b.capture, state) } : {}),
    verify: b.verify ?? true,
  };
}

/**
 * A job's capture: links (names) and the capture file's name. A client never names a path on this
 * machine: the file goes into the state directory's captures/ folder (StateDir.capturePath), is
 * created new (never replacing a file), and one that exists is refused before the job is recorded.
 */
function captureOf(c: { links: string[]; name: string }, state: StateDir): { links: string[]; path: string } {
  const path = state.capturePath(c.name);
  captureFormat(c.name, c.links, 'capture'); // several cables need pcapng
  if (existsSync(path)) throw liveError('CONFLICT', `${path} exists: a capture never replaces a file`, `choose another --pcap name, or remove ${path}`);
  return { links: c.links, path };
}
