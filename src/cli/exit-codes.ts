/** The CLI's exit codes. */
export const ExitCode = {
  OK: 0,
  /** The key was not found, or a compare-and-swap did not swap. */
  NOT_FOUND: 1,
  /** Bad command line: unknown command, missing or malformed argument or option. */
  USAGE: 2,
  /** No node could take the request (no leader known, or nodes unreachable); nothing was written. */
  UNAVAILABLE: 3,
  /** A write may or may not have been committed (deadline passed or connection lost after sending). */
  INDETERMINATE: 4,
  /** Anything else (tail: a node broke the stream's contract, e.g. a gap in the indexes). */
  ERROR: 5,
  /**
   * `log --from N`, `tail`: the node no longer holds the start asked for
   * (entries before its first index were compacted into a snapshot, or, for
   * tail --view changes, are older than its change history). The message
   * gives that first index; reading from it works.
   */
  LOG_COMPACTED: 6,
  /**
   * The cluster refused the request as things stand (FAILED_PRECONDITION);
   * nothing changed. `member add|promote|remove`: the learner is still
   * catching up, another change is not yet committed, or the removal would
   * cost the quorum (the same command may succeed later). `consumers
   * commit`: the position would move the consumer backwards (without
   * --allow-backwards).
   */
  REFUSED: 7,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line mistake: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
