/**
 * The data directory holds something the log cannot trust. Never repaired or
 * skipped: the node stops and an operator decides.
 */
export class LogCorruptionError extends Error {
  constructor(
    readonly path: string,
    /** What is corrupt: "entry at index 42", "hard state", "snapshot file /data/n1/snapshots/x", ... */
    readonly record: string,
    readonly detail: string,
    /** The entry's index, when the record is an entry. */
    readonly index: number | null = null,
  ) {
    super(`corrupt raft log in ${path}: ${record}: ${detail}`);
    this.name = 'LogCorruptionError';
  }
}

/**
 * The data directory cannot be used, for a reason outside the data itself:
 * the path is a file, it is not writable, another process holds it, or it
 * holds files that are not a raft log. Nothing was created or changed there.
 */
export class DataDirError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot use ${path} as a raft log directory: ${reason}`, options);
    this.name = 'DataDirError';
  }
}
