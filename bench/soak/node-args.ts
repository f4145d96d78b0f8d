/** The node flags of the compaction-off half of an A/B run. */

/** args with any --snapshot-entries (as `--snapshot-entries N` or `--snapshot-entries=N`) replaced by `--snapshot-entries 0`. */
export function withSnapshotsOff(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--snapshot-entries')
      i++; // and its value
    else if (!arg.startsWith('--snapshot-entries=')) out.push(arg);
  }
  return [...out, '--snapshot-entries', '0'];
}
