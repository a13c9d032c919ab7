/**
 * TLS-PSK for NBD over TCP, as nbdkit (`--tls=require --tls-psk=FILE`) and qemu-nbd (`tls-creds-psk`)
 * do it: the client sends NBD_OPT_STARTTLS, the server ACKs, and the rest of the handshake and all of
 * transmission run inside TLS (proto.md "TLS support"). The key file is the form GnuTLS's psktool, libnbd
 * (`tls-psk-file=`) and qemu (`keys.psk` in a `tls-creds-psk` dir) read: one `identity:hexkey` line per
 * client. The identity is the client's TLS username: libnbd sends the URI's user (`nbds://USER@HOST/`)
 * or the login name, qemu its object's `username` (default "qemu"); so any identity in the file is
 * accepted, each with its own key.
 *
 * Node's TLS (OpenSSL) negotiates TLS 1.3 with an external PSK against GnuTLS clients (libnbd, qemu),
 * with the default TLS 1.3 suites; TLS 1.2 PSK suites would need explicit `ciphers` and are not offered.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants as fsc, lstatSync, openSync, readFileSync, writeSync } from 'node:fs';
import type net from 'node:net';
import { userInfo } from 'node:os';
import tls from 'node:tls';

/** Bytes of a key made by `ensurePskFile`: 256 bits, as `psktool` makes by default. */
export const PSK_KEY_BYTES = 32;
/** The shortest key accepted from a file: 128 bits (a shorter one is guessable). */
const MIN_PSK_KEY_BYTES = 16;
/** Identities are at most this long (RFC 4279 allows 2^16-1; GnuTLS and OpenSSL take 128 and more). */
const MAX_IDENTITY_BYTES = 128;
/** A key file larger than this is refused (thousands of lines: not a key file). */
const MAX_PSK_FILE_BYTES = 64 * 1024;

/** identity -> key. */
export type PskKeys = ReadonlyMap<string, Buffer>;

/** Parses `identity:hexkey` lines (blank lines and `#` comments skipped); throws naming the line. */
export function parsePskFile(text: string, path: string): PskKeys {
  const keys = new Map<string, Buffer>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at = `${path} line ${i + 1}`;
    const colon = line.lastIndexOf(':'); // GnuTLS splits at the last colon (identities may hold one)
    const id = colon > 0 ? line.slice(0, colon) : '';
    const hex = colon > 0 ? line.slice(colon + 1) : '';
    if (id === '' || Buffer.byteLength(id) > MAX_IDENTITY_BYTES) throw new Error(`${at}: not 'identity:hexkey' with an identity of 1 to ${MAX_IDENTITY_BYTES} bytes`);
    if (!/^([0-9a-fA-F]{2})+$/.test(hex) || hex.length / 2 < MIN_PSK_KEY_BYTES) throw new Error(`${at}: the key of '${id}' is not hex of at least ${MIN_PSK_KEY_BYTES} bytes`);
    if (keys.has(id)) throw new Error(`${at}: identity '${id}' appears twice`);
    keys.set(id, Buffer.from(hex, 'hex'));
  });
  if (keys.size === 0) throw new Error(`${path}: no 'identity:hexkey' line`);
  return keys;
}

/** Reads a key file (a regular file, not a symlink, at most MAX_PSK_FILE_BYTES). */
export function readPskFile(path: string): PskKeys {
  const st = lstatSync(path);
  if (!st.isFile()) throw new Error(`${path} is not a regular file`);
  if (st.size > MAX_PSK_FILE_BYTES) throw new Error(`${path} is ${st.size} bytes: a PSK file is at most ${MAX_PSK_FILE_BYTES}`);
  return parsePskFile(readFileSync(path, 'utf8'), path);
}

/** The identity `ensurePskFile` writes: the login name, which libnbd sends when the URI names no user. */
export function defaultPskIdentity(): string {
  try {
    const u = userInfo().username;
    if (/^[\w.-]{1,64}$/.test(u)) return u;
  } catch {
    // no passwd entry (a container's arbitrary uid)
  }
  return 'dconnect';
}

/**
 * The server's keys at `path`, made if missing: one line `<login name>:<64 hex digits>` of fresh random
 * bytes, created 0600 with O_EXCL|O_NOFOLLOW (a file put there first is refused, not overwritten). An
 * existing file is reused and set to 0600 (its keys are secrets).
 */
export function ensurePskFile(path: string): { keys: PskKeys; created: boolean } {
  let created = false;
  try {
    const fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, `${defaultPskIdentity()}:${randomBytes(PSK_KEY_BYTES).toString('hex')}\n`);
    } finally {
      closeSync(fd);
    }
    created = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const keys = readPskFile(path);
  chmodSync(path, 0o600);
  return { keys, created };
}

/**
 * Starts the server side of TLS on `raw` (after the STARTTLS ACK was written): resolves with the TLS
 * socket once the handshake is done, rejects on a failed handshake (unknown identity, wrong key, not
 * TLS). The caller's handshake deadline bounds how long this may take (it destroys `raw`).
 */
export function startTlsServer(raw: net.Socket, keys: PskKeys, onIdentity: (id: string, known: boolean) => void): Promise<tls.TLSSocket> {
  const t = new tls.TLSSocket(raw, {
    isServer: true,
    minVersion: 'TLSv1.3',
    pskCallback: (_s: tls.TLSSocket, identity: string) => {
      const key = keys.get(identity) ?? null;
      onIdentity(identity, key !== null);
      return key;
    },
  } as tls.TLSSocketOptions);
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => {
      t.off('secure', ok);
      t.destroy();
      reject(e);
    };
    const ok = (): void => {
      t.off('error', fail);
      t.off('close', closed);
      resolve(t);
    };
    const closed = (): void => fail(new Error('connection closed during the TLS handshake'));
    t.once('secure', ok);
    t.once('error', fail);
    t.once('close', closed);
  });
}
