/**
 * Host software sequences (enumeration, controller bring-up) read best as straight-line code, but model
 * code may not use Promises: their continuations would run outside the scheduler's event loop. So a
 * sequence is a generator that yields operations; `spawn` resumes it from the operation's callback,
 * inside the same event.
 */
export type Op<T> = (resume: (value: T) => void) => void;
export type Seq<R = void> = Generator<Op<unknown>, R, unknown>;

export function spawn<R>(seq: Seq<R>, done: (result: R) => void, fail: (err: unknown) => void = rethrow): void {
  const step = (input: unknown): void => {
    let r: IteratorResult<Op<unknown>, R>;
    try {
      r = seq.next(input);
    } catch (e) {
      fail(e);
      return;
    }
    if (r.done) done(r.value);
    else r.value(step);
  };
  step(undefined);
}

function rethrow(e: unknown): never {
  throw e;
}

/** Typed helper: `const v = yield* call(op)` gives `v` the operation's type. */
export function* call<T>(op: Op<T>): Generator<Op<unknown>, T, unknown> {
  return (yield op as Op<unknown>) as T;
}
