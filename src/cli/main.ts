/**
 * The raftlog command line: `raftlog [global options] <command> [args]`.
 * Subcommands live in commands/ and are listed in commands/index.ts.
 */
import { Command, CommanderError } from 'commander';
import { commands } from './commands/index.js';
import { type CliIo, Context, DEFAULT_ENDPOINTS, DEFAULT_TIMEOUT_MS, ENDPOINTS_ENV, TLS_ENV } from './context.js';
import { ExitCode, UsageError } from './exit-codes.js';

type ClientModule = typeof import('../client/index.js');

const EXIT_CODES_HELP = `
Exit codes:
  0  done (tail -f: also when stopped with Ctrl-C or SIGTERM)
  1  key not found, or compare-and-swap did not swap
  2  usage error (bad command, argument or option; key or value over the limits)
  3  unavailable: no node could take the request in time (nothing was written)
  4  indeterminate: the write was sent but its outcome is unknown (deadline passed or connection lost)
  5  any other error (tail: a node broke the stream's contract, e.g. skipped indexes)
  6  log, tail: the entries from the start asked for were compacted away; the message gives the
     first index still held
  7  refused for now, nothing changed: a membership change (learner still catching up, another
     change pending, quorum at risk), a consumer commit that would move it backwards
     (consumers commit --allow-backwards allows it), or transfer-leader to a learner or a
     node that is not a member`;

/** The process's own standard streams and environment. */
export function processIo(): CliIo {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    onInterrupt: (listener) => {
      const once = () => {
        stop();
        listener();
      };
      const stop = () => {
        process.off('SIGINT', once);
        process.off('SIGTERM', once);
      };
      process.on('SIGINT', once);
      process.on('SIGTERM', once);
      return stop;
    },
  };
}

/** Runs the CLI on `argv` (the arguments after the program name) and returns the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  // Known before commander parses anything, so that its own usage errors can be JSON too.
  const json = argv.slice(0, argv.includes('--') ? argv.indexOf('--') : argv.length).includes('--json');
  const program = new Command('raftlog');
  program
    .description('Talk to a raftlog cluster: a Raft-replicated key-value store and log.')
    .option('--endpoints <list>', `comma-separated host:port of the nodes (default: $${ENDPOINTS_ENV}, else ${DEFAULT_ENDPOINTS})`)
    .option('--timeout <ms>', `deadline of the command in milliseconds, retries included (default: ${DEFAULT_TIMEOUT_MS})`)
    .option('--json', 'machine output: one JSON object per result')
    .option('--tls-ca <file>', `connect with TLS: the CA certificate (PEM) the nodes' certificates are checked against (default: $${TLS_ENV.ca})`)
    .option('--tls-cert <file>', `this client's certificate (PEM), for a cluster with mutual TLS; with --tls-key (default: $${TLS_ENV.cert})`)
    .option('--tls-key <file>', `the private key of --tls-cert (PEM) (default: $${TLS_ENV.key})`)
    .addHelpText('after', EXIT_CODES_HELP)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text.replace(/\n$/, '')),
      writeErr: (text) => io.err(text.replace(/\n$/, '')),
      outputError: (text) => {
        const message = text.trim().replace(/^error: /, '');
        if (json) io.err(JSON.stringify({ error: { kind: 'usage', message } }));
        else io.err(`error: ${message} (see raftlog --help)`);
      },
    });
  const context = new Context(program, io);
  for (const command of commands) command.register(program, context);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return context.exitCode;
  } catch (error) {
    return await report(error, io, json);
  }
}

async function report(error: unknown, io: CliIo, json: boolean): Promise<number> {
  if (error instanceof CommanderError) {
    // commander has printed the message (or the help) already.
    return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? ExitCode.OK : ExitCode.USAGE;
  }
  // The client's errors are imported here, not at the top, so that `raftlog --help` loads no gRPC code
  // (a command that failed in the client has loaded it already).
  const errors = await import('../client/index.js');
  const [code, kind] = classify(error, errors);
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const details = error instanceof errors.RaftLogError ? { code: error.codeName, endpoint: error.endpoint, operation: error.operation } : {};
    io.err(JSON.stringify({ error: { kind, ...details, message } }));
  } else {
    io.err(`error: ${message}`);
  }
  return code;
}

function classify(error: unknown, errors: ClientModule): [ExitCode, string] {
  const {
    RaftLogCompactedError,
    RaftLogDeadlineExceededError,
    RaftLogFailedPreconditionError,
    RaftLogIndeterminateError,
    RaftLogInvalidArgumentError,
    RaftLogUnavailableError,
  } = errors;
  if (error instanceof UsageError || error instanceof RaftLogInvalidArgumentError) return [ExitCode.USAGE, 'usage'];
  if (error instanceof RaftLogUnavailableError || error instanceof RaftLogDeadlineExceededError) {
    return [ExitCode.UNAVAILABLE, 'unavailable'];
  }
  if (error instanceof RaftLogIndeterminateError) return [ExitCode.INDETERMINATE, 'indeterminate'];
  if (error instanceof RaftLogCompactedError) return [ExitCode.LOG_COMPACTED, 'compacted'];
  if (error instanceof RaftLogFailedPreconditionError) return [ExitCode.REFUSED, 'refused'];
  return [ExitCode.ERROR, 'error'];
}
