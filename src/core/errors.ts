/**
 * One error class for every user-facing condition, with a stable `code` that scripts can match and a
 * `hint` that says what to do. The CLI prints `error [CODE]: message` and the hint, and exits non-zero.
 */
export type ErrorCode =
  | 'BAD_SIZE' // a size or count argument could not be parsed
  | 'UNKNOWN_DEVICE' // a device name or serial the DC manager does not know
  | 'OUT_OF_RANGE' // an offset/length beyond a device's capacity
  | 'UNALIGNED' // an offset/length not a multiple of the block size
  | 'OVERLAP' // source and destination ranges overlap on one device
  | 'BAD_TOPOLOGY' // a topology file that is malformed or inconsistent
  | 'BAD_OPTION' // a CLI option out of its valid range
  | 'BAD_PARAM' // a sweep parameter path or value that is not valid
  | 'BAD_SHARDS' // shard result files that are not one whole run (missing, duplicate, mismatched)
  | 'MALFORMED_PACKET' // a TLP, frame or NVMe structure that cannot be decoded
  | 'BAD_PDU' // an ExpEther PDU or frame that cannot be encoded or decoded (expether/pdu-codec.ts)
  | 'DEVICE_ERROR' // a device reported an error status
  | 'PROTOCOL' // a block transfer stream broke its protocol (a gap, a frame from the wrong peer)
  | 'LAG_LIMIT' // live mode: an event ran later than --hard-limit allows
  | 'VERIFY_FAILED' // the destination did not match the source after a copy
  | 'ABORTED' // a library run cancelled through its AbortSignal (experiments/background.ts)
  // File systems (src/host/fs/):
  | 'FS_UNSUPPORTED' // an ext4 feature or state the host's file system code does not handle (named)
  | 'FS_CORRUPT' // ext4 metadata that is malformed or fails its checksum
  | 'FS_NOT_FOUND' // a path that does not exist on a device's file system
  | 'FS_EXISTS' // a destination file that exists (without --force)
  | 'FS_NO_SPACE' // no free blocks or inodes for the copy, or a directory with no room
  | 'FS_CHANGED' // a destination a resumed file copy reserved that no longer holds its reservation
  | 'BAD_IMAGE' // a --image / --save file that cannot be used (missing, too big)
  // Live mode (src/live/, src/cli/live.ts):
  | 'NOT_RUNNING' // no live fabric answers (no state, no node, no control socket)
  | 'ALREADY_RUNNING' // a live fabric or control server already runs there
  | 'NODE_START' // a node process did not start (its log says why)
  | 'BOX_LOST' // a box stopped answering while the host waited on it
  | 'HOST_RESTARTED' // the host node stopped during a job
  | 'BAD_STATE' // a state directory file that does not parse
  | 'STATE_PATH' // a state directory whose path is unusable (too long for a Unix socket)
  | 'BAD_REQUEST' // a control API request that is not valid
  | 'NO_SUCH_JOB' // a job id the host does not know
  | 'CONFLICT' // a request that does not fit the job's state
  | 'TIMEOUT' // the control API did not answer in time
  | 'NO_SUCH_DEVICE' // the control API: a device the host does not know
  | 'NOT_FOUND' // the control API: no such path
  | 'BAD_METHOD' // the control API: the path does not take that method
  | 'BAD_RESPONSE' // the control API's answer is not JSON, too large or cut off
  | 'INTERNAL'; // an unexpected error inside a live node

/** Thrown when user input or a model invariant fails in a way the user must hear about. */
export class DconnectError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'DconnectError';
  }
}
