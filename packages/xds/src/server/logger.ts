/**
 * The server's logger is the shared one of `@meshlet/api/logger` (one Logger interface for every
 * meshlet package): `debug/info/warn/error(message, fields?)`. Pass your own (pino, winston …).
 */
export { consoleLogger, type Logger, silentLogger } from "@meshlet/api/logger";
