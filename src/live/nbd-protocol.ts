/**
 * NBD wire constants and encoders (NetworkBlockDevice/nbd doc/proto.md), for `nbd-server.ts`.
 * Everything on the wire is big-endian. Only what the server sends is encoded here; what it receives
 * is decoded where it is read.
 */

// Handshake.
export const NBDMAGIC = 0x4e42444d41474943n; // 'NBDMAGIC'
export const IHAVEOPT = 0x49484156454f5054n; // 'IHAVEOPT', also the magic of every option request
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;

export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;

export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const REP_ERR = 0x8000_0000;
export const NBD_REP_ERR_UNSUP = REP_ERR + 1;
export const NBD_REP_ERR_POLICY = REP_ERR + 2;
export const NBD_REP_ERR_INVALID = REP_ERR + 3;
export const NBD_REP_ERR_TLS_REQD = REP_ERR + 5;
export const NBD_REP_ERR_UNKNOWN = REP_ERR + 6;
export const NBD_REP_ERR_SHUTDOWN = REP_ERR + 7;
export const NBD_REP_ERR_TOO_BIG = REP_ERR + 9;

export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// Transmission flags (16 bits, sent with the export's size).
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_CACHE = 1 << 10;

// Requests and replies.
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;
export const REQUEST_HEADER_BYTES = 28;

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;
/** Extended headers only (not negotiated here): the request carries a payload whose length we cannot know. */
export const NBD_CMD_FLAG_PAYLOAD_LEN = 1 << 5;

export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = 0x8001;

export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

export const ERRNO_NAMES: Record<number, string> = {
  [NBD_EPERM]: 'EPERM',
  [NBD_EIO]: 'EIO',
  [NBD_EINVAL]: 'EINVAL',
  [NBD_ENOSPC]: 'ENOSPC',
  [NBD_EOVERFLOW]: 'EOVERFLOW',
  [NBD_ENOTSUP]: 'ENOTSUP',
  [NBD_ESHUTDOWN]: 'ESHUTDOWN',
};

export const OPTION_NAMES: Record<number, string> = {
  [NBD_OPT_EXPORT_NAME]: 'exportName',
  [NBD_OPT_ABORT]: 'abort',
  [NBD_OPT_LIST]: 'list',
  [NBD_OPT_STARTTLS]: 'starttls',
  [NBD_OPT_INFO]: 'info',
  [NBD_OPT_GO]: 'go',
  [NBD_OPT_STRUCTURED_REPLY]: 'structuredReply',
  [NBD_OPT_LIST_META_CONTEXT]: 'listMetaContext',
  [NBD_OPT_SET_META_CONTEXT]: 'setMetaContext',
};

export const COMMAND_NAMES: Record<number, string> = {
  [NBD_CMD_READ]: 'read',
  [NBD_CMD_WRITE]: 'write',
  [NBD_CMD_DISC]: 'disc',
  [NBD_CMD_FLUSH]: 'flush',
  [NBD_CMD_TRIM]: 'trim',
  [NBD_CMD_CACHE]: 'cache',
  [NBD_CMD_WRITE_ZEROES]: 'writeZeroes',
  [NBD_CMD_BLOCK_STATUS]: 'blockStatus',
};

/** The only metadata context served: everything reads as allocated data (status 0 is always correct). */
export const BASE_ALLOCATION = 'base:allocation';
export const BASE_ALLOCATION_ID = 1;

/** Strings on the wire are at most 4096 bytes (proto.md "Conventions"). */
export const MAX_STRING_BYTES = 4096;

/** Bytes as Node gives them (Buffer) or as a backend returns them (Uint8Array). */
export type Bytes = Uint8Array | Buffer;

/** The server's opening: NBDMAGIC, IHAVEOPT, handshake flags (FIXED_NEWSTYLE | NO_ZEROES). */
export function encodeGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES, 16);
  return b;
}

/** One option reply: magic, option, reply type, length, data. */
export function encodeOptionReply(option: number, type: number, data: Bytes = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20 + data.length);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(data.length, 16);
  b.set(data, 20);
  return b;
}

/** An error option reply with a human-readable message (error replies MAY carry one). */
export function encodeOptionError(option: number, type: number, message: string): Buffer {
  return encodeOptionReply(option, type, truncatedString(message));
}

export function truncatedString(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return b.length <= MAX_STRING_BYTES ? b : b.subarray(0, MAX_STRING_BYTES);
}

/** NBD_REP_SERVER data: u32 name length, name, then the description (free text for humans). */
export function encodeServerEntry(name: string, description: string | undefined): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = truncatedString(description ?? '');
  const b = Buffer.alloc(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  b.set(n, 4);
  b.set(d, 4 + n.length);
  return b;
}

export function encodeInfoExport(sizeBytes: number, flags: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(NBD_INFO_EXPORT, 0);
  b.writeBigUInt64BE(BigInt(sizeBytes), 2);
  b.writeUInt16BE(flags, 10);
  return b;
}

export function encodeInfoBlockSize(min: number, preferred: number, maxPayload: number): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  b.writeUInt32BE(min, 2);
  b.writeUInt32BE(preferred, 6);
  b.writeUInt32BE(maxPayload, 10);
  return b;
}

/** NBD_INFO_NAME or NBD_INFO_DESCRIPTION: u16 type, then the string. */
export function encodeInfoString(type: number, s: string): Buffer {
  const d = truncatedString(s);
  const b = Buffer.alloc(2 + d.length);
  b.writeUInt16BE(type, 0);
  b.set(d, 2);
  return b;
}

export function encodeMetaContext(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4 + n.length);
  b.writeUInt32BE(id, 0);
  b.set(n, 4);
  return b;
}

/** The reply to NBD_OPT_EXPORT_NAME: u64 size, u16 transmission flags, then 124 zero bytes unless NO_ZEROES. */
export function encodeExportNameReply(sizeBytes: number, flags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(BigInt(sizeBytes), 0);
  b.writeUInt16BE(flags, 8);
  return b;
}

/** Simple reply header (16 bytes); a successful READ's data follows it. `cookie` is the request's 8 bytes, opaque. */
export function encodeSimpleReply(error: number, cookie: Bytes): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  b.set(cookie, 8);
  return b;
}

/** Structured reply chunk header (20 bytes); `length` payload bytes follow. */
export function encodeChunkHeader(flags: number, type: number, cookie: Bytes, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.set(cookie, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

/** Header and offset of a final NBD_REPLY_TYPE_OFFSET_DATA chunk (28 bytes); `dataLength` bytes of data follow. */
export function encodeOffsetDataHeader(cookie: Bytes, offset: number, dataLength: number): Buffer {
  const b = Buffer.alloc(28);
  b.set(encodeChunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA, cookie, 8 + dataLength), 0);
  b.writeBigUInt64BE(BigInt(offset), 20);
  return b;
}

/** A final NBD_REPLY_TYPE_ERROR chunk: u32 error, u16 message length, message. */
export function encodeErrorChunk(cookie: Bytes, error: number, message: string): Buffer {
  const m = truncatedString(message);
  const b = Buffer.alloc(20 + 6 + m.length);
  b.set(encodeChunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, cookie, 6 + m.length), 0);
  b.writeUInt32BE(error, 20);
  b.writeUInt16BE(m.length, 24);
  b.set(m, 26);
  return b;
}

/** A final NBD_REPLY_TYPE_NONE chunk (a successful reply with no content, e.g. a READ of length 0). */
export function encodeNoneChunk(cookie: Bytes): Buffer {
  return encodeChunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, cookie, 0);
}

/** A final NBD_REPLY_TYPE_BLOCK_STATUS chunk: the context id, then each extent as u32 length, u32 status flags. */
export function encodeBlockStatusChunk(cookie: Bytes, contextId: number, extents: readonly { lengthBytes: number; state: number }[]): Buffer {
  const n = 4 + 8 * extents.length;
  const b = Buffer.alloc(20 + n);
  b.set(encodeChunkHeader(NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, n), 0);
  b.writeUInt32BE(contextId, 20);
  extents.forEach((e, i) => {
    b.writeUInt32BE(e.lengthBytes, 24 + 8 * i);
    b.writeUInt32BE(e.state, 28 + 8 * i);
  });
  return b;
}
