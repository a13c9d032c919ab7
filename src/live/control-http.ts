/**
 * The transport of the host's control API (issue "Live fabric"): HTTP/1.1 and JSON on a Unix socket in
 * the state directory, and on loopback TCP when asked. node:http only. The routes (devices, jobs) are
 * given by the caller; this module matches them, bounds and parses bodies, and maps errors to statuses
 * and back, so a DconnectError thrown by a handler reaches the CLI's user with its code and hint intact.
 *
 * Who may ask: on the Unix socket, whoever can open it (0600, in a 0700 directory: the user who ran
 * `up`). On loopback TCP, any local process or a web page in a local browser could connect, so a TCP
 * request must carry `Authorization: Bearer <token>` (the 0600 `control.token` in the state directory)
 * and a Host header naming the listening address (DNS rebinding). On both, a request with an `Origin`
 * header (only browsers send one) is refused, and a body must be `Content-Type: application/json` (an
 * HTML form cannot send that without a CORS preflight, which nothing here answers).
 *
 * Live code: async sockets, timers; it lives outside the model layers.
 */
import { chmodSync, lstatSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { connect, isIP } from 'node:net';
import { DconnectError } from '../core/errors.js';
import { assertSocketPathFits, liveError } from './state-dir.js';

export type Handler = (req: { method: string; path: string; params: Record<string, string>; query: URLSearchParams; body: unknown }) => Promise<unknown> | unknown;

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  /** Literal segments and `:name` parameters, e.g. '/jobs/:id/cancel'. */
  pattern: string;
  handler: Handler;
  /**
   * Served on TCP without the bearer token (the Host and Origin rules still hold): for a page that
   * holds no data of its own (the web view's HTML, which then asks for data with the token).
   */
  public?: boolean;
}

/** A handler's answer that is not JSON: sent as is, with its content type (the web view's page). */
export class RawResponse {
  constructor(
    readonly contentType: string,
    readonly body: string,
  ) {}
}

/**
 * A handler's answer that stays open: a Server-Sent Events stream. `start` gets `send` (one event;
 * false while the socket's buffer is full, so the caller skips rather than queues: the buffer is the
 * bound) and `onClose` (the client went away or the server closes).
 */
export class EventStream {
  constructor(readonly start: (send: (event: string, data: unknown) => boolean, onClose: (fn: () => void) => void) => void) {}
}

export interface ControlServer {
  socketPath: string;
  /** The TCP address actually bound (the port chosen when 0 was asked). */
  tcp?: { host: string; port: number };
  close(): Promise<void>;
}

export type ControlTarget = { socketPath: string } | { host: string; port: number };

/** Largest request body the server reads; a larger one is answered 413. */
export const MAX_REQUEST_BYTES = 1 << 20;
/** Past this many bytes of a too-large request the server stops draining it and drops the connection. */
const MAX_DISCARD_BYTES = 16 << 20;
/** Largest response body the client reads (a job list or a device listing is far smaller). */
export const MAX_RESPONSE_BYTES = 64 << 20;
/** Default client deadline for one request, connection to last byte. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** How long the server waits on a leftover socket file before deciding whether something answers there. */
const PROBE_TIMEOUT_MS = 1_000;
/** Server bound on receiving one whole request (a stalled client cannot hold a connection for longer). */
const REQUEST_TIMEOUT_MS = 60_000;

/** The status a handler's DconnectError is answered with; other codes are 400 (the request's fault). */
const STATUS_OF_CODE = new Map<string, number>([
  ['NO_SUCH_JOB', 404],
  ['NO_SUCH_DEVICE', 404],
  ['UNKNOWN_DEVICE', 404],
  ['CONFLICT', 409],
  ['ALREADY_RUNNING', 409],
]);

interface CompiledRoute extends Route {
  segments: string[];
}

/** What a TCP request must show besides being well formed: the bearer token and the Host it was sent to. */
interface TcpAccess {
  token: string;
  /** Host header values accepted: the listening address with its port (`127.0.0.1:7001`, `[::1]:7001`, `localhost:7001`). */
  hosts: Set<string>;
}

export async function startControlServer(o: { socketPath: string; tcp?: { host: string; port: number }; token?: string; routes: Route[] }): Promise<ControlServer> {
  const socketPath = assertSocketPathFits(o.socketPath);
  if (o.tcp && !isLoopback(o.tcp.host)) {
    throw liveError('BAD_REQUEST', `the control API listens on loopback only, not ${o.tcp.host}`, 'use 127.0.0.1 or ::1; reach it from elsewhere through ssh');
  }
  if (o.tcp && !o.token) throw new Error('control API: TCP needs a bearer token');
  const routes: CompiledRoute[] = o.routes.map((r) => ({ ...r, segments: splitPath(r.pattern) }));
  await removeStaleSocket(socketPath);

  const unix = newServer((req, res) => void serve(routes, req, res, null));
  await listen(unix, () => unix.listen(socketPath));
  const servers = [unix];
  let tcp: { host: string; port: number } | undefined;
  try {
    chmodSync(socketPath, 0o600);
    if (o.tcp) {
      const access: TcpAccess = { token: o.token!, hosts: new Set() };
      const t = newServer((req, res) => void serve(routes, req, res, access));
      const { host, port } = o.tcp;
      await listen(t, () => t.listen(port, host));
      servers.push(t);
      const addr = t.address();
      tcp = { host, port: typeof addr === 'object' && addr ? addr.port : port };
      for (const name of [host.includes(':') ? `[${host}]` : host, 'localhost']) access.hosts.add(`${name}:${tcp.port}`);
    }
  } catch (e) {
    await closeAll(servers, socketPath);
    throw e;
  }
  let closing: Promise<void> | undefined;
  return { socketPath, tcp, close: () => (closing ??= closeAll(servers, socketPath)) };
}

function newServer(onRequest: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const s = createServer(onRequest);
  s.requestTimeout = REQUEST_TIMEOUT_MS;
  return s;
}

function listen(s: Server, start: () => void): Promise<void> {
  return new Promise((resolveListen, reject) => {
    const onError = (e: Error): void => reject(e);
    s.once('error', onError);
    s.once('listening', () => {
      s.off('error', onError);
      resolveListen();
    });
    start();
  });
}

async function closeAll(servers: Server[], socketPath: string): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((done) => {
          if (!s.listening) return done();
          s.close(() => done());
          s.closeAllConnections(); // idle keep-alive connections would hold close() open
        }),
    ),
  );
  rmSync(socketPath, { force: true }); // the file may outlive the listener; a later start must not mistake it for a running host
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

/**
 * A socket file left by a host that died is removed; one that something still answers on is a running
 * fabric (ALREADY_RUNNING), and anything that is not a socket is left alone (STATE_PATH).
 */
async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!isSocket) throw liveError('STATE_PATH', `${path} exists and is not a socket`, 'move it aside or use another --state directory');
  const answers = await new Promise<boolean>((done) => {
    const c = connect(path);
    const timer = setTimeout(() => finish(true), PROBE_TIMEOUT_MS); // accepted nothing, refused nothing: someone holds it
    const finish = (v: boolean): void => {
      clearTimeout(timer);
      c.destroy();
      done(v);
    };
    c.once('connect', () => finish(true));
    c.once('error', () => finish(false));
  });
  if (answers) throw liveError('ALREADY_RUNNING', `a control server already answers at ${path}`, 'dconnect status shows it; dconnect down stops it');
  rmSync(path, { force: true });
}

function splitPath(p: string): string[] {
  return p.split('/').filter((s) => s !== '');
}

function match(segments: string[], path: string[]): Record<string, string> | null {
  if (segments.length !== path.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s.startsWith(':')) params[s.slice(1)] = path[i]!;
    else if (s !== path[i]) return null;
  }
  return params;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/**
 * Refuses a request that does not come the way the CLI sends it (see the file comment): a browser's
 * (Origin), a body of another type, and on TCP a wrong Host or a missing or wrong token.
 */
function checkAccess(req: IncomingMessage, access: TcpAccess | null, isPublic = false): void {
  // A page this server served (the web view, on TCP) is the one web page let in: its Origin is this server's own address.
  const sameOrigin = access !== null && req.headers.origin !== undefined && access.hosts.has(req.headers.host ?? '') && req.headers.origin === `http://${req.headers.host}`;
  if (req.headers.origin !== undefined && !sameOrigin) throw new HttpError(403, 'FORBIDDEN', 'the control API does not answer requests from web pages (the request has an Origin header)', 'use the dconnect CLI, or curl without an Origin header');
  if (access) {
    const host = req.headers.host ?? '';
    if (!access.hosts.has(host)) throw new HttpError(403, 'FORBIDDEN', `the Host header ${JSON.stringify(host)} is not this server's address`, `send Host: ${[...access.hosts][0]}`);
    if (isPublic) return;
    const auth = req.headers.authorization ?? '';
    const given = new TextEncoder().encode(auth.startsWith('Bearer ') ? auth.slice(7).trim() : '');
    const want = new TextEncoder().encode(access.token);
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      throw new HttpError(401, 'FORBIDDEN', 'the control API on TCP needs the bearer token', 'send Authorization: Bearer $(cat <state>/control.token)', { 'www-authenticate': 'Bearer' });
    }
  }
}

async function serve(routes: CompiledRoute[], req: IncomingMessage, res: ServerResponse, access: TcpAccess | null): Promise<void> {
  try {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://control');
    let segs: string[];
    try {
      segs = splitPath(url.pathname).map(decodeURIComponent);
    } catch {
      throw new HttpError(400, 'BAD_REQUEST', 'the path is not valid percent-encoding');
    }
    let route: CompiledRoute | undefined;
    let params: Record<string, string> | null = null;
    const allowed: string[] = [];
    for (const r of routes) {
      const p = match(r.segments, segs);
      if (!p) continue;
      allowed.push(r.method);
      if (r.method === method && !route) {
        route = r;
        params = p;
      }
    }
    const body = await readBody(req); // read even when refusing, so the answer is not lost in a reset
    checkAccess(req, access, route?.public === true);
    if (body.length > 0 && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, 'UNSUPPORTED_MEDIA', `the request body is ${JSON.stringify(req.headers['content-type'] ?? 'untyped')}, not application/json`, 'send Content-Type: application/json');
    }
    // The 404 names only what was asked: the route table is not listed to whoever connects.
    if (allowed.length === 0) throw new HttpError(404, 'NOT_FOUND', `no ${url.pathname} in the control API`);
    if (!route || !params) throw new HttpError(405, 'BAD_METHOD', `${url.pathname} does not take ${method}`, `it takes ${allowed.join(', ')}`, { allow: allowed.join(', ') });
    let parsed: unknown;
    if (body.length > 0) {
      try {
        parsed = JSON.parse(new TextDecoder().decode(body));
      } catch (e) {
        throw new HttpError(400, 'BAD_REQUEST', `the request body is not JSON (${(e as Error).message})`);
      }
    }
    const value = await route.handler({ method, path: url.pathname, params, query: url.searchParams, body: parsed });
    if (value instanceof RawResponse) sendRaw(res, value);
    else if (value instanceof EventStream) startStream(req, res, value);
    else send(res, 200, JSON.stringify(value ?? null));
  } catch (e) {
    if (e instanceof HttpError) send(res, e.status, errorBody(e.code, e.message, e.hint), e.headers);
    else if (e instanceof DconnectError) send(res, STATUS_OF_CODE.get(e.code) ?? 400, errorBody(e.code, e.message, e.hint));
    else send(res, 500, errorBody('INTERNAL', e instanceof Error ? e.message : String(e)));
  }
}

function sendRaw(res: ServerResponse, r: RawResponse): void {
  if (res.headersSent || res.destroyed) return;
  // The page runs no script from elsewhere and is framed by nobody.
  res.writeHead(200, { 'content-type': r.contentType, 'content-length': Buffer.byteLength(r.body), 'cache-control': 'no-store', 'x-frame-options': 'DENY', 'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:" });
  res.end(r.body);
}

function startStream(req: IncomingMessage, res: ServerResponse, s: EventStream): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
  // No request timeout on a stream: it ends when the client goes or the server closes.
  req.socket.setTimeout(0);
  let id = 0;
  let full = false;
  res.on('drain', () => (full = false));
  const closers: (() => void)[] = [];
  res.on('close', () => closers.forEach((f) => f()));
  s.start(
    (event, data) => {
      if (full || res.destroyed) return false;
      full = !res.write(`id: ${++id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      return true;
    },
    (fn) => closers.push(fn),
  );
}

function errorBody(code: string, message: string, hint?: string): string {
  return JSON.stringify({ error: hint === undefined ? { code, message } : { code, message, hint } });
}

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * The request body, at most MAX_REQUEST_BYTES (413 beyond). A too-large body is drained and dropped,
 * so the client, still sending, gets the 413 rather than a reset; past MAX_DISCARD_BYTES the
 * connection is destroyed instead.
 */
function readBody(req: IncomingMessage): Promise<Uint8Array> {
  return new Promise((done, fail) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_DISCARD_BYTES) {
      req.destroy();
      return fail(new HttpError(413, 'BAD_REQUEST', `the request body is ${declared} bytes; the limit is ${MAX_REQUEST_BYTES}`));
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    req.on('data', (c: Uint8Array) => {
      total += c.length;
      if (total <= MAX_REQUEST_BYTES) chunks.push(c);
      else if (total > MAX_DISCARD_BYTES) req.destroy();
    });
    req.on('end', () => {
      if (total > MAX_REQUEST_BYTES) fail(new HttpError(413, 'BAD_REQUEST', `the request body is ${total} bytes; the limit is ${MAX_REQUEST_BYTES}`));
      else done(concat(chunks, total));
    });
    req.on('error', fail);
    req.on('close', () => fail(new HttpError(400, 'BAD_REQUEST', 'the request was cut short'))); // no-op once settled
  });
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * One request to a control server. Resolves with the parsed JSON of a 2xx answer; an error answer is
 * thrown as the DconnectError it was on the server (code, message, hint). NOT_RUNNING when nothing
 * listens at the target, TIMEOUT past `timeoutMs` (default DEFAULT_TIMEOUT_MS) for the whole exchange.
 */
export function controlRequest<T = unknown>(target: ControlTarget, method: string, path: string, body?: unknown, opts: { timeoutMs?: number; token?: string } = {}): Promise<T> {
  const where = 'socketPath' in target ? target.socketPath : `${target.host}:${target.port}`;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const payload = body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body));
  return new Promise<T>((done, fail) => {
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const req = request({
      ...('socketPath' in target ? { socketPath: target.socketPath } : { host: target.host, port: target.port }),
      method,
      path,
      agent: false, // one connection per request, closed after: nothing lingers to keep a CLI process alive
      headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}), ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) },
    });
    const timer = setTimeout(() => {
      settle(() => fail(liveError('TIMEOUT', `the live fabric at ${where} did not answer ${method} ${path} within ${timeoutMs} ms`, 'dconnect status shows whether it runs; a busy host may need a longer wait')));
      req.destroy();
    }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      settle(() => {
        if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
          fail(liveError('NOT_RUNNING', `no live fabric answers at ${where}`, 'start one with: dconnect up (or pass the --state DIR it was started with)'));
        } else fail(liveError('BAD_RESPONSE', `the control request ${method} ${path} to ${where} failed: ${e.message}`));
      });
    });
    req.on('response', (res) => {
      const chunks: Uint8Array[] = [];
      let total = 0;
      res.on('data', (c: Uint8Array) => {
        total += c.length;
        if (total > MAX_RESPONSE_BYTES) {
          settle(() => fail(liveError('BAD_RESPONSE', `the answer to ${method} ${path} exceeds ${MAX_RESPONSE_BYTES} bytes`)));
          req.destroy();
        } else chunks.push(c);
      });
      res.on('error', (e) => settle(() => fail(liveError('BAD_RESPONSE', `the answer to ${method} ${path} was cut short: ${e.message}`))));
      res.on('end', () => settle(() => {
        const status = res.statusCode ?? 0;
        let value: unknown;
        try {
          value = JSON.parse(new TextDecoder().decode(concat(chunks, total)));
        } catch {
          return fail(liveError('BAD_RESPONSE', `the answer to ${method} ${path} (HTTP ${status}) is not JSON`));
        }
        if (status >= 200 && status < 300) return done(value as T);
        const err = (value as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | null)?.error;
        if (err && typeof err.code === 'string' && typeof err.message === 'string') {
          // The server's code may be one this client does not list (a newer host): kept as sent.
          return fail(new DconnectError(err.code as DconnectError['code'], err.message, typeof err.hint === 'string' ? err.hint : undefined));
        }
        fail(liveError('BAD_RESPONSE', `${method} ${path} answered HTTP ${status} without an error body`));
      }));
    });
    req.end(payload);
  });
}
