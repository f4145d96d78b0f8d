/** A failure the person at the terminal can act on: printed as is, without a stack trace; exit code 1. */
export class ClusterScriptError extends Error {
  override readonly name = 'ClusterScriptError';
}
