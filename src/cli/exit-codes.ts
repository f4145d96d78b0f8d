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
  /** Anything else. */
  ERROR: 5,
  /**
   * `log --from N`: the node no longer holds index N (entries before its first
   * index were compacted into a snapshot). The message gives that first index;
   * reading from it works.
   */
  LOG_COMPACTED: 6,
  /**
   * `member add|promote|remove`: the cluster refused the change as things
   * stand (FAILED_PRECONDITION): the learner is still catching up, another
   * change is not yet committed, or the removal would cost the quorum.
   * Nothing changed; the same command may succeed later.
   */
  REFUSED: 7,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A command-line mistake: reported as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
