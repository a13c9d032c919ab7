/**
 * The state directory of a live fabric (issue "Live fabric"; `--state DIR`, default `./.dconnect`):
 *
 *   <root>/up.lock        the pid of the `dconnect up` that runs the fabric (one per directory)
 *   <root>/epoch          the session counter (a decimal u32): the host takes a new one per session
 *   <root>/host.sock      the host's control API (control-http.ts)
 *   <root>/nodes/X.json   one record per running node: pid, addresses, topology, epoch
 *   <root>/logs/X.log     each node's log
 *   <root>/drives/S.img   each SSD's bytes (file-store.ts), kept across restarts
 *   <root>/jobs/          durable copy-job records (job-store.ts)
 *   <root>/captures/      live captures (`copy --live --pcap NAME`): a client names a file here, never a path
 *   <root>/control.token  the bearer token the control API asks for on loopback TCP (control-http.ts)
 *   <root>/fabric.key     the 256-bit key every datagram between nodes is MACed with (datagram-auth.ts)
 *
 * The directory is private, always: every `ensure()` (each `up` and `node`) makes it and its folders
 * 0700 and every file in them 0600, whatever an earlier run or a umask left, and refuses a root that is
 * a symlink or owned by another user. Files made here are created 0600.
 *
 * Every file another process may read is written whole or not at all (a temporary file, fsync, rename,
 * fsync of the directory), so a node killed mid-write never leaves half a record behind.
 *
 * Live code: synchronous file I/O and process signals; it lives outside the model layers.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants as fsc, fsyncSync, linkSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { FABRIC_KEY_BYTES, parseFabricKey } from './datagram-auth.js';
import { basename, dirname, join, resolve } from 'node:path';
import { DconnectError, type ErrorCode } from '../core/errors.js';

export const DEFAULT_STATE_DIR = '.dconnect';

/**
 * The codes live mode adds to `ErrorCode` (core/errors.ts names only the model's and the CLI's so far).
 * `liveError` is the one place that widens them, so the casts go when errors.ts lists these codes.
 */
export type LiveErrorCode =
  | 'STATE_PATH' // a state-directory path that cannot be used (too long for a socket, an unsafe name)
  | 'BAD_STATE' // a file in the state directory that does not parse (a corrupt record)
  | 'ALREADY_RUNNING' // a fabric (or a control server) already runs on this state directory
  | 'NOT_RUNNING' // no live fabric answers at the control socket
  | 'NO_SUCH_JOB' // a job id that is malformed or has no record
  | 'NO_SUCH_DEVICE' // a live device name the host does not know
  | 'CONFLICT' // a request that contradicts the current state (e.g. resuming a running job)
  | 'TIMEOUT' // the control API did not answer in time
  | 'BAD_REQUEST' // a control request that is not valid JSON, or too large
  | 'NOT_FOUND' // a control path no route serves
  | 'BAD_METHOD' // a control path served, but not for this method
  | 'BAD_RESPONSE' // a control response that is not JSON, or too large
  | 'INTERNAL' // an unexpected exception inside the control server
  | 'FORBIDDEN' // a control request refused for where it comes from (an Origin, a wrong Host, no token)
  | 'UNSUPPORTED_MEDIA' // a control request body that is not application/json
  | 'NO_KEY'; // no usable fabric key (missing, malformed, or readable by others)

export function liveError(code: LiveErrorCode, message: string, hint?: string): DconnectError {
  return new DconnectError(code as ErrorCode, message, hint);
}

/**
 * Longest Unix socket path, in bytes without the terminating NUL: `sun_path` is 108 bytes on Linux
 * and 104 on macOS and the BSDs. A longer path fails at bind() with an error that names nothing useful.
 */
export const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Throws STATE_PATH when `path` (made absolute) is too long to bind a Unix socket to. */
export function assertSocketPathFits(path: string): string {
  const abs = resolve(path);
  const bytes = Buffer.byteLength(abs);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw liveError(
      'STATE_PATH',
      `the control socket path ${abs} is ${bytes} bytes; a Unix socket path holds at most ${MAX_SOCKET_PATH_BYTES}`,
      'use a shorter --state path (e.g. --state /tmp/dc)',
    );
  }
  return abs;
}

/** A file name inside the state directory: no separators, no `..`, nothing hidden, at most 128 bytes. */
const SAFE_NAME = /^[A-Za-z0-9][\w.-]{0,127}$/;

function safeName(kind: string, name: string): string {
  if (typeof name !== 'string' || !SAFE_NAME.test(name) || name.includes('..')) {
    throw liveError('STATE_PATH', `${JSON.stringify(name)} cannot name a ${kind} in the state directory`, 'names are a letter or digit, then letters, digits, _, . or - (at most 128)');
  }
  return name;
}

/**
 * Writes `data` to `path` whole or not at all: a temporary file beside it (unique to this process and
 * call, so concurrent writers never share one), fsync, rename over `path`, then fsync the directory so
 * the rename itself survives a crash.
 */
export function writeFileAtomicSync(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.${tmpSeq++}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    const buf = new TextEncoder().encode(data);
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}
let tmpSeq = 0;

/**
 * Creates `path` holding `data` only if it does not exist (false if it does): the data is written and
 * fsynced in a temporary file that is then hard-linked to `path`, and link() fails atomically on an
 * existing name. Unlike open(O_EXCL) and a write, no reader ever sees the file empty.
 */
export function createFileExclusiveSync(path: string, data: string): boolean {
  const tmp = `${path}.${process.pid}.${tmpSeq++}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
  fsyncDir(dirname(path));
  return true;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads a file, or null when it does not exist. */
function readIfExists(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Whether a process with this pid exists: signal 0 checks without signalling. EPERM means it exists
 * but belongs to another user. A pid that is not a positive integer is never alive: kill(0) and
 * kill(-n) would address whole process groups. (An exited but unreaped child still counts as alive.)
 */
export function isAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface NodeRecord {
  name: string;
  role: 'host' | 'box';
  pid: number;
  /** Where the node's UDP frame channel listens. */
  udp: { host: string; port: number };
  /** The host's control API (only the host has one). */
  control?: { socket: string; tcp?: { host: string; port: number } };
  /** The host's NBD server. */
  nbd?: { socket: string; tcp?: { host: string; port: number } };
  /** What a box reports of itself (its lag, its own cables' faults), rewritten every second. */
  report?: unknown;
  /** ISO 8601. */
  startedAt: string;
  /** The topology the node was started with (a preset name or a path). */
  topology: string;
  /** The session the node belongs to (see StateDir.nextEpoch). */
  epoch?: number;
}

function isEndpoint(v: unknown): v is { host: string; port: number } {
  const o = v as { host?: unknown; port?: unknown } | null;
  return typeof o === 'object' && o !== null && typeof o.host === 'string' && Number.isInteger(o.port) && (o.port as number) >= 0 && (o.port as number) <= 65535;
}

/** Why `v` is not a NodeRecord, or null when it is one. */
function nodeRecordProblem(v: unknown): string | null {
  const r = v as Partial<Record<keyof NodeRecord, unknown>> | null;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return 'not a JSON object';
  if (typeof r.name !== 'string' || !SAFE_NAME.test(r.name)) return 'name is missing or not a node name';
  if (r.role !== 'host' && r.role !== 'box') return `role is ${JSON.stringify(r.role)}, not host or box`;
  if (!Number.isSafeInteger(r.pid) || (r.pid as number) <= 0) return 'pid is not a positive integer';
  if (!isEndpoint(r.udp)) return 'udp is not {host, port}';
  if (r.control !== undefined) {
    const c = r.control as { socket?: unknown; tcp?: unknown } | null;
    if (typeof c !== 'object' || c === null || typeof c.socket !== 'string' || (c.tcp !== undefined && !isEndpoint(c.tcp))) return 'control is not {socket, tcp?}';
  }
  if (typeof r.startedAt !== 'string') return 'startedAt is not a string';
  if (typeof r.topology !== 'string') return 'topology is not a string';
  if (r.epoch !== undefined && !isU32(r.epoch)) return 'epoch is not a u32';
  return null;
}

const U32_MAX = 0xffff_ffff;
function isU32(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= U32_MAX;
}

/** The state directory's folders (each 0700). */
const SUBDIRS = ['nodes', 'logs', 'drives', 'jobs', 'captures'] as const;
/** Bound on the entries `ensure` walks per folder when it makes them private (a state dir holds a handful). */
const MAX_ENTRIES_CHECKED = 10_000;

/**
 * Opens a new file for writing, 0600, failing if the name exists (O_EXCL) or is a symlink (O_NOFOLLOW):
 * what the host writes where a request named the file (a capture) can replace nothing.
 */
export function openNewPrivateFile(path: string): number {
  try {
    return openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ELOOP') throw liveError('CONFLICT', `${path} exists: a capture never replaces a file`, `choose another --pcap name, or remove ${path}`);
    throw e;
  }
}

export class StateDir {
  /** Absolute, so socket paths and records name the same place whatever the cwd of the reader. */
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /**
   * mkdir -p of the directory and its folders, then makes them private (see the file comment): the
   * control socket and the drives have no other access control. Refuses a root that is a symlink (it
   * could point anywhere) or belongs to another user (who could read or swap what we write).
   */
  ensure(): void {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    const st = lstatSync(this.root);
    if (st.isSymbolicLink() || !st.isDirectory()) throw liveError('STATE_PATH', `the state directory ${this.root} is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`, 'give --state a real directory of your own (e.g. --state ./.dconnect)');
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) throw liveError('STATE_PATH', `the state directory ${this.root} belongs to user ${st.uid}, not to you (${uid})`, 'use a state directory of your own: --state DIR');
    chmodSync(this.root, 0o700);
    for (const sub of SUBDIRS) {
      const dir = join(this.root, sub);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if (lstatSync(dir).isSymbolicLink()) throw liveError('STATE_PATH', `${dir} is a symlink`, `remove it; dconnect makes its own folders in ${this.root}`);
      chmodSync(dir, 0o700);
      privateEntries(dir);
    }
    privateEntries(this.root);
  }

  /**
   * Where a live capture named `name` goes: `<root>/captures/<name>`. A request names a file, never a
   * path: a plain name, or `captures/<name>`; anything else (a slash, `..`, a leading dot) is refused.
   */
  capturePath(name: string): string {
    const n = name.startsWith('captures/') ? name.slice('captures/'.length) : name;
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(n) || n.includes('..')) {
      throw liveError('BAD_REQUEST', `capture file ${JSON.stringify(name)} is not a plain file name: a live capture is written into the state directory's captures/ folder`, 'name the file, e.g. --pcap move.pcap (it is written to <state>/captures/move.pcap)');
    }
    return join(this.root, 'captures', n);
  }

  get controlTokenPath(): string {
    return join(this.root, 'control.token');
  }

  /** The control API's bearer token (64 hex digits), made at the first call (0600) and kept. */
  controlToken(): string {
    const path = this.controlTokenPath;
    createFileExclusiveSync(path, `${randomBytes(32).toString('hex')}\n`);
    chmodSync(path, 0o600);
    const t = readFileSync(path, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(t)) throw liveError('BAD_STATE', `${path} does not hold a control token`, `delete ${path}: the next dconnect up makes a new one`);
    return t;
  }

  get fabricKeyPath(): string {
    return join(this.root, 'fabric.key');
  }

  /**
   * The fabric key (64 hex digits, 0600), made at the first call when `create` (the host's side: `up`,
   * or the host node) and read after; a box on another machine gets a copy (`--key-file`), never a new one.
   */
  fabricKey(create: boolean): Uint8Array {
    const path = this.fabricKeyPath;
    if (create) createFileExclusiveSync(path, `${randomBytes(FABRIC_KEY_BYTES).toString('hex')}\n`);
    else if (readIfExists(path) === null) {
      throw liveError('NO_KEY', `${path} does not exist: this node has no fabric key, so every datagram it sends or receives would be refused`, `copy the key from the host's machine (scp HOST:STATE/fabric.key ${path}; chmod 600 ${path}) or pass --key-file FILE`);
    }
    return readKeyFile(path);
  }

  nodeRecordPath(name: string): string {
    return join(this.root, 'nodes', `${safeName('node', name)}.json`);
  }

  logPath(name: string): string {
    return join(this.root, 'logs', `${safeName('node', name)}.log`);
  }

  drivePath(slotName: string): string {
    return join(this.root, 'drives', `${safeName('drive', slotName)}.img`);
  }

  get jobsDir(): string {
    return join(this.root, 'jobs');
  }

  /** `<root>/host.sock`; throws STATE_PATH when the root is too long for a Unix socket path. */
  /** The NBD TLS keys (`identity:hexkey`, 0600): what a client gives as `tls-psk-file` (nbd-tls.ts). */
  get nbdPskPath(): string {
    return join(this.root, 'nbd.psk');
  }

  /** Where the host serves NBD (`nbd+unix:///sda?socket=...`). */
  get nbdSocketPath(): string {
    return assertSocketPathFits(join(this.root, 'nbd.sock'));
  }

  get controlSocketPath(): string {
    return assertSocketPathFits(join(this.root, 'host.sock'));
  }

  writeNodeRecord(rec: NodeRecord): void {
    const problem = nodeRecordProblem(rec);
    if (problem) throw liveError('BAD_STATE', `node record for ${JSON.stringify(rec.name)}: ${problem}`);
    writeFileAtomicSync(this.nodeRecordPath(rec.name), `${JSON.stringify(rec, null, 2)}\n`);
  }

  readNodeRecord(name: string): NodeRecord | null {
    const path = this.nodeRecordPath(name);
    const text = readIfExists(path);
    return text === null ? null : parseNodeRecord(path, text);
  }

  /** Every node record, sorted by name. Temporary files of writes in progress are not records. */
  listNodeRecords(): NodeRecord[] {
    const dir = join(this.root, 'nodes');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: NodeRecord[] = [];
    for (const f of names) {
      if (!f.endsWith('.json')) continue;
      const path = join(dir, f);
      const text = readIfExists(path); // removed since readdir: not a record any more
      if (text !== null) out.push(parseNodeRecord(path, text));
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  removeNodeRecord(name: string): void {
    rmSync(this.nodeRecordPath(name), { force: true });
  }

  /** Records whose process exists. */
  liveNodes(): NodeRecord[] {
    return this.listNodeRecords().filter((r) => isAlive(r.pid));
  }

  /** Records left behind by processes that are gone (killed, crashed). */
  staleNodes(): NodeRecord[] {
    return this.listNodeRecords().filter((r) => !isAlive(r.pid));
  }

  /**
   * The next session number: `<root>/epoch` read, +1, written atomically; 1 the first time. A u32 (it
   * travels in datagrams), wrapping from 2^32-1 to 1 (0 never names a session). One writer: the host,
   * which runs under the up lock.
   */
  nextEpoch(): number {
    const path = join(this.root, 'epoch');
    const text = readIfExists(path);
    let current = 0;
    if (text !== null) {
      const t = text.trim();
      current = /^\d{1,10}$/.test(t) ? Number(t) : -1;
      if (!isU32(current)) throw liveError('BAD_STATE', `${path} holds ${JSON.stringify(t.slice(0, 40))}, not a session number`, `delete ${path} (the next session starts again from 1)`);
    }
    const next = current === U32_MAX ? 1 : current + 1;
    writeFileAtomicSync(path, `${next}\n`);
    return next;
  }

  /**
   * Takes `<root>/up.lock` for this process, so a second `dconnect up` on the directory says a fabric
   * runs instead of starting twice. A lock whose pid is dead (or unreadable) is taken over. Returns the
   * release function, which removes the lock only while it still names this process.
   *
   * Two `up`s taking over the same stale lock at the same instant could both win (the check and the
   * unlink are two steps); live locks are never broken. A pid reused by an unrelated process reads as
   * running: `dconnect status` then shows no nodes, and removing the lock file clears it.
   */
  acquireUpLock(): () => void {
    this.ensure();
    const path = join(this.root, 'up.lock');
    const mine = `${process.pid}\n`;
    // Bounded: each round either creates the lock, throws, or removes a stale one; three rounds allow
    // for another process creating and dropping it meanwhile.
    for (let round = 0; round < 3; round++) {
      if (createFileExclusiveSync(path, mine)) {
        let released = false;
        return () => {
          if (released) return;
          released = true;
          if (readIfExists(path) === mine) rmSync(path, { force: true });
        };
      }
      const held = readIfExists(path);
      if (held === null) continue; // released between our attempt and the read
      const pid = /^\d+\s*$/.test(held) ? Number(held) : NaN;
      if (isAlive(pid)) {
        throw liveError('ALREADY_RUNNING', `a fabric is already running in ${this.root} (pid ${pid})`, 'dconnect status shows it; dconnect down stops it');
      }
      if (readIfExists(path) === held) {
        try {
          unlinkSync(path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        }
      }
    }
    throw liveError('ALREADY_RUNNING', `another process keeps taking ${path}`, 'dconnect status shows what runs; try again');
  }
}

/** 0600 on every file and socket, 0700 on every folder directly in `dir` (symlinks are left alone: chmod would follow them). */
function privateEntries(dir: string): void {
  const names = readdirSync(dir);
  for (const name of names.slice(0, MAX_ENTRIES_CHECKED)) {
    const p = join(dir, name);
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue; // removed since readdir
    }
    if (st.isSymbolicLink()) continue;
    const want = st.isDirectory() ? 0o700 : 0o600;
    if ((st.mode & 0o777) !== want) chmodSync(p, want);
  }
}

/**
 * The fabric key in `path` (`dconnect node --key-file`, or the state dir's fabric.key): refused when it
 * is readable by others (anyone who has it can drive the fabric) or does not hold one.
 */
export function readKeyFile(path: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw liveError('NO_KEY', `cannot read the fabric key ${path}: ${(e as Error).message}`, "copy it from the host's state directory (fabric.key) with scp, then chmod 600 it");
  }
  const uid = process.getuid?.();
  if ((st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid)) {
    throw liveError('NO_KEY', `the fabric key ${path} is ${st.uid !== uid ? `owned by user ${st.uid}` : `mode 0${(st.mode & 0o777).toString(8)}`}: others could read it and speak to the fabric`, `chmod 600 ${path} (as its owner; a key must be yours and private)`);
  }
  const key = parseFabricKey(readFileSync(path, 'utf8').slice(0, 1000));
  if (!key) throw liveError('NO_KEY', `${path} does not hold a fabric key (64 hex digits)`, "copy the host's <state>/fabric.key again; it is made by the first dconnect up");
  return key;
}

function parseNodeRecord(path: string, text: string): NodeRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw corrupt(path, `not JSON (${(e as Error).message})`);
  }
  const problem = nodeRecordProblem(v);
  if (problem) throw corrupt(path, problem);
  const rec = v as NodeRecord;
  if (`${rec.name}.json` !== basename(path)) throw corrupt(path, `it names node ${rec.name}`);
  return rec;
}

function corrupt(path: string, why: string): DconnectError {
  return liveError('BAD_STATE', `${path} is not a valid node record: ${why}`, `delete ${path} if no node of that name is running (dconnect down also clears records)`);
}
