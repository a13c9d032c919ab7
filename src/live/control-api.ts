/**
 * The control API's shapes, defined once (issue 22 item 4): every route's request body and response
 * as a zod schema, the TypeScript types inferred from them, and the durable job record the job store
 * keeps. The server validates each request body with its route's schema (control-routes.ts `route`),
 * the client parses each answer with the same schema (control-client.ts), and the job store reads and
 * writes records through `jobRecordSchema` (job-store.ts), so the three cannot drift.
 *
 * Requests are strict (a misspelt field is named, not ignored); answers pass unknown fields through (a
 * newer host may add some, and `--json` prints what the host said). Messages say what a field must
 * be; `describeBadFields` prefixes the field's path and the value given.
 */
import { z } from 'zod';
import { DconnectError } from '../core/errors.js';
import type { ViewTopology } from '../runtime/view-topology.js';
import type { Route } from './control-http.js';

/** A zod option that makes every check of a value say `msg` (what the value must be). */
const must = (msg: string) => ({ errorMap: () => ({ message: msg }) });

/** A non-negative safe integer (bytes, counts), described as `what`. */
const count = (what = 'a non-negative integer') => z.number(must(what)).refine((v) => Number.isSafeInteger(v) && v >= 0, what);
const bytes = () => count('a non-negative integer number of bytes');
const flag = () => z.boolean(must('true or false'));
const numberMap = z.record(z.number());

/** A job id: `j` and a number from 1, at most 15 digits (a safe integer); anything else never reaches a path. */
export const JOB_ID = /^j[1-9]\d{0,14}$/;

export const JOB_STATES = ['queued', 'running', 'verifying', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

const viaSchema = z.enum(['dc-buffer', 'cmb', 'nearest', 'host'], must('dc-buffer, cmb, nearest or host'));
const errorSchema = z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }, must('{ code, message, hint? }'));
const absolutePath = z.string(must('an absolute path on the drive\'s file system, e.g. "/data/big.bin"')).refine((p) => p.startsWith('/') && p.length <= 4096, 'an absolute path on the drive\'s file system, e.g. "/data/big.bin"');
const hostLinkSchema = z.object({ upstreamPayloadBytes: z.number(), downstreamPayloadBytes: z.number() });
const lagSchema = z.object({ events: z.number().optional(), maxMs: z.number(), p99Ms: z.number() });

// ---------------------------------------------------------------- the job record (job-store.ts)

/** What a file job reserved: enough to move the data again and commit after a crash (host/fs/file-copy.ts, create.ts). */
export const filePlanSchema = z
  .object({
    runs: z.array(z.object({ srcByte: count(), dstByte: count(), lengthBytes: count() })),
    reservations: z.array(z.object({ ino: count(), extents: z.array(z.object({ logical: count(), physical: count(), length: count(), unwritten: z.boolean() })), treeBlocks: z.array(count()), sizeBytes: count() })),
    files: z.array(z.object({ srcPath: z.string(), dstPath: z.string(), sizeBytes: count(), dataBytes: count(), extents: count() })),
    directories: count(),
    skipped: z.array(z.string()),
    bytes: count(),
    dataBytes: count(),
  })
  .strict();
export type FilePlan = z.infer<typeof filePlanSchema>;

/** A file copy's paths and choices as recorded; `plan` once the destination is reserved and synced. */
export const fileJobSpecSchema = z
  .object({
    srcPath: absolutePath,
    dstPath: absolutePath,
    recursive: flag(),
    force: flag(),
    /** The new inodes' ctime (the client's clock when it asked). */
    nowSec: count('seconds since 1970'),
    plan: filePlanSchema.optional(),
  })
  .strict();
export type FileJobSpec = z.infer<typeof fileJobSpecSchema>;

/** What every finished run reports, with what the host adds (pace, dilation, granularity, lag, a capture's outcome). */
const runBaseSchema = z.object({
  mode: z.enum(['direct', 'conventional']),
  relay: z.string(),
  /** Bytes this run moved (a resumed job moves only the rest). */
  movedBytes: z.number(),
  wallSeconds: z.number(),
  mbPerSecWall: z.number(),
  simulatedSeconds: z.number(),
  mbPerSecSimulated: z.number(),
  /** Null: not verified (--no-verify). */
  verified: z.boolean().nullable(),
  /** Payload that crossed the host's PCIe link during the move (not the verification), bytes. */
  hostLink: hostLinkSchema,
  pace: z.string().optional(),
  dilation: z.number().optional(),
  granularity: z.object({ mode: z.enum(['tlp', 'burst']), burstBytes: z.number().optional(), relativeErrorBound: z.number().optional() }).optional(),
  lag: lagSchema.nullable().optional(),
  captured: z.object({ frames: z.number(), path: z.string() }).optional(),
  captureError: z.string().optional(),
});
/** A range copy's result (live-job.ts JobResult): its verification's time and both ranges' SHA-256. */
export const rangeResultSchema = runBaseSchema.extend({ bytes: z.number(), verifySeconds: z.number(), srcSha256: z.string(), dstSha256: z.string() });
/** A file copy's result (file-job.ts FileJobResult): what was copied and the metadata I/O. */
export const fileResultSchema = runBaseSchema
  .extend({
    files: z.number(),
    directories: z.number(),
    /** Bytes of the files, and of the runs moved (holes move nothing). */
    bytes: z.number(),
    dataBytes: z.number(),
    runs: z.number(),
    /** File-system metadata through the host's bounce buffers in this run (reserve and commit, not the verification), both drives. */
    metadata: z.object({ readBytes: z.number(), writtenBytes: z.number(), commands: z.number() }),
    /** The files that did not verify, with why (host/fs/file-copy.ts FileCheck). */
    checks: z.array(z.object({ dstPath: z.string(), verified: z.boolean(), problem: z.string().optional() })),
  });
export type RangeResult = z.infer<typeof rangeResultSchema>;
export type FileResult = z.infer<typeof fileResultSchema>;
/** A job that ended before a result (cancelled) may still report its capture. */
const captureNoteSchema = z.object({ captured: z.object({ frames: z.number(), path: z.string() }).optional(), captureError: z.string().optional() }).strict();
/** A job's result: a range copy's, a file copy's, or only a capture's outcome. */
export const jobResultSchema = z.union([rangeResultSchema, fileResultSchema, captureNoteSchema]);

/**
 * A live copy job, durable in the state directory's jobs/ (job-store.ts), in the manner of a restart
 * marker: `doneBytes` is the prefix of the range copied AND flushed on the destination.
 */
export const jobRecordSchema = z
  .object({
    id: z.string().regex(JOB_ID, 'a job id (j1, j2, ...)'),
    state: z.enum(JOB_STATES, must(`one of ${JOB_STATES.join(', ')}`)),
    src: z.string(must('a device name')),
    dst: z.string(must('a device name')),
    srcOffset: bytes(),
    dstOffset: bytes(),
    lengthBytes: bytes(),
    via: viaSchema,
    chunkBytes: bytes(),
    depth: count(),
    /** Read both ranges back through the devices and compare them at the end (default true). */
    verify: flag().optional(),
    /** Record the frames on these links into a pcap file (in the state directory's captures/) while the job runs. */
    capture: z.object({ links: z.array(z.string()), path: z.string() }).strict().optional(),
    /** Bytes from the start of the range that are copied AND flushed on the destination (a contiguous prefix). */
    doneBytes: bytes(),
    resumes: count(),
    error: errorSchema.optional(),
    result: jobResultSchema.optional(),
    createdAt: z.string(),
    updatedAt: z.string(),
    /**
     * A file copy (`copy --live sda:/data sdb:/backup`; live/file-job.ts): the offsets are 0, lengthBytes
     * is the data the runs move (0 until the destination is reserved), doneBytes reaches it once the
     * data is moved and flushed.
     */
    files: fileJobSpecSchema.optional(),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.doneBytes > r.lengthBytes) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['doneBytes'], message: `at most lengthBytes ${r.lengthBytes}` });
  });
export type JobRecord = z.infer<typeof jobRecordSchema>;

// ---------------------------------------------------------------- the host's routes

/**
 * POST /jobs: a range copy `{ src, dst, lengthBytes, srcOffset?, dstOffset?, ... }` or a file copy
 * `{ src, dst, files: { srcPath, dstPath, ... } }`; sizes in bytes. What is left out the host fills in
 * (chunkBytes and depth from its topology's copy block, files.nowSec from its clock).
 */
export const jobRequestSchema = z
  .object(
    {
      src: z.string(must('a device name')).min(1, 'a device name'),
      dst: z.string(must('a device name')).min(1, 'a device name'),
      srcOffset: bytes().optional(),
      dstOffset: bytes().optional(),
      lengthBytes: bytes().optional(),
      via: viaSchema.optional(),
      chunkBytes: bytes().optional(),
      depth: bytes().optional(),
      verify: flag().optional(),
      /** Links (names) and the capture file's name: never a path (the file goes into the state directory's captures/). */
      capture: z
        .object({ links: z.array(z.string(must('a link name')).regex(/^[\w.-]{1,64}$/, 'a link name (letters, digits, ".", "_" or "-"; dconnect links lists them)'), must('a list of link names')).min(1, 'a list of at least one link name'), name: z.string(must('a file name, e.g. "move.pcapng"')) }, must('{ links: [names...], name: "file.pcap" } (the file is written into the state directory\'s captures/)'))
        .strict()
        .optional(),
      files: z
        .object({ srcPath: absolutePath, dstPath: absolutePath, recursive: flag().optional(), force: flag().optional(), nowSec: count('seconds since 1970').optional() }, must('{ srcPath, dstPath, recursive?, force? }'))
        .strict()
        .optional(),
    },
    must('a JSON object, e.g. {"src":"sda","dst":"sdb","lengthBytes":1048576}'),
  )
  .strict()
  .superRefine((r, ctx) => {
    if (r.files === undefined && r.lengthBytes === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['lengthBytes'], message: 'a non-negative integer number of bytes' });
  });
export type JobRequestBody = z.input<typeof jobRequestSchema>;

/** POST /jobs/:id/resume: no body keeps the job's choices; `{ verify: false }` (copy --resume J --no-verify) finishes it unverified. */
export const resumeRequestSchema = z.object({ verify: flag().optional() }, must('a JSON object, e.g. {"verify":false}')).strict().optional();

/** A job as the API shows it: its record with `bytesDone` (live progress while it runs) and `verifiedBytes` while it verifies. */
export const jobViewSchema = z
  .object({
    id: z.string(),
    state: z.enum(JOB_STATES),
    src: z.string(),
    dst: z.string(),
    srcOffset: z.number(),
    dstOffset: z.number(),
    lengthBytes: z.number(),
    via: z.string(),
    doneBytes: z.number(),
    bytesDone: z.number(),
    verifiedBytes: z.number().optional(),
    resumes: z.number(),
    capture: z.object({ links: z.array(z.string()), path: z.string() }).passthrough().optional(),
    files: z.object({ srcPath: z.string(), dstPath: z.string(), plan: z.unknown().optional() }).passthrough().optional(),
    error: errorSchema.optional(),
    result: jobResultSchema.optional(),
  })
  .passthrough();
export type JobView = z.infer<typeof jobViewSchema>;

/** GET /status. */
export const hostStatusSchema = z
  .object({
    node: z.string(),
    pid: z.number(),
    pace: z.string(),
    dilation: z.number(),
    session: z.object({ epoch: z.number(), booted: z.boolean(), events: z.number(), simulatedSeconds: z.number(), lag: lagSchema.nullable() }).nullable(),
    transport: numberMap,
    jobs: z.array(jobViewSchema),
  })
  .passthrough();
export type HostStatus = z.infer<typeof hostStatusSchema>;

/** GET /devices: every device the host's drivers recorded, kind by kind in the registry's order (topology/device-kind.ts KnownDevice). */
export const devicesSchema = z
  .object({
    devices: z.array(
      z
        .object({ kind: z.string(), name: z.string(), box: z.string(), slot: z.number(), bdf: z.string(), capacityBytes: z.number(), bar0: z.number(), serial: z.string().optional(), mac: z.string().optional(), relayBytes: z.number().optional() })
        // A kind's own fields (topology/device-kind.ts KnownDevice) pass through.
        .catchall(z.union([z.string(), z.number()])),
    ),
  })
  .passthrough();
export type LiveDevicesAnswer = z.infer<typeof devicesSchema>;

/** A node's own counters (a box's GET /counters; the host's part of its own). Counter sets by trace source. */
export const nodeCountersSchema = z.object({ trace: z.record(numberMap), gauges: z.record(numberMap), simulatedSeconds: z.number() });

/** The whole fabric's counters, each source from the node that runs it (fabric-counters.ts). */
export const fabricCountersSchema = nodeCountersSchema.extend({ nodes: z.record(z.enum(['here', 'asked', 'unreachable'])), nodeSeconds: z.record(z.number()) });

/** GET /counters: the host's session's trace (or the last session's, `ended`), its transport's counters, and the whole fabric's. */
export const hostCountersSchema = z
  .object({ epoch: z.number().nullable(), trace: z.record(numberMap), ended: z.literal(true).optional(), transport: numberMap, fabric: fabricCountersSchema })
  .passthrough();

/** GET /view/topology: the fabric as a picture's data (runtime/view-topology.ts). */
export const viewTopologySchema = z.object({ topology: z.custom<ViewTopology>((v) => typeof v === 'object' && v !== null && Array.isArray((v as ViewTopology).nodes) && Array.isArray((v as ViewTopology).links), 'a picture of the fabric { name, nodes, links }') });

// ---------------------------------------------------------------- a box's routes (its own control socket)

/** POST /capture on a box: record these of its own links into `name` (in its state directory's captures/). */
export const boxCaptureRequestSchema = z.object({ links: z.array(z.string()), name: z.string() }, must('{ links: [...], name: "file" } (written into the state directory\'s captures/)')).strict();
export const boxCaptureSchema = z.object({ capturing: z.array(z.string()), path: z.string() }).passthrough();
/** POST /capture/stop: what the part holds (path null: nothing was capturing). */
export const boxCaptureStopSchema = z.object({ frames: z.number(), path: z.string().nullable() }).passthrough();

/** POST /extents: which of [offset, offset + length) of drive `drive` (`box0.slot1`) hold data (extent-map.ts). */
export const extentsRequestSchema = z.object({ drive: z.string(must('a drive of the box, e.g. "box0.slot1"')), offset: bytes(), length: bytes() }, must('{ drive, offset, length }')).strict();
export const extentsSchema = z.object({ extents: z.array(z.object({ lengthBytes: z.number(), state: z.number() })) }).passthrough();

/** Every answer that is not 2xx: `{ error: { code, message, hint? } }` (control-http.ts). */
export const errorBodySchema = z.object({ error: errorSchema });

// ---------------------------------------------------------------- the routes

/** One route of the API: its method, its path pattern (`:name` parameters), its request body's schema (none: no body) and its answer's. */
export interface Endpoint<Req extends z.ZodTypeAny | undefined = z.ZodTypeAny | undefined, Res extends z.ZodTypeAny = z.ZodTypeAny> {
  method: 'GET' | 'POST';
  pattern: string;
  request: Req;
  response: Res;
}

const endpoint = <Req extends z.ZodTypeAny | undefined, Res extends z.ZodTypeAny>(method: 'GET' | 'POST', pattern: string, request: Req, response: Res): Endpoint<Req, Res> => ({ method, pattern, request, response });

/** The host node's control API (host.sock; loopback TCP with the token). */
export const hostApi = {
  status: endpoint('GET', '/status', undefined, hostStatusSchema),
  devices: endpoint('GET', '/devices', undefined, devicesSchema),
  counters: endpoint('GET', '/counters', undefined, hostCountersSchema),
  viewTopology: endpoint('GET', '/view/topology', undefined, viewTopologySchema),
  submit: endpoint('POST', '/jobs', jobRequestSchema, jobViewSchema),
  jobs: endpoint('GET', '/jobs', undefined, z.array(jobViewSchema)),
  job: endpoint('GET', '/jobs/:id', undefined, jobViewSchema),
  cancel: endpoint('POST', '/jobs/:id/cancel', undefined, jobViewSchema),
  resume: endpoint('POST', '/jobs/:id/resume', resumeRequestSchema, jobViewSchema),
} as const;

/** A box node's control API (`<box>.sock`, on its own machine): what the host asks of it. */
export const boxApi = {
  counters: endpoint('GET', '/counters', undefined, nodeCountersSchema),
  capture: endpoint('POST', '/capture', boxCaptureRequestSchema, boxCaptureSchema),
  captureStop: endpoint('POST', '/capture/stop', undefined, boxCaptureStopSchema),
  extents: endpoint('POST', '/extents', extentsRequestSchema, extentsSchema),
} as const;

/** A route's request body as its handler gets it (parsed), and as a client sends it. */
export type BodyOf<E extends Endpoint> = E['request'] extends z.ZodTypeAny ? z.infer<E['request']> : undefined;
export type BodyIn<E extends Endpoint> = E['request'] extends z.ZodTypeAny ? z.input<E['request']> : undefined;
/** A route's answer as a client gets it (parsed), and as a handler may give it. */
export type AnswerOf<E extends Endpoint> = z.infer<E['response']>;
export type AnswerIn<E extends Endpoint> = z.input<E['response']>;

/** The value at `path` in `v`, for a message. */
function valueAt(v: unknown, path: (string | number)[]): unknown {
  let at = v;
  for (const k of path) at = at !== null && typeof at === 'object' ? (at as Record<string | number, unknown>)[k] : undefined;
  return at;
}

const shown = (v: unknown): string => (v === undefined ? 'missing' : `not ${JSON.stringify(v).slice(0, 80)}`);

/**
 * The issues of a failed parse as one sentence naming each field: `field lengthBytes must be a
 * non-negative integer number of bytes, not -1`; `field via must be dc-buffer, cmb, nearest or host, not "dma"`;
 * `field lenghtBytes is not a field of the request (fields: src, dst, ...)`.
 */
export function describeBadFields(issues: z.ZodIssue[], input: unknown, fields: readonly string[] = []): string {
  return issues
    .map((i) => {
      const name = i.path.join('.');
      if (i.code === 'unrecognized_keys') return i.keys.map((k) => `field ${[...i.path, k].join('.')} is not a field of the request${i.path.length === 0 && fields.length > 0 ? ` (fields: ${fields.join(', ')})` : ''}`).join('; ');
      if (name === '') return `the body must be ${i.message}`;
      return `field ${name} must be ${i.message}, ${shown(valueAt(input, i.path))}`;
    })
    .join('; ');
}

/** The top-level fields of a schema (for "not a field" messages), or none. */
export function fieldsOf(schema: z.ZodTypeAny): string[] {
  let s: z.ZodTypeAny = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodEffects) s = s instanceof z.ZodOptional ? s.unwrap() : s.innerType();
  return s instanceof z.ZodObject ? Object.keys(s.shape as object) : [];
}

/** A request body parsed with its route's schema; a bad one is BAD_REQUEST naming each field. */
export function parseBody<E extends Endpoint>(e: E, body: unknown): BodyOf<E> {
  if (!e.request) {
    if (body !== undefined && !(typeof body === 'object' && body !== null && Object.keys(body).length === 0)) throw new DconnectError('BAD_REQUEST', `${e.method} ${e.pattern} takes no body`, 'send none');
    return undefined as BodyOf<E>;
  }
  const r = e.request.safeParse(body);
  if (!r.success) throw new DconnectError('BAD_REQUEST', `${e.method} ${e.pattern}: ${describeBadFields(r.error.issues, body, fieldsOf(e.request))}`, 'docs/architecture.md "Live mode" lists the control API\'s fields');
  return r.data as BodyOf<E>;
}

/** A control server's route for endpoint `e`: the handler gets the body parsed by `e.request` and answers what `e.response` describes. */
export function route<E extends Endpoint>(e: E, handler: (req: { params: Record<string, string>; query: URLSearchParams; body: BodyOf<E> }) => AnswerIn<E> | Promise<AnswerIn<E>>): Route {
  return { method: e.method, pattern: e.pattern, handler: ({ params, query, body }) => handler({ params, query, body: parseBody(e, body) }) };
}
