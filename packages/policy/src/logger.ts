/**
 * The logging interface meshlet calls; pass `console`, a pino logger or anything with these four
 * methods. Defaults to {@link silentLogger}: a library does not write to stdout unasked.
 */
export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

/** A {@link Logger} that drops everything. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
