import * as http from "node:http";
import * as http2 from "node:http2";
import type { Socket } from "node:net";
import * as net from "node:net";
import * as os from "node:os";
import { Duplex } from "node:stream";
import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { MeshAdmin } from "@meshlet/api/meshlet/admin/v1/admin_pb";
import { AdminError } from "../admin-error.js";
import type { MeshAdminService } from "../mesh-admin.js";
import { bearerTokenInterceptor, isLoopbackHost, isLoopbackHostHeader } from "./auth.js";
import { consoleHandler, defaultConsoleDir } from "./console-assets.js";

/** The default admin address: loopback only, next to meshlet serve's metrics port (15014). */
export const DEFAULT_ADMIN_ADDRESS = "127.0.0.1:15015";

/** Options of {@link mountAdmin}. */
export interface MountAdminOptions {
  /**
   * A bearer token every call must carry (`Authorization: Bearer <token>`); calls without it get
   * `unauthenticated`. The console's static files are served without it (they hold no data).
   */
  readonly token?: string;
  /**
   * Serve the browser console at `/`: `true` (default) serves the console built with this package
   * (when it was built), a string serves another directory, `false` serves the API only.
   */
  readonly console?: boolean | string;
  /**
   * Refuse requests whose `Host` is not a loopback address or `localhost` (DNS rebinding). On by
   * default when there is no token; {@link listenAdmin} turns it on for loopback addresses.
   */
  readonly loopbackHostOnly?: boolean;
  /** More Connect interceptors, run after authentication. */
  readonly interceptors?: readonly Interceptor[];
}

/** A Node request handler, for `http.createServer`, `http2.createServer(SecureServer)`. */
export type AdminRequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/**
 * The admin API (Connect, gRPC and gRPC-Web protocols, HTTP/1.1 and HTTP/2) and the browser
 * console as one Node request handler, to mount on a server you run. Nothing is exposed beyond
 * what `admin` answers; see {@link listenAdmin} for the address rules.
 */
export function mountAdmin(admin: MeshAdminService, options: MountAdminOptions = {}): AdminRequestHandler {
  if (options.token !== undefined && options.token.length < 16) {
    throw new AdminError(
      "invalid-argument",
      "the admin token must be at least 16 characters (e.g. `openssl rand -hex 32`)",
    );
  }
  const interceptors: Interceptor[] = [];
  if (options.token !== undefined) interceptors.push(bearerTokenInterceptor(options.token));
  interceptors.push(...(options.interceptors ?? []));
  const consoleDir =
    options.console === false
      ? undefined
      : typeof options.console === "string"
        ? options.console
        : defaultConsoleDir();
  const handler = connectNodeAdapter({
    routes: (router) => router.service(MeshAdmin, admin),
    interceptors,
    fallback: consoleHandler(consoleDir),
    // Requests are small; a megabyte is plenty and bounds what a caller can make the server hold.
    readMaxBytes: 1024 * 1024,
  });
  const hostCheck = options.loopbackHostOnly ?? options.token === undefined;
  return (req, res) => {
    if (
      hostCheck &&
      !isLoopbackHostHeader(req.headers.host ?? (req.headers[":authority"] as string | undefined))
    ) {
      (res as http.ServerResponse).writeHead(421, { "content-type": "text/plain; charset=utf-8" });
      res.end("this admin listener answers only requests addressed to localhost or a loopback address\n");
      return;
    }
    handler(req as http.IncomingMessage, res as http.ServerResponse);
  };
}

/** Options of {@link listenAdmin}. */
export interface ListenAdminOptions extends Omit<MountAdminOptions, "loopbackHostOnly"> {
  /** `host:port` (port 0 picks one); default {@link DEFAULT_ADMIN_ADDRESS}. */
  readonly address?: string;
  /**
   * Serve TLS (HTTP/2 and HTTP/1.1 by ALPN) with this key and certificate (PEM). Required, with a
   * token, for an address other than loopback.
   */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer };
  /**
   * How long a new plaintext connection may take to send its first bytes (enough to tell HTTP/1.1
   * from HTTP/2) before it is closed (default 10 s): a client that connects and sends nothing, or
   * half a preface, must not hold a socket forever.
   */
  readonly handshakeTimeoutMs?: number;
}

/** A running admin listener. */
export interface AdminServer {
  readonly port: number;
  /** `host:port` actually bound. */
  readonly address: string;
  /**
   * The base URL clients use (`http://127.0.0.1:15015`); for a listener on every address
   * (`0.0.0.0`, `[::]`), this machine's host name (`os.hostname()`) instead of the wildcard.
   */
  readonly url: string;
  /** Connections open now (to watch for leaks). */
  connections(): number;
  /** Stops accepting, ends open calls (streams included) and closes connections after `graceMs` (1 s). */
  close(graceMs?: number): Promise<void>;
}

/**
 * Serves the admin API and console on their own address. Loopback addresses are the default and
 * need nothing; any other address needs TLS **and** a token, and is refused otherwise
 * (`AdminError` code `insecure-bind`): the API shows the mesh's whole config, so it must never be
 * reachable unauthenticated or in the clear. Without TLS one port speaks HTTP/1.1 and h2c (HTTP/2
 * without TLS, which gRPC clients use), told apart by the HTTP/2 preface.
 */
export async function listenAdmin(
  admin: MeshAdminService,
  options: ListenAdminOptions = {},
): Promise<AdminServer> {
  const address = options.address ?? DEFAULT_ADMIN_ADDRESS;
  const m = /^(\[[^\]]+\]|[^:[\]]*):(\d{1,5})$/.exec(address);
  if (m === null || Number(m[2]) > 65535) {
    throw new AdminError(
      "invalid-argument",
      `admin address must be <host>:<port>, got ${JSON.stringify(address)}`,
    );
  }
  const host = (m[1] as string).replace(/^\[|\]$/g, "");
  const loopback = host !== "" && isLoopbackHost(host);
  if (!loopback && (options.tls === undefined || options.token === undefined)) {
    const missing = [options.tls === undefined ? "TLS" : "", options.token === undefined ? "a token" : ""]
      .filter(Boolean)
      .join(" and ");
    throw new AdminError(
      "insecure-bind",
      `refusing to serve the admin API on ${address} without ${missing}: it shows every proxy's config. ` +
        "Bind a loopback address (127.0.0.1), or give TLS (key and certificate) and a bearer token",
    );
  }
  const handler = mountAdmin(admin, {
    ...options,
    loopbackHostOnly: loopback && options.token === undefined,
  });
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  let server: net.Server;
  let closeInner: () => void = () => {};
  if (options.tls !== undefined) {
    const secure = http2.createSecureServer(
      { key: options.tls.key, cert: options.tls.cert, allowHTTP1: true },
      handler,
    );
    secure.on("connection", track);
    server = secure;
  } else {
    const h1 = http.createServer(handler as http.RequestListener);
    const h2 = http2.createServer(handler);
    closeInner = () => {
      h1.close();
      h2.close();
    };
    server = net.createServer((socket) => {
      track(socket);
      sniffProtocol(socket, h1, h2, options.handshakeTimeoutMs ?? 10_000);
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error) =>
      reject(
        new AdminError("listen-failed", `admin API: cannot listen on ${address}: ${error.message}`, {
          cause: error,
        }),
      ),
    );
    server.listen(Number(m[2]), host === "" ? undefined : host, () => resolve());
  });
  const bound = server.address() as net.AddressInfo;
  if (loopback && !isLoopbackHost(bound.address)) {
    // A name such as `localhost` resolved to an address other machines reach (a broken
    // /etc/hosts): the no-TLS, no-token rules of loopback do not apply there.
    await new Promise<void>((resolve) => server.close(() => resolve()));
    closeInner();
    throw new AdminError(
      "insecure-bind",
      `refusing to serve the admin API on ${address}: it resolved to ${bound.address}, not a loopback address. ` +
        "Bind 127.0.0.1 or ::1, or give TLS (key and certificate) and a bearer token",
    );
  }
  const shownHost = bound.address.includes(":") ? `[${bound.address}]` : bound.address;
  // Bound to every address (0.0.0.0, ::): no browser or client can dial that, so the URL names
  // this machine instead (TLS must then carry its name, or the client's `ca` a matching SAN).
  const urlHost = bound.address === "0.0.0.0" || bound.address === "::" ? os.hostname() : shownHost;
  return {
    port: bound.port,
    address: `${shownHost}:${bound.port}`,
    url: `${options.tls !== undefined ? "https" : "http"}://${urlHost}:${bound.port}`,
    connections: () => sockets.size,
    async close(graceMs = 1000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      closeInner();
      const timer = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, graceMs);
      timer.unref();
      for (const s of sockets) {
        // Idle HTTP/1.1 keep-alive connections: end them now; busy ones finish within the grace.
        if (!s.destroyed && (s as Socket & { _httpMessage?: unknown })._httpMessage === undefined) s.end();
      }
      await closed;
      clearTimeout(timer);
    },
  };
}

const PREFACE = "PRI * HTTP/2.0\r\n";

/**
 * Hands a plaintext connection to the HTTP/2 server when it opens with the HTTP/2 preface, else to
 * the HTTP/1.1 server. The HTTP/1.1 parser takes the bytes already read back from the socket
 * (`unshift`); Node's HTTP/2 session reads the socket's handle directly and would miss them, so
 * it gets a stream that replays them first.
 */
function sniffProtocol(socket: Socket, h1: http.Server, h2: http2.Http2Server, timeoutMs: number): void {
  let seen: Buffer = Buffer.alloc(0);
  // Until the protocol is known nobody else watches this socket: close it if it stays silent.
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  timer.unref();
  socket.once("close", () => clearTimeout(timer));
  const onData = (chunk: Buffer) => {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const head = seen.subarray(0, PREFACE.length).toString("latin1");
    if (seen.length < PREFACE.length && PREFACE.startsWith(head)) return; // could still be HTTP/2
    socket.off("data", onData);
    clearTimeout(timer);
    socket.pause();
    if (head === PREFACE) {
      h2.emit("connection", replaying(socket, seen));
    } else {
      socket.unshift(seen);
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
  socket.on("error", () => socket.destroy());
}

/** A duplex over `socket` whose readable side yields `first`, then what the socket reads. */
function replaying(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  duplex.push(first);
  socket.on("data", (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("close", () => duplex.destroy());
  return duplex;
}
