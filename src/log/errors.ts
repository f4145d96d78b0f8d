/**
 * The data directory holds something the log cannot trust. Never repaired or
 * skipped: the node stops and an operator decides.
 */
export class LogCorruptionError extends Error {
  constructor(
    readonly path: string,
    /** What is corrupt: "entry at index 42", "hard state", ... */
    readonly record: string,
    readonly detail: string,
    /** The entry's index, when the record is an entry. */
    readonly index: number | null = null,
  ) {
    super(`corrupt raft log in ${path}: ${record}: ${detail}`);
    this.name = 'LogCorruptionError';
  }
}
