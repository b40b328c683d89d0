import { existsSync, readdirSync, readFileSync } from "node:fs";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One static file of the console. */
interface Asset {
  readonly body: Buffer;
  readonly type: string;
}

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".map": "application/json",
};

/**
 * Where the built console lives: `dist/console` beside this package's built code. Undefined when it
 * was not built (then the listener serves the API only).
 */
export function defaultConsoleDir(): string | undefined {
  try {
    const here = fileURLToPath(new URL(".", import.meta.url));
    for (const dir of [
      join(here, "console"),
      join(here, "..", "console"),
      join(here, "..", "..", "dist", "console"),
    ]) {
      if (existsSync(join(dir, "index.html"))) return dir;
    }
  } catch {
    // No import.meta.url (a bundler without it): no console.
  }
  return undefined;
}

/** Security headers of every console response: own origin only, no framing, no sniffing. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

/** The parts of a Node HTTP/1.1 or HTTP/2 request and response the handler uses. */
interface Request {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
}
interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: Buffer | string): unknown;
  end(): unknown;
}

/**
 * A request handler serving the console's files from `dir`, read once: `GET`/`HEAD` of `/` (the
 * page) or an exact file name; anything else is 404 (paths are looked up, never joined, so no
 * request can read outside the directory).
 */
export function consoleHandler(dir: string | undefined): (req: Request, res: Response) => void {
  const assets = new Map<string, Asset>();
  if (dir !== undefined) {
    for (const name of readdirSync(dir)) {
      const type = TYPES[extname(name)];
      if (type === undefined) continue;
      assets.set(`/${name}`, { body: readFileSync(join(dir, name)), type });
    }
    const index = assets.get("/index.html");
    if (index !== undefined) assets.set("/", index);
  }
  return (req, res) => {
    const path = (req.url ?? "/").split("?", 1)[0] as string;
    const asset = req.method === "GET" || req.method === "HEAD" ? assets.get(path) : undefined;
    if (asset === undefined) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
      res.end(assets.size === 0 ? "not found (the console is not built)\n" : "not found\n");
      return;
    }
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": asset.type,
      "content-length": String(asset.body.length),
    });
    if (req.method === "HEAD") res.end();
    else res.end(asset.body);
  };
}
