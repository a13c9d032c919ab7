/**
 * The control API's typed client: one function per route of the host (`hostClient`) and of a box
 * (`boxClient`), each sending the route's body and parsing the answer with the route's schema
 * (control-api.ts), so a caller gets a typed value or a clear BAD_RESPONSE, never a shape it did not
 * expect. The transport, errors and deadlines are control-http.ts `controlRequest`'s.
 */
import { liveError } from './state-dir.js';
import { controlRequest, type ControlTarget } from './control-http.js';
import { describeIssueOf } from '../topology/params.js';
import { boxApi, hostApi, type AnswerOf, type BodyIn, type Endpoint } from './control-api.js';

export interface CallOptions {
  /** Deadline for the whole exchange, ms (control-http.ts DEFAULT_TIMEOUT_MS when absent). */
  timeoutMs?: number;
}

/** `pattern` with its `:name` parameters filled in (percent-encoded). */
function pathOf(pattern: string, params: Record<string, string>): string {
  return pattern.replace(/:(\w+)/g, (_, k: string) => encodeURIComponent(params[k] ?? ''));
}

/**
 * One call of endpoint `e`: its body sent as JSON, its answer parsed with `e.response`. An answer of
 * another shape is BAD_RESPONSE naming the fields (a host of another dconnect version, most likely).
 */
export async function call<E extends Endpoint>(target: ControlTarget, e: E, o: { params?: Record<string, string>; body?: BodyIn<E>; token?: string } & CallOptions = {}): Promise<AnswerOf<E>> {
  const path = pathOf(e.pattern, o.params ?? {});
  const value = await controlRequest<unknown>(target, e.method, path, o.body, { timeoutMs: o.timeoutMs, token: o.token });
  const r = e.response.safeParse(value);
  if (!r.success) {
    const where = 'socketPath' in target ? target.socketPath : `${target.host}:${target.port}`;
    throw liveError('BAD_RESPONSE', `the answer to ${e.method} ${path} from ${where} is not what this dconnect expects: ${r.error.issues.slice(0, 5).map(describeIssueOf('the answer')).join('; ')}`, 'is the fabric run by another version of dconnect? restart it with this one (dconnect down; dconnect up)');
  }
  return r.data as AnswerOf<E>;
}

/** The host node's control API, typed (`token`: for loopback TCP). */
export function hostClient(target: ControlTarget, token?: string) {
  const a = hostApi;
  return {
    status: (o?: CallOptions) => call(target, a.status, { ...o, token }),
    devices: (o?: CallOptions) => call(target, a.devices, { ...o, token }),
    counters: (o?: CallOptions) => call(target, a.counters, { ...o, token }),
    viewTopology: (o?: CallOptions) => call(target, a.viewTopology, { ...o, token }),
    submit: (body: BodyIn<typeof a.submit>, o?: CallOptions) => call(target, a.submit, { ...o, body, token }),
    jobs: (o?: CallOptions) => call(target, a.jobs, { ...o, token }),
    job: (id: string, o?: CallOptions) => call(target, a.job, { ...o, params: { id }, token }),
    cancel: (id: string, o?: CallOptions) => call(target, a.cancel, { ...o, params: { id }, token }),
    resume: (id: string, body?: BodyIn<typeof a.resume>, o?: CallOptions) => call(target, a.resume, { ...o, params: { id }, body, token }),
  };
}
export type HostClient = ReturnType<typeof hostClient>;

/** A box node's control API on its socket (the host asks it for counters, captures and extents). */
export function boxClient(socketPath: string) {
  const t = { socketPath };
  return {
    counters: (o?: CallOptions) => call(t, boxApi.counters, { ...o }),
    capture: (body: BodyIn<typeof boxApi.capture>, o?: CallOptions) => call(t, boxApi.capture, { ...o, body }),
    captureStop: (o?: CallOptions) => call(t, boxApi.captureStop, { ...o }),
    extents: (body: BodyIn<typeof boxApi.extents>, o?: CallOptions) => call(t, boxApi.extents, { ...o, body }),
  };
}
