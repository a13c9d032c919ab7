/**
 * The host's block devices as the NBD server's backend (nbd-server.ts `NbdBackend`): every request
 * runs through the current session's modelled host (host-session.ts `viaModel`, nbd-backend.ts
 * `NbdIo`), the watchdog waiting on the drive's box meanwhile; holes are asked of the box that has
 * the drive's file.
 */
import type { SessionManager } from './host-session.js';
import { boxExtents, type NbdIo } from './nbd-backend.js';
import type { NbdBackend } from './nbd-server.js';

export function hostNbdBackend(sessions: SessionManager, boxSocket: (box: string) => string): NbdBackend {
  /** Runs `fn` on the NBD path of the session (a new one if none runs), waiting on the export's box. */
  const viaModel = <T>(exp: string | null, fn: (io: NbdIo, done: (e: Error | null, v?: T) => void) => void): Promise<T> => {
    const s = sessions.ensure();
    return s.booted.then(() => s.viaModel<T>(exp === null ? null : s.boxOf(exp), fn));
  };
  return {
    exports: () => sessions.exports.map((e) => ({ name: e.name, sizeBytes: e.sizeBytes, blockBytes: e.blockBytes, description: e.description })),
    read: (exp, offset, length) => viaModel<Uint8Array>(exp, (io, done) => io.read(io.device(exp), offset, length, done)),
    write: (exp, offset, data, fua) => viaModel<void>(exp, (io, done) => io.write(io.device(exp), offset, data, fua, done)),
    flush: (exp) => viaModel<void>(exp, (io, done) => io.flush(io.device(exp), done)),
    // Advisory in NBD; the drive model has no deallocate (nbd-backend.ts).
    trim: (exp) => viaModel<void>(null, (io, done) => (io.device(exp), done(null))),
    writeZeroes: (exp, offset, length, fua) => viaModel<void>(exp, (io, done) => io.zero(io.device(exp), offset, length, fua, done)),
    // Holes are the backing file's, so the box that has it answers (nbd-backend.ts); data without a booted session.
    blockStatus: async (exp, offset, length) => {
      const d = sessions.current()?.host?.manager.blockDevices().find((x) => x.name === exp);
      if (!d) return [{ lengthBytes: length, state: 0 }];
      return boxExtents(boxSocket(d.box), `${d.box}.slot${d.slot}`, offset, length);
    },
  };
}
