/**
 * The logger is the shared one of `@meshlet/api/logger` (one Logger interface for every meshlet
 * package): `debug/info/warn/error(message, fields?)`, structured context in `fields` (the error as
 * `error`). Pass your own (pino, winston …); the default is {@link silentLogger}.
 */
export { consoleLogger, type Logger, silentLogger } from "@meshlet/api/logger";
