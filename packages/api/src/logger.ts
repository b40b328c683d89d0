/**
 * The logging surface every meshlet package writes to. Pass your own (pino, winston, console …):
 * libraries never print on their own, so the default in every package is {@link silentLogger}.
 * `fields` carries structured context (node id, resource name, the error as `error`), so a
 * structured logger can index it instead of parsing the message.
 */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Drops everything: the default of libraries, and what tests and benchmarks pass. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** Warnings and errors to the console (with their fields, when there are any); debug and info dropped. */
export const consoleLogger: Logger = {
  debug() {},
  info() {},
  warn: (message, fields) => (fields === undefined ? console.warn(message) : console.warn(message, fields)),
  error: (message, fields) =>
    fields === undefined ? console.error(message) : console.error(message, fields),
};
