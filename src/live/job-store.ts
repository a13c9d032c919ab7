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
import type { ZodIssue } from 'zod';
import { describeIssueOf } from '../topology/params.js';
import { JOB_ID, jobRecordSchema, type JobRecord } from './control-api.js';
import { createFileExclusiveSync, liveError, writeFileAtomicSync } from './state-dir.js';

export type NewJob = Omit<JobRecord, 'id' | 'state' | 'doneBytes' | 'resumes' | 'createdAt' | 'updatedAt'>;

/** A job's file: its id (control-api.ts JOB_ID: anything else is refused before it reaches a path, so no id names a file outside the directory). */
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

/** Why `v` is not a JobRecord (jobRecordSchema, control-api.ts), or null when it is one. Also run before every write, so what is written can be read back. */
function jobProblem(v: unknown): string | null {
  const r = jobRecordSchema.safeParse(v);
  return r.success ? null : problemText(r.error.issues);
}

const problemText = (issues: ZodIssue[]): string => issues.map(describeIssueOf('a job record')).join('; ');

function parseJob(path: string, text: string, id: string): JobRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `not JSON (${(e as Error).message})`);
  }
  const r = jobRecordSchema.safeParse(v);
  if (!r.success) throw corrupt(path, problemText(r.error.issues));
  if (r.data.id !== id) throw corrupt(path, `it names job ${r.data.id}`);
  return r.data;
}

function corrupt(path: string, why: string): DconnectError {
  return liveError('BAD_STATE', `${path} is not a valid job record: ${why}`, `move ${path} aside to continue without it (${HINT})`);
}
