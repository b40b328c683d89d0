/**
 * Where a command writes and what it may read from its environment. Passed in, so a command can be
 * run and checked in-process without spawning a `meshlet` process.
 */
export interface CommandIo {
  /** One line of the command's result (stdout). */
  out(line: string): void;
  /** One line of progress, diagnostics or errors (stderr). */
  err(line: string): void;
  /** Environment variables (e.g. the admin token); defaults to `process.env`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Aborted when the user asks the command to stop (SIGINT/SIGTERM): long-running commands such as
   * `serve` shut down gracefully and resolve with their exit code.
   */
  readonly signal: AbortSignal;
}

/** One `meshlet <name>` subcommand. */
export interface Command {
  readonly name: string;
  /** One line for `meshlet --help`. */
  readonly summary: string;
  /** The command's own help text (`meshlet <name> --help`). */
  readonly usage: string;
  /**
   * Runs the command with the arguments after its name; resolves with the exit code: 0 success,
   * 1 the command ran and found a problem (invalid config, a proxy out of sync…), 2 usage errors,
   * 3 the admin API unreachable, 4 refused by it (unauthenticated), 5 not found (a proxy).
   */
  run(args: readonly string[], io: CommandIo): Promise<number>;
}

/** Exit status of a usage error (unknown option, missing argument). */
export const EXIT_USAGE = 2;
/** Exit status when the control plane's admin API cannot be reached (refused, timed out, TLS failed). */
export const EXIT_UNREACHABLE = 3;
/** Exit status when the admin API refuses the caller (no or wrong bearer token). */
export const EXIT_UNAUTHENTICATED = 4;
/** Exit status when what was asked about does not exist (a proxy not connected or not in the config). */
export const EXIT_NOT_FOUND = 5;
