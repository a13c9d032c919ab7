/**
 * Durable records of live copy jobs (issue "Live fabric"), one JSON file per job in the state
 * directory's `jobs/`, in the manner of a restart marker: `doneBytes` is the prefix of the range that
 * is copied and flushed on the destination, so a copy whose box died resumes from there
 * (`dconnect copy --resume JOB`) and never rewrites anything outside its destination range.
 *
 * Every write is whole or nothing (temporary file, fsync, rename; state-dir.ts). One process writes
 * records (the host); others only read them (`dconnect status`).
 */
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DconnectError } from '../core/errors.js';
import type { Reservation } from '../host/fs/create.js';
import type { CopyRun, FileCopyPlanEntry } from '../host/fs/file-copy.js';
import { createFileExclusiveSync, liveError, writeFileAtomicSync } from './state-dir.js';

export type JobState = 'queued' | 'running' | 'verifying' | 'done' | 'failed' | 'cancelled';
const JOB_STATES: readonly JobState[] = ['queued', 'running', 'verifying', 'done', 'failed', 'cancelled'];

export interface JobRecord {
  id: string;
  state: JobState;
  src: string;
  dst: string;
  srcOffset: number;
  dstOffset: number;
  lengthBytes: number;
  via: 'dc-buffer' | 'host';
  chunkBytes: number;
  depth: number;
  /** Read both ranges back through the devices and compare them at the end (default true). */
  verify?: boolean;
  /** Record the frames on these links (the host node's crossing cables) into a pcap file while the job runs. */
  capture?: { links: string[]; path: string };
  /** Bytes from the start of the range that are copied AND flushed on the destination (a contiguous prefix). */
  doneBytes: number;
  resumes: number;
  error?: { code: string; message: string; hint?: string };
  result?: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
  /**
   * A file copy (`copy --live sda:/data sdb:/backup`; live/file-job.ts): the offsets are 0, lengthBytes
   * is the data the runs move (0 until the destination is reserved), doneBytes reaches it once the
   * data is moved and flushed. `plan` is recorded once the destination is reserved and synced.
   */
  files?: FileJobSpec;
}

export interface FileJobSpec {
  srcPath: string;
  dstPath: string;
  recursive: boolean;
  force: boolean;
  /** The new inodes' ctime (the client's clock when it asked). */
  nowSec: number;
  plan?: FilePlan;
}

/** What a file job reserved: enough to move the data again and commit after a crash. */
export interface FilePlan {
  runs: CopyRun[];
  reservations: Reservation[];
  files: FileCopyPlanEntry[];
  directories: number;
  skipped: string[];
  bytes: number;
  dataBytes: number;
}

export type NewJob = Omit<JobRecord, 'id' | 'state' | 'doneBytes' | 'resumes' | 'createdAt' | 'updatedAt'>;

/**
 * A job id: `j` and a number from 1, at most 15 digits (a safe integer). Anything else is refused
 * before it reaches a path, so no id can name a file outside the directory.
 */
const JOB_ID = /^j[1-9]\d{0,14}$/;
const JOB_FILE = /^(j[1-9]\d{0,14})\.json$/;
/** The highest id ever given, kept apart from the records so an id is never given twice even if a record is deleted. */
const LAST_ID_FILE = 'last-id';

const HINT = 'dconnect status lists the jobs';

export class JobStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
  }

  /** A new queued job with the next id (j1, j2, ...: one more than any given before). */
  create(fields: NewJob): JobRecord {
    const now = new Date().toISOString();
    let n = Math.max(this.lastId(), ...this.ids().map(idNumber)) + 1;
    // Creation is exclusive (link), so two creators never share an id: the loser takes the next one.
    // Bounded: each failure means another record now holds that id.
    for (let tries = 0; tries < 1000; tries++, n++) {
      const rec: JobRecord = { ...fields, id: `j${n}`, state: 'queued', doneBytes: 0, resumes: 0, createdAt: now, updatedAt: now };
      const problem = jobProblem(rec);
      if (problem) throw liveError('BAD_REQUEST', `a new job: ${problem}`);
      if (createFileExclusiveSync(this.path(rec.id), serialize(rec))) {
        writeFileAtomicSync(join(this.dir, LAST_ID_FILE), `${n}\n`);
        return rec;
      }
    }
    throw liveError('CONFLICT', `could not take a new job id in ${this.dir}`, 'another process keeps creating jobs there');
  }

  /** The record, or null when there is none; a malformed id throws NO_SUCH_JOB. */
  get(id: string): JobRecord | null {
    const path = this.path(id);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return parseJob(path, text, id);
  }

  require(id: string): JobRecord {
    const rec = this.get(id);
    if (!rec) throw liveError('NO_SUCH_JOB', `no job ${id} in ${this.dir}`, HINT);
    return rec;
  }

  /** Applies `patch` (id and createdAt stay), sets updatedAt, and writes the record atomically. */
  update(id: string, patch: Partial<JobRecord>): JobRecord {
    const old = this.require(id);
    const rec: JobRecord = { ...old, ...patch, id: old.id, createdAt: old.createdAt, updatedAt: new Date().toISOString() };
    const problem = jobProblem(rec);
    if (problem) throw liveError('BAD_REQUEST', `job ${id}: ${problem}`);
    writeFileAtomicSync(this.path(id), serialize(rec));
    return rec;
  }

  /** Every job, by numeric id. */
  list(): JobRecord[] {
    const out: JobRecord[] = [];
    for (const id of this.ids().sort((a, b) => idNumber(a) - idNumber(b))) {
      const rec = this.get(id); // removed since readdir: skipped
      if (rec) out.push(rec);
    }
    return out;
  }

  private path(id: string): string {
    if (typeof id !== 'string' || !JOB_ID.test(id)) {
      throw liveError('NO_SUCH_JOB', `${JSON.stringify(String(id).slice(0, 40))} is not a job id (they are j1, j2, ...)`, HINT);
    }
    return join(this.dir, `${id}.json`);
  }

  private ids(): string[] {
    return readdirSync(this.dir).flatMap((f) => JOB_FILE.exec(f)?.[1] ?? []);
  }

  private lastId(): number {
    const path = join(this.dir, LAST_ID_FILE);
    let text: string;
    try {
      text = readFileSync(path, 'utf8').trim();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw e;
    }
    if (!/^\d{1,15}$/.test(text)) {
      throw liveError('BAD_STATE', `${path} holds ${JSON.stringify(text.slice(0, 40))}, not a job number`, `write the highest job number of ${this.dir} into it`);
    }
    return Number(text);
  }
}

function idNumber(id: string): number {
  return Number(id.slice(1));
}

function serialize(rec: JobRecord): string {
  return `${JSON.stringify(rec, null, 2)}\n`;
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** Why `v` is not a JobRecord, or null when it is one. Also run before every write, so what is written can be read back. */
function jobProblem(v: unknown): string | null {
  const r = v as Partial<Record<keyof JobRecord, unknown>> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not a JSON object';
  if (typeof r.id !== 'string' || !JOB_ID.test(r.id)) return 'id is not a job id';
  if (!JOB_STATES.includes(r.state as JobState)) return `state ${JSON.stringify(r.state)} is not one of ${JOB_STATES.join(', ')}`;
  if (typeof r.src !== 'string' || typeof r.dst !== 'string') return 'src and dst must be device names';
  for (const k of ['srcOffset', 'dstOffset', 'lengthBytes', 'chunkBytes', 'depth', 'doneBytes', 'resumes'] as const) {
    if (!isCount(r[k])) return `${k} is not a non-negative integer`;
  }
  if ((r.doneBytes as number) > (r.lengthBytes as number)) return `doneBytes ${r.doneBytes} exceeds lengthBytes ${r.lengthBytes}`;
  if (r.via !== 'dc-buffer' && r.via !== 'host') return `via ${JSON.stringify(r.via)} is not dc-buffer or host`;
  if (r.error !== undefined) {
    const e = r.error as { code?: unknown; message?: unknown; hint?: unknown } | null;
    if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || typeof e.message !== 'string' || (e.hint !== undefined && typeof e.hint !== 'string')) {
      return 'error is not {code, message, hint?}';
    }
  }
  if (r.result !== undefined && (typeof r.result !== 'object' || r.result === null || Array.isArray(r.result))) return 'result is not an object';
  if (typeof r.createdAt !== 'string' || typeof r.updatedAt !== 'string') return 'createdAt and updatedAt must be ISO times';
  if (r.files !== undefined) return fileSpecProblem(r.files);
  return null;
}

/** Why `v` is not a FileJobSpec (its plan checked for shape: a record is written only by the host), or null. */
function fileSpecProblem(v: unknown): string | null {
  const f = v as Partial<Record<keyof FileJobSpec, unknown>> | null;
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'files is not an object';
  if (typeof f.srcPath !== 'string' || !f.srcPath.startsWith('/') || typeof f.dstPath !== 'string' || !f.dstPath.startsWith('/')) return 'files.srcPath and files.dstPath must be absolute paths';
  if (typeof f.recursive !== 'boolean' || typeof f.force !== 'boolean') return 'files.recursive and files.force must be true or false';
  if (!isCount(f.nowSec)) return 'files.nowSec is not a time in seconds';
  if (f.plan !== undefined) {
    const p = f.plan as Partial<Record<keyof FilePlan, unknown>> | null;
    if (typeof p !== 'object' || p === null || !Array.isArray(p.runs) || !Array.isArray(p.reservations) || !Array.isArray(p.files) || !Array.isArray(p.skipped) || !isCount(p.bytes) || !isCount(p.dataBytes) || !isCount(p.directories)) return 'files.plan is not a file copy plan';
  }
  return null;
}

function parseJob(path: string, text: string, id: string): JobRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `not JSON (${(e as Error).message})`);
  }
  const problem = jobProblem(v);
  if (problem) throw corrupt(path, problem);
  if ((v as JobRecord).id !== id) throw corrupt(path, `it names job ${(v as JobRecord).id}`);
  return v as JobRecord;
}

function corrupt(path: string, why: string): DconnectError {
  return liveError('BAD_STATE', `${path} is not a valid job record: ${why}`, `move ${path} aside to continue without it (${HINT})`);
}
